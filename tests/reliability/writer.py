"""One writer process that keeps writing until told to stop: ``python -m tests.reliability.writer``.

The parent writes a plan (one JSON line: ``url``, ``communities``) on stdin; the writer opens
its own engine, prints ``ready``, waits for ``go``, then loops over its communities — a
resident's demand (one event, the chain head moves) and an allocation change (a ledger entry
and its ``ledger.allocated`` event) — until a ``stop`` line arrives. It prints one JSON line:
how many changes it committed, and any error it met.
"""

from __future__ import annotations

import json
import select
import sys
from itertools import count, cycle

from engine.model import CLI, Principal, Role


def main() -> None:
    import engine
    from engine.store.db import Database
    from engine.store.uow import Zizhi
    from workflows import load_registry

    plan = json.loads(sys.stdin.readline())
    z = Zizhi(Database(plan["url"], pool_size=2), load_registry())
    communities: list[str] = plan["communities"]
    committee = Principal(
        id="token:writer", name="居委会", role=Role.committee, communities=frozenset(communities)
    )
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        sys.exit("writer: no go signal")
    done, errors = 0, []
    for n, community in zip(count(), cycle(communities), strict=False):
        if select.select([sys.stdin], [], [], 0)[0]:  # "stop", or the parent went away
            break
        try:
            engine.record_demand(
                z, committee, community, {"content": f"需求 {n}", "resident": "王老伯"}
            )
            engine.set_allocation(
                z, CLI, community, "self_governance", 2030, 5_000_000 + (n % 7) * 100
            )
            done += 2
        except Exception as exc:  # the parent must see it, not a dead writer
            errors.append(f"{type(exc).__name__}: {exc}")
            if len(errors) > 5:
                break
    print(json.dumps({"done": done, "errors": errors}, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
