"""The workflow definitions Zizhi ships: one YAML file per workflow version.

Files are named ``<name>.v<version>.yaml``; every version ever published stays here, because
a project keeps the version it started with.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from engine import DefinitionError, Menu, Workflow, WorkflowRegistry, load_definition, load_menu

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


MENU_PREFIX = "menu."  # menu.v<version>.yaml: the menu project library, not a workflow


def load_menu_file(path: Path) -> Menu:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DefinitionError(path.name, [f"not valid YAML: {exc}"]) from exc
    menu = load_menu(raw, source=path.name)
    if path.name != f"{MENU_PREFIX}v{menu.version}.yaml":
        raise DefinitionError(path.name, [f"file must be named menu.v{menu.version}.yaml"])
    return menu


def latest_menu(directory: Path = DEFINITIONS_DIR) -> Menu | None:
    """The newest version of the menu project library (projects name its items' ids, which
    stay stable from one version to the next)."""
    menus = [load_menu_file(p) for p in directory.glob(f"{MENU_PREFIX}v*.yaml")]
    return max(menus, key=lambda m: m.version, default=None)


def load_registry(directory: Path = DEFINITIONS_DIR) -> WorkflowRegistry:
    return WorkflowRegistry(
        (
            load_file(p)
            for p in sorted(directory.glob("*.v*.yaml"))
            if not p.name.startswith(MENU_PREFIX)
        ),
        menu=latest_menu(directory),
    )
