"""A bounded cache that keeps the entries in use: two generations of a dict (a second chance).

The caches a client keeps for its whole life (links and ids per href, schedule policies, parsed
URLs) must be bounded, and a long-lived exporter sweeping thousands of tenants adds new entries
to them for ever. A cache that stops adding once full keeps what it saw first, however stale (a
deleted tenant's), and misses every new entry from then on; one that is emptied when full drops
its hot entries with the cold and misses them all again. `Kept` drops only what was not used
during a whole generation, and a hit costs what a dict's costs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar, overload

__all__ = ["Kept"]

K = TypeVar("K")
V = TypeVar("V")
D = TypeVar("D")


class Kept(Generic[K, V]):
    """A cache of at most ``2 * generation`` entries that keeps those in use.

    A hit is `get`, the current generation's own ``dict.get`` (hold it, or `current`, in a
    local, a closure cell or an attribute: nothing more on the hot path). On a miss, `recall`
    finds the entry in the previous generation, if it is there, and brings it back into the
    current one; `keep` adds an entry.
    When the current generation holds ``generation`` entries, they become the previous
    generation (the one before is dropped) and the current one starts empty, the same dict. So
    an entry used at least once while ``generation`` others are added is never dropped, and one
    not used for two generations is, with no work per hit to know which is which (a clock's
    second chance, a generation at a time). Dropping a generation costs a copy of it: one step
    per entry added, spread over the additions.
    """

    __slots__ = ("_generation", "_previous", "current", "get")

    current: dict[K, V]
    """The current generation: the same dict for the cache's life. Look up in it (``.get``: a
    hit at a dict's speed), never write to it (`keep` does)."""
    get: Callable[[K], V | None]
    """``current.get``."""

    def __init__(self, generation: int) -> None:
        self._generation = generation
        self.current = {}
        self._previous: dict[K, V] = {}
        self.get = self.current.get

    @overload
    def recall(self, key: K) -> V | None: ...
    @overload
    def recall(self, key: K, default: D) -> V | D: ...
    def recall(self, key: K, default: object = None) -> object:
        """The entry of ``key`` from the previous generation, now in the current one (``default``
        when it is not there either: the caller builds the value and `keep`s it)."""
        previous = self._previous
        if not previous or key not in previous:  # empty until the first generation is full:
            return default  # no hash of ``key`` (a policy's is a 30-item tuple) for a new cache
        value = previous.pop(key)
        self.keep(key, value)
        return value

    def keep(self, key: K, value: V) -> None:
        """Add an entry; a full current generation becomes the previous one first."""
        current = self.current
        if len(current) >= self._generation:
            self._previous = current.copy()
            current.clear()  # the same dict: `get` stays bound to it
        current[key] = value

    def __len__(self) -> int:
        """How many entries the two generations hold (at most ``2 * generation``)."""
        return len(self.current) + len(self._previous)

    def __iter__(self) -> Iterator[K]:
        """The keys of both generations, the current one's first."""
        yield from self.current
        yield from self._previous

    def __contains__(self, key: object) -> bool:
        return key in self.current or key in self._previous

    def __repr__(self) -> str:
        return f"<Kept {len(self)} of at most {2 * self._generation}>"
