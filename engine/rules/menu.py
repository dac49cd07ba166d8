"""The menu project library (菜单式项目库): categories, their sub-items, and the items a
project names.

The library is data (``workflows/menu.v<version>.yaml``), loaded here and checked: ids are
unique across the whole library and each item belongs to exactly one sub-item of one
category. A project names an item; its sub-item and category follow. What people type is
read in normal form (``engine.text.key``): ``Ａ０１０１　`` is item ``A0101``, and an item's
exact label names it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine import text
from engine.errors import DefinitionError, ValidationFailed

UNCLASSIFIED = "unclassified"  # the category of an old project whose category was free text
UNCLASSIFIED_LABEL = "未分类"


@dataclass(frozen=True, slots=True)
class MenuItem:
    id: str
    label: str
    sub_item_id: str
    sub_item_label: str
    category_id: str
    category_label: str


@dataclass(frozen=True, slots=True)
class SubItem:
    id: str
    label: str
    items: tuple[MenuItem, ...]


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    label: str
    sub_items: tuple[SubItem, ...]

    @property
    def items(self) -> list[MenuItem]:
        return [item for sub in self.sub_items for item in sub.items]


class Menu:
    """One version of the library, with lookups by normal form."""

    def __init__(self, version: int, label: str, categories: tuple[Category, ...]) -> None:
        self.version = version
        self.label = label
        self.categories = categories
        self.items = {item.id: item for c in categories for item in c.items}
        self._by_key: dict[str, MenuItem] = {}
        for item in self.items.values():
            self._by_key.setdefault(text.key(item.label), item)
        for item in self.items.values():  # an id wins over a label that reads the same
            self._by_key[text.key(item.id)] = item
        self._categories = {text.key(c.id): c for c in categories} | {
            text.key(c.label): c for c in categories
        }

    @classmethod
    def empty(cls) -> Menu:
        return cls(0, "", ())

    def item(self, typed: str, *, field: str = "menu_item") -> MenuItem:
        """The item ``typed`` names (its id or its label, as people type them)."""
        found = self._by_key.get(text.key(typed)) if isinstance(typed, str) else None
        if found is None:
            raise ValidationFailed.fields(
                {field: "菜单式项目库中没有这一项目；请按 GET /api/v1/menu 所列的编号选择"}
            )
        return found

    def category(self, typed: str) -> Category | None:
        """The category a text names (its id or label in normal form), if any."""
        return self._categories.get(text.key(typed))

    def category_of(self, menu_item: str | None, category: str) -> tuple[str, str]:
        """(category id, label) of a project: from its item, else from its category text
        when that names a category, else unclassified (old free-text categories)."""
        if menu_item is not None and menu_item in self.items:
            found = self.items[menu_item]
            return found.category_id, found.category_label
        named = self.category(category)
        if named is not None:
            return named.id, named.label
        return UNCLASSIFIED, UNCLASSIFIED_LABEL

    def as_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "label": self.label,
            "categories": [
                {
                    "id": c.id,
                    "label": c.label,
                    "sub_items": [
                        {
                            "id": s.id,
                            "label": s.label,
                            "items": [{"id": i.id, "label": i.label} for i in s.items],
                        }
                        for s in c.sub_items
                    ],
                }
                for c in self.categories
            ],
        }


def load_menu(raw: Mapping[str, Any], *, source: str = "menu") -> Menu:
    """A menu from its YAML data; DefinitionError listing every problem found."""
    problems: list[str] = []
    seen: set[str] = set()

    def ident(node: Any, where: str) -> tuple[str, str]:
        if not isinstance(node, Mapping):
            problems.append(f"{where}: must be a mapping")
            return "", ""
        ident, label = node.get("id"), node.get("label")
        if not isinstance(ident, str) or not ident.isascii() or not ident.isalnum():
            problems.append(f"{where}: id must be ASCII letters and digits")
            ident = ""
        elif text.key(ident) in seen:
            problems.append(f"{where}: id {ident!r} is used twice")
        seen.add(text.key(str(ident)))
        if not isinstance(label, str) or text.is_blank(label):
            problems.append(f"{where}: label must be a non-empty text")
            label = ""
        return ident, text.clean(label)

    version = raw.get("version") if isinstance(raw, Mapping) else None
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise DefinitionError(source, ["version must be a positive integer"])
    categories: list[Category] = []
    for c_node in raw.get("categories") or []:
        c_id, c_label = ident(c_node, "category")
        subs: list[SubItem] = []
        for s_node in (c_node.get("sub_items") or []) if isinstance(c_node, Mapping) else []:
            s_id, s_label = ident(s_node, f"{c_id}: sub-item")
            items = tuple(
                MenuItem(*ident(i_node, f"{s_id}: item"), s_id, s_label, c_id, c_label)
                for i_node in ((s_node.get("items") or []) if isinstance(s_node, Mapping) else [])
            )
            if not items:
                problems.append(f"{s_id}: a sub-item has at least one item")
            subs.append(SubItem(s_id, s_label, items))
        categories.append(Category(c_id, c_label, tuple(subs)))
    if not categories:
        problems.append("a menu has at least one category")
    if problems:
        raise DefinitionError(source, problems)
    return Menu(version, text.clean(str(raw.get("label") or "菜单式项目库")), tuple(categories))
