"""The workflow definitions Zizhi ships: one YAML file per workflow version.

Files are named ``<name>.v<version>.yaml``; every version ever published stays here, because
a project keeps the version it started with.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from engine import DefinitionError, Workflow, WorkflowRegistry, load_definition

DEFINITIONS_DIR = Path(__file__).parent


def load_file(path: Path) -> Workflow:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DefinitionError(path.name, [f"not valid YAML: {exc}"]) from exc
    workflow = load_definition(raw, source=path.name)
    expected = f"{workflow.name}.v{workflow.version}.yaml"
    if path.name != expected:
        raise DefinitionError(path.name, [f"file must be named {expected!r}"])
    return workflow


def load_registry(directory: Path = DEFINITIONS_DIR) -> WorkflowRegistry:
    return WorkflowRegistry(load_file(p) for p in sorted(directory.glob("*.v*.yaml")))
