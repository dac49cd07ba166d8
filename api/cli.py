"""The ``zizhi`` command line. Every command creates or upgrades the schema first."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

import engine
from api.settings import Settings
from demo import district as demo_district
from engine import CLI, Database, Zizhi, ZizhiError, subscriptions
from workflows import load_registry

if TYPE_CHECKING:
    from api.dispatcher import Dispatcher

app = typer.Typer(
    help="自治 Zizhi：居民自治项目流程与经费台账。",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
token_app = typer.Typer(help="API 令牌", no_args_is_help=True)
user_app = typer.Typer(help="网页登录用户", no_args_is_help=True)
community_app = typer.Typer(help="社区", no_args_is_help=True)
year_app = typer.Typer(help="年度结账", no_args_is_help=True)
demand_app = typer.Typer(help="居民需求", no_args_is_help=True)
webhook_app = typer.Typer(help="推送订阅（webhook）", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(user_app, name="user")
app.add_typer(community_app, name="community")
app.add_typer(year_app, name="year")
app.add_typer(demand_app, name="demand")
app.add_typer(webhook_app, name="webhook")

err = Console(stderr=True)

Communities = Annotated[list[str], typer.Option("--community", help="社区编号，可重复")]
Streets = Annotated[list[str], typer.Option("--street", help="街道名称，可重复")]


def open_zizhi(settings: Settings, *, definitions: bool = True) -> Zizhi:
    """The engine on the configured database, migrated; ``definitions``: refuse to go on
    without the definition of a workflow version some project runs on (``verify`` needs none)."""
    db = Database(
        settings.database_url,
        sqlite_synchronous=settings.sqlite_synchronous,
        pool_size=settings.db_pool_size,
    )
    try:
        db.migrate()
    except engine.UnknownSchema:
        # Most likely a database written by a newer Zizhi: its migration is not one of ours.
        err.print(
            "[red]无法升级数据库：其结构版本不是本程序所知的版本（可能由更新版本的自治 Zizhi "
            "写入）。请使用相同或更新版本的 zizhi，或改用其他数据库。[/red]",
            soft_wrap=True,
        )
        raise typer.Exit(2) from None
    z = Zizhi(db, load_registry(), policy=settings.allocation_policy())
    if definitions and (missing := engine.definitions_missing(z)):
        named = "、".join(f"{name} 第 {version} 版" for name, version in missing)
        err.print(
            f"[red]缺少项目正在使用的流程定义：{named}。请把对应的定义文件放回 workflows/ "
            "目录（流程定义只能新增版本，不能删除）。[/red]",
            soft_wrap=True,
        )
        raise typer.Exit(2)
    return z


def _dispatcher(z: Zizhi, settings: Settings) -> Dispatcher:
    from api.dispatcher import Dispatcher  # HTTP client and all: only the commands that send

    return Dispatcher(z, settings.dispatch_config())


@contextmanager
def zizhi(settings: Settings | None = None) -> Iterator[Zizhi]:
    """The engine on the configured database; a refusal ends the command with status 2."""
    z = open_zizhi(settings or Settings())
    try:
        yield z
    except ZizhiError as exc:
        err.print(f"[red]失败（{exc.code}）：{exc.message}[/red]")
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="监听地址")] = None,
    port: Annotated[int | None, typer.Option(help="监听端口")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="数据库为空时先生成演示辖区")] = False,
    no_dispatcher: Annotated[
        bool,
        typer.Option("--no-dispatcher", help="不在本进程推送 webhook（另行运行 zizhi worker）"),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="服务进程数（多于 1 时 webhook 推送只在主进程运行一份）",
        ),
    ] = 1,
) -> None:
    """启动 API 与网页服务（首次启动时创建并打印管理员令牌）。"""
    import uvicorn

    from api.app import create_app
    from api.serving import NoDelayProtocol, log_config

    settings = Settings()
    z = open_zizhi(settings)
    host, port = host or settings.host, port or settings.port
    if demo and not engine.list_communities(z, CLI, limit=1).items:
        _demo(z)
    elif demo:
        err.print("数据库中已有数据，不再生成演示辖区；沿用此前打印的令牌。")
    engine.ensure_signing_key(z)  # the checkpoint key: made on first start, then kept
    engine.publish_checkpoint(z)  # unless one is less than a day old; then the dispatcher's
    if not engine.has_admin(z):
        token = engine.create_token(z, CLI, name="初始管理员", role="admin")
        err.print("[bold]已创建初始管理员令牌（只显示这一次，请妥善保存）：[/bold]")
        print(token.token, flush=True)
    err.print(
        f"自治 Zizhi 已启动：http://{host}:{port}/ ；接口文档 http://{host}:{port}/docs\n"
        "调用接口时在请求头中加入  Authorization: Bearer <令牌>"
    )
    if workers > 1 and z.db.is_sqlite:
        err.print(
            "[yellow]注意：SQLite 同一时刻只有一个写入者；"
            "多个服务进程的写请求将在 SQLite 的忙等待中排队。"
            "多进程部署请使用 PostgreSQL（见 docs/deployment.md）。[/yellow]",
            soft_wrap=True,
        )
    dispatcher = None if no_dispatcher else _dispatcher(z, settings)
    if dispatcher is not None:
        dispatcher.start()
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": settings.log_level,
        "log_config": log_config(),
        "http": NoDelayProtocol,
    }
    try:
        if workers == 1:
            uvicorn.run(create_app(z, settings), **options)
        else:
            # Each worker builds its own app from the same environment; the dispatcher
            # (unless --no-dispatcher) runs once, here in the supervising process.
            uvicorn.run(
                "api.serving:app_from_environment", factory=True, workers=workers, **options
            )
    finally:
        if dispatcher is not None:
            dispatcher.stop()


@app.command()
def worker() -> None:
    """只运行 webhook 推送进程（多进程部署时与 serve --no-dispatcher 配合）。"""
    import logging
    import signal

    settings = Settings()
    z = open_zizhi(settings)  # before logging is set up: migrating says nothing, as in serve
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    dispatcher = _dispatcher(z, settings)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    err.print("自治 Zizhi webhook 推送进程已启动")
    dispatcher.start()
    stopping.wait()
    dispatcher.stop()


@webhook_app.command("create")
def webhook_create(
    url: Annotated[str, typer.Option(help="接收地址（http/https）")],
    event: Annotated[
        list[str],
        typer.Option("--event", help="事件类型，可重复：project.transitioned、ledger.*、*"),
    ],
    community: Annotated[str | None, typer.Option("--community", help="只推送该社区")] = None,
    street: Annotated[str | None, typer.Option("--street", help="只推送该街道")] = None,
    description: Annotated[str | None, typer.Option(help="说明")] = None,
    format: Annotated[str, typer.Option(help="standard / wecom_bot / dingtalk_bot")] = "standard",
    bot_secret: Annotated[
        str | None, typer.Option("--bot-secret", help="钉钉机器人加签密钥（SEC…）")
    ] = None,
) -> None:
    """新建推送订阅；签名密钥单独打印在最后一行，只显示这一次。"""
    settings = Settings()
    with zizhi(settings) as z:
        hook = subscriptions.create_subscription(
            z,
            CLI,
            settings.webhook_guard(),
            url=url,
            events=event,
            community_id=community,
            street=street,
            description=description,
            format=format,
            bot_secret=bot_secret,
        )
    err.print(f"已创建推送订阅 {hook.id}（{', '.join(hook.events)}）；签名密钥只显示这一次：")
    print(hook.secret, flush=True)


@webhook_app.command("list")
def webhook_list() -> None:
    """列出推送订阅（不显示密钥）。"""
    z = open_zizhi(Settings())
    for hook in subscriptions.list_subscriptions(z, CLI):
        state = "启用" if hook.active else f"停用（{hook.disabled_reason}）"
        print(f"{hook.id}\t{state}\t{hook.format}\t{','.join(hook.events)}\t{_shown(hook.url)}")


@webhook_app.command("disable")
def webhook_disable(webhook_id: Annotated[str, typer.Argument(help="订阅编号")]) -> None:
    """停用推送订阅（未送达的消息保留）。"""
    with zizhi() as z:
        subscriptions.disable_subscription(z, CLI, webhook_id)
    print(f"已停用推送订阅 {webhook_id}")


@webhook_app.command("delete")
def webhook_delete(webhook_id: Annotated[str, typer.Argument(help="订阅编号")]) -> None:
    """删除推送订阅及其推送记录。"""
    with zizhi() as z:
        subscriptions.delete_subscription(z, CLI, webhook_id)
    print(f"已删除推送订阅 {webhook_id}")


@webhook_app.command("rotate")
def webhook_rotate(webhook_id: Annotated[str, typer.Argument(help="订阅编号")]) -> None:
    """更换签名密钥；新密钥单独打印在最后一行。24 小时内新旧两个签名同时发送。"""
    with zizhi() as z:
        hook = subscriptions.rotate_secret(z, CLI, webhook_id)
    err.print(f"已更换推送订阅 {hook.id} 的签名密钥；新密钥只显示这一次：")
    print(hook.secret, flush=True)


def _shown(url: str) -> str:
    """A robot's URL carries its key in the query string: never print it."""
    base, _, query = url.partition("?")
    return f"{base}?…" if query else base


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="admin / street / committee / auditor")],
    name: Annotated[str, typer.Option(help="令牌名称，如 里河社区居委会")],
    community: Communities = [],
    street: Streets = [],
) -> None:
    """创建 API 令牌；令牌明文单独打印在最后一行。"""
    with zizhi() as z:
        token = engine.create_token(
            z, CLI, name=name, role=role, communities=community, streets=street
        )
    err.print(f"已创建令牌 {token.id}（{token.role}，{token.name}）；明文只显示这一次：")
    print(token.token, flush=True)


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Option(help="登录名")],
    role: Annotated[str, typer.Option(help="admin / street / committee / auditor")],
    community: Communities = [],
    street: Streets = [],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="从标准输入读取密码")
    ] = False,
) -> None:
    """创建网页登录用户（密码只以加盐慢哈希保存）。"""
    if not password_stdin:
        err.print("[red]请用 --password-stdin 从标准输入提供密码，避免密码出现在命令行历史中[/red]")
        raise typer.Exit(2)
    password = sys.stdin.readline().rstrip("\r\n")
    with zizhi() as z:
        user = engine.create_user(
            z,
            CLI,
            username=username,
            role=role,
            password=password,
            communities=community,
            streets=street,
        )
    print(f"已创建用户 {user.username}（{user.role}）")


@community_app.command("create")
def community_create(
    id: Annotated[str, typer.Option(help="社区编号，如 lihe")],
    name: Annotated[str, typer.Option(help="名称，如 里河社区")],
    street: Annotated[str, typer.Option(help="所属街道")],
    district: Annotated[str, typer.Option(help="所属区")],
    kind: Annotated[str, typer.Option(help="urban 社区 / rural 村")] = "urban",
) -> None:
    """创建社区。"""
    with zizhi() as z:
        community = engine.create_community(
            z, CLI, id=id, name=name, street=street, district=district, kind=kind
        )
    print(f"已创建社区 {community.id}（{community.name}，{community.street}）")


@year_app.command("close")
def year_close(
    year: Annotated[int, typer.Argument(help="要结账的年度，如 2025")],
    force: Annotated[
        bool, typer.Option("--force", help="年度尚未结束也结账（需再输入两次年度确认）")
    ] = False,
) -> None:
    """年度结账：一次性释放该年度全部未用预留，此后该年度不再接受预留；记入历史。"""
    if force:
        for prompt in ("年度尚未结束也要结账？请输入要结账的年度", "请再输入一次年度"):
            if typer.prompt(prompt, default="", show_default=False).strip() != str(year):
                err.print("[red]输入的年度不一致，未结账[/red]")
                raise typer.Exit(2)
    with zizhi() as z:
        closed = engine.close_year(z, CLI, year, force=force)
    print(
        f"{closed.year} 年度已结账：释放 {closed.projects_released} 个项目的未用预留，"
        f"合计 {closed.released_fen / 100:,.2f} 元"
    )


@year_app.command("reopen")
def year_reopen(year: Annotated[int, typer.Argument(help="要撤销结账的年度")]) -> None:
    """撤销年度结账：结账释放的预留原样恢复（结账后项目有新办理记录时不能撤销）；记入历史。"""
    with zizhi() as z:
        reopened = engine.reopen_year(z, CLI, year)
    print(
        f"{reopened.year} 年度已撤销结账：恢复 {reopened.projects_restored} 个项目的预留，"
        f"合计 {reopened.restored_fen / 100:,.2f} 元"
    )


@demand_app.command("erase")
def demand_erase(
    community: Annotated[str, typer.Argument(help="社区编号")],
    demand_id: Annotated[int, typer.Argument(help="需求编号")],
) -> None:
    """应居民申请删除一条需求中的姓名和联系方式；删除本身记入历史，历史校验仍然通过。"""
    with zizhi() as z:
        erased = engine.erase_personal_data(z, CLI, community, demand_id)
    print(f"已删除社区 {erased.community_id} 需求 {erased.id} 中的居民姓名和联系方式")


@app.command()
def verify(
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="保存过的检查点 JSON 文件：核对当前历史是否延续了它（之前的事件未被改写）",
        ),
    ] = None,
    tree: Annotated[
        bool,
        typer.Option(
            "--tree",
            help="另外由事件重算默克尔树（证明所用的节点、叶子位置、按时间筛选所用的时间块）并核对",
        ),
    ] = False,
) -> None:
    """校验历史哈希链与账本；发现问题时以状态 1 退出并指出第一处。"""
    if checkpoint is not None:
        _verify_checkpoint(checkpoint)
        return
    # The second process is forked first, while this one has no thread and no connection.
    with engine.verify_helper() as helper:
        z = open_zizhi(Settings(), definitions=False)  # the history is checked without them
        with _spinner("正在校验历史链……", lambda n: f"正在校验历史链……已校验 {n} 条事件") as shown:
            report = engine.verify(z, CLI, progress=shown, helper=helper)
    if not report.ok:
        bad = report.first_bad or {}
        print(
            f"校验失败：链 {bad.get('chain')} 第 {bad.get('seq')} 条"
            f"（事件 {bad.get('event_id')}）：{bad.get('reason')}"
        )
        raise typer.Exit(1)
    print(
        f"校验通过：{report.checked} 条事件，哈希链完整，账本余额与分录一致，各业务表与历史记录一致"
    )
    if tree:
        _verify_tree(z)


@contextmanager
def _spinner(start: str, counted: Callable[[int], str]) -> Iterator[Callable[[int], None]]:
    """A spinner on stderr, gone when done; yields the callback that shows a count so far."""
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=err, transient=True
    ) as progress:
        task = progress.add_task(start, total=None)
        yield lambda n: progress.update(task, description=counted(n))


def _verify_tree(z: engine.Zizhi) -> None:
    with _spinner("正在校验默克尔树……", lambda n: f"正在校验默克尔树……已核对 {n} 片叶子") as shown:
        report = engine.verify_tree(z, CLI, progress=shown)
    if report.ok:
        print(
            f"默克尔树校验通过：{report.leaves} 片叶子，节点、叶子位置与时间块均与事件一致"
            "（树至最近一个检查点；之后的事件在下一个检查点时并入）"
        )
        return
    bad = report.first_bad or {}
    print(f"默克尔树校验失败：{bad.get('table')} {bad.get('row')}：{bad.get('reason')}")
    raise typer.Exit(1)


def _verify_checkpoint(path: Path) -> None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        err.print(f"无法读取检查点文件 {path}：{exc.strerror}", soft_wrap=True)
        raise typer.Exit(2) from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        err.print(f"{path} 不是检查点文件：内容不是 JSON", soft_wrap=True)
        raise typer.Exit(2) from None
    try:
        engine.parse_checkpoint(document)
    except engine.ValidationFailed as exc:
        err.print(f"{path}：{exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    z = open_zizhi(Settings())
    report = engine.verify_checkpoint(z, CLI, document)
    if report.ok:
        print(f"校验通过：{report.message}")
        return
    print(f"校验失败：{report.message}")
    raise typer.Exit(1)


@app.command("checkpoint")
def checkpoint_command() -> None:
    """签发检查点并记入历史（audit.checkpoint 事件，可由 Webhook 送出）；打印检查点 JSON。"""
    with zizhi() as z:
        view = engine.publish_checkpoint(z, force=True)
    assert view is not None
    print(engine.checkpoint_json(view))


@app.command()
def demo(
    years: Annotated[
        int,
        typer.Option(
            min=1,
            max=10,
            help="年度数：默认 3，即已结账的前两个年度与本年度；1 为仅本年度",
        ),
    ] = demo_district.DEFAULT_YEARS,
    communities: Annotated[
        int, typer.Option(min=1, max=168, help="社区数量，轮流取自 8 个街道")
    ] = 168,
    seed: Annotated[
        int, typer.Option(help="随机种子：相同种子生成相同的演示内容")
    ] = demo_district.DEFAULT_SEED,
) -> None:
    """在空数据库中生成演示辖区（姑苏区 8 个街道、168 个社区），每个项目都经流程引擎办理。"""
    with zizhi() as z:
        _demo(z, communities=communities, years=years, seed=seed)


def _demo(
    z: Zizhi,
    *,
    communities: int = 168,
    years: int = demo_district.DEFAULT_YEARS,
    seed: int = demo_district.DEFAULT_SEED,
) -> None:
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("正在准备……", total=None)

        def report(description: str, done: int, total: int) -> None:
            progress.update(task, description=description, completed=done, total=total)

        result = demo_district.generate(
            z, communities=communities, years=years, seed=seed, progress=report
        )
    for line in demo_district.summary(result, z.workflows):
        print(line)
    print(result.admin_token, flush=True)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
