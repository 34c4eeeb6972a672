"""The toolkit's accessibility cache: what one ``org.a11y.atspi.Cache.GetItems`` call returns.

Each item (D-Bus signature ``((so)(so)(so)iiassusau)``) describes one object the toolkit
bridge has registered; ``CacheItem`` names its ten fields, so the walk reads ``item.states``
instead of ``item[9]``, and ``CacheIndex`` finds them by path and by parent.
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


class CacheIndex:
    """A ``GetItems`` reply by object path, and each object's cached children.

    Nodes are made only for the items the walk reaches: a toolkit's cache also holds objects
    no longer in the tree (pages visited once), often more than those in it.
    """

    def __init__(self, items: list[Any] | None = None) -> None:
        self.by_path: dict[str, CacheItem] = {}
        self._children: dict[str, list[CacheItem]] = {}
        make, by_path, children = CacheItem._make, self.by_path, self._children
        for raw in items or ():  # dbus-fast gives each struct as a list
            item = make(raw)
            by_path[item.ref[1]] = item
            parent = item.parent[1]
            siblings = children.get(parent)
            if siblings is None:
                children[parent] = [item]
            else:
                siblings.append(item)

    def __len__(self) -> int:
        return len(self.by_path)

    def children_of(self, path: str, child_count: int) -> list[CacheItem] | None:
        """The object's children in order, if the cache holds all ``child_count`` of them."""
        kids = self._children.get(path, ())
        if child_count < 0 or len(kids) != child_count:
            return None
        ordered: list[CacheItem | None] = [None] * len(kids)
        for item in kids:  # indexes must be exactly 0..n-1 (GTK sends -1 when it does not know)
            index = item.index_in_parent
            if not 0 <= index < len(kids) or ordered[index] is not None:
                return None
            ordered[index] = item
        return ordered  # type: ignore[return-value]  # every slot is filled
