"""Run the real ``zizhi`` command line and server in a subprocess, as an operator would."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx

REPO = Path(__file__).resolve().parents[2]


def cli(
    database_url: str, *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        input=stdin,
        text=True,
        capture_output=True,
        cwd=cwd or REPO,
        timeout=300,
        check=False,
        env={**os.environ, "ZIZHI_DATABASE_URL": database_url, "PYTHONPATH": str(REPO)},
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(
    database_url: str,
    *options: str,
    cwd: Path | None = None,
    log_level: str = "warning",
    output: list[str] | None = None,
) -> Iterator[tuple[str, list[str]]]:
    """Start ``zizhi serve``; yield its base URL and the lines it printed on stdout.

    ``output``, if given, receives everything the server wrote (stdout and stderr) once it
    has stopped.
    """
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port), *options],
        cwd=cwd or REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "ZIZHI_DATABASE_URL": database_url,
            "PYTHONPATH": str(REPO),
            "ZIZHI_LOG_LEVEL": log_level,
        },
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # --demo fills a whole district before the server answers
        wait_until_up(base, process, timeout=600, why=lambda: process.communicate()[1])
        yield base, _printed(process)
    finally:
        process.terminate()
        rest = process.communicate(timeout=30)  # reaps it and closes its pipes
        if output is not None:
            output.extend(rest)


def wait_until_up(
    base: str, process: subprocess.Popen[Any], *, timeout: float, why: Callable[[], str]
) -> None:
    """Wait until the server at ``base`` answers /healthz; ``why`` explains an early exit."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"zizhi serve exited: {why()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("zizhi serve did not come up")
        time.sleep(0.05)


def _printed(process: subprocess.Popen[str]) -> list[str]:
    """The lines printed on stdout before the server answered (the token, if any).

    Read from the file descriptor directly: select() cannot see what a buffered reader
    has already pulled in.
    """
    assert process.stdout is not None
    fd = process.stdout.fileno()
    chunks = []
    while select.select([fd], [], [], 0.5)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode().splitlines()
