"""The toolkit's accessibility cache: what one ``org.a11y.atspi.Cache.GetItems`` call returns.

Each item (D-Bus signature ``((so)(so)(so)iiassusau)``) describes one object the toolkit
bridge has registered; ``CacheItem`` names its ten fields, so the walk reads ``item.states``
instead of ``item[9]``.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class CacheItem(NamedTuple):
    """One object of the cache, as the toolkit describes it."""

    ref: list[str]  # [bus name, object path] of the object
    application: list[str]  # [bus name, object path] of its application
    parent: list[str]  # [bus name, object path] of its parent
    index_in_parent: int  # -1 when the toolkit does not know
    child_count: int  # -1 when the toolkit does not know (menus)
    interfaces: list[str]
    name: str
    role: int
    description: str
    states: list[int]  # the state bit words

    @property
    def path(self) -> str:
        return self.ref[1]

    @property
    def parent_path(self) -> str:
        return self.parent[1]


def decode(items: list[Any]) -> list[CacheItem]:
    """The items of a ``GetItems`` reply (dbus-fast gives each struct as a list), named."""
    make = CacheItem._make
    return [make(item) for item in items]
