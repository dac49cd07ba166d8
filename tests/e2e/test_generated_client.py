"""A client generated from the served ``/openapi.json`` drives a project against a real server.

``openapi-python-client`` generates the package with its own command line; pip installs it
with its dependencies into a directory of its own (the test venv is untouched); a separate
Python process that sees only that directory and the standard library runs
``drive_generated_client.py``.
Generation warnings fail the test: a piece the generator had to leave out is a gap in the
contract.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
import pytest

from engine.store.uow import Zizhi
from tests.e2e.server import serve

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
# The generator's own knobs: no formatter hooks (the venv's ruff is not the point here), and
# JSON Lines and XLSX exports read as bytes, the media types it has no reader for.
CONFIG = {
    "post_hooks": [],
    "content_type_overrides": {
        "application/jsonl": "application/octet-stream",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (
            "application/octet-stream"
        ),
    },
}


# Isolated (-I -S: no repository, no site-packages, no PYTHON* variables), the driver's path
# is the installed client and its dependencies only, so it cannot import anything of ours.
BOOTSTRAP = (
    "import os, runpy, sys; sys.path[:0] = sys.argv[1].split(os.pathsep); "
    "sys.argv = sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Installed clients by the document's digest: generated once per distinct document."""
    return {}


def _install(document: bytes, root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "openapi.json").write_bytes(document)
    (root / "config.json").write_text(json.dumps(CONFIG))
    result = _run(
        BIN / "openapi-python-client",
        "generate",
        "--path",
        "openapi.json",
        "--config",
        "config.json",
        "--meta",
        "setup",
        "--output-path",
        "client",
        "--fail-on-warning",
        cwd=root,
    )
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    # As an integrator would: pip builds and installs it with its dependencies (and would
    # refuse a package name it cannot use; the document's title decides the name).
    _run(
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--target",
        "site",
        "./client",
        cwd=root,
    )
    return root / "site"


def test_a_generated_client_drives_a_project_through_every_step(
    fresh_z: Zizhi, generated: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    url = fresh_z.db.url.render_as_string(hide_password=False)
    with serve(url) as (base, printed):
        document = httpx.get(f"{base}/openapi.json", timeout=60).content
        digest = hashlib.sha256(document).hexdigest()
        if digest not in generated:
            generated[digest] = _install(document, tmp_path_factory.mktemp("generated"))
        site = generated[digest]
        assert (site / "zizhi_api_client" / "api" / "actions" / "fire_approve.py").exists()
        drive = subprocess.run(
            [
                sys.executable,
                "-I",
                "-S",
                "-c",
                BOOTSTRAP,
                str(site),
                str(HERE / "drive_generated_client.py"),
                base,
                printed[-1],
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert drive.returncode == 0, drive.stdout + drive.stderr
    assert drive.stdout.strip().splitlines()[-1] == "done"
