"""Cache: encoded responses in memory, bounded by bytes, least recently used out.

The key carries the file's size and mtime, so a changed file never answers
from a stale entry. A `Cache` protocol keeps room for a shared cache later.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sized
from typing import Any, Protocol


class Cache(Protocol):
    def get(self, key: Hashable) -> Any: ...

    def put(self, key: Hashable, value: Sized) -> None: ...


class MemoryCache:
    """Values are bytes or anything whose `len` is what it costs (an image response with its headers),
    or whatever `cost` weighs.

    `largest`: the biggest value kept (default an eighth of the bound, so one huge image
    cannot flush everything else)."""

    def __init__(self, max_bytes: int, largest: int | None = None, cost: Callable[[Any], int] = len) -> None:
        self.max_bytes = max_bytes
        self.largest = max_bytes // 8 if largest is None else largest
        self.cost = cost
        self.size = 0
        self._items: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable) -> Any:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        if self.cost(value) > self.largest:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.size -= self.cost(old)
        self._items[key] = value
        self.size += self.cost(value)
        while self.size > self.max_bytes:
            _, dropped = self._items.popitem(last=False)
            self.size -= self.cost(dropped)

    def pop(self, key: Hashable) -> None:
        dropped = self._items.pop(key, None)
        if dropped is not None:
            self.size -= self.cost(dropped)

    def __len__(self) -> int:
        return len(self._items)
