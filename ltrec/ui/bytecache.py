"""A least-recently-used cache bounded by bytes, for page results that can be large.

Streamlit's ``max_entries`` bounds how many results a cache keeps, not how big they are: 256
item-level frames are a few MB on the demo and gigabytes on a catalogue of a million items.
:class:`ByteCache` keeps each value pickled (as ``st.cache_data`` does: every caller gets its own
copy, so a page that changes a frame cannot change the cache) and counts the pickled bytes; past
``max_bytes`` it drops the least recently used values. A value larger than a quarter of the
budget is returned but not kept: it would evict everything else for one entry.

No Streamlit here: the pages' caches (:mod:`ltrec.ui.cache`, :mod:`ltrec.ui.studio`) wrap it.
"""

from __future__ import annotations

import functools
import pickle
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Generic, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

#: Every ByteCache made by :func:`bounded`, so that one call can empty them all.
_ALL: list[ByteCache] = []


class ByteCache:
    """Pickled values by key, at most ``max_bytes`` of them, least recently used dropped first.

    Thread-safe (Streamlit runs sessions in threads); two threads that miss the same key both
    compute it, and the later one's value is kept.
    """

    def __init__(self, max_bytes: int, ttl_s: float | None = None) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = int(max_bytes)
        self.ttl_s = ttl_s
        self._items: OrderedDict[Hashable, tuple[bytes, float]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes held now (the pickled values)."""
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items and not self._expired(self._items[key][1])

    def _expired(self, stored: float) -> bool:
        return self.ttl_s is not None and time.monotonic() - stored > self.ttl_s

    def get(self, key: Hashable, default: Any = None) -> Any:
        """A fresh copy of the value under ``key`` (``default`` when absent or expired)."""
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                return default
            if self._expired(entry[1]):
                self._drop(key)
                return default
            self._items.move_to_end(key)
            blob = entry[0]
        return pickle.loads(blob)  # noqa: S301 - our own pickles, never read from outside

    def put(self, key: Hashable, value: Any) -> bool:
        """Keep ``value`` under ``key``; False when it is too large to keep (over a quarter of
        the budget). Older values are dropped until the total fits."""
        blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            if key in self._items:
                self._drop(key)
            if len(blob) * 4 > self.max_bytes:
                return False
            self._items[key] = (blob, time.monotonic())
            self._bytes += len(blob)
            while self._bytes > self.max_bytes:
                self._drop(next(iter(self._items)))
        return True

    def _drop(self, key: Hashable) -> None:
        blob, _ = self._items.pop(key)
        self._bytes -= len(blob)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


class Bounded(Generic[P, R]):
    """A function whose results live in a :class:`ByteCache`, keyed by its arguments."""

    def __init__(
        self,
        fn: Callable[P, R],
        cache: ByteCache,
        on_miss: Callable[[], AbstractContextManager[Any]] | None,
    ) -> None:
        self.fn = fn
        self.cache = cache
        self.on_miss = on_miss
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        key = (args, tuple(sorted(kwargs.items())))
        missing = object()
        value = self.cache.get(key, missing)
        if value is not missing:
            return value
        with self.on_miss() if self.on_miss is not None else nullcontext():
            value = self.fn(*args, **kwargs)
        self.cache.put(key, value)
        return value

    def clear(self) -> None:
        self.cache.clear()


def bounded(
    max_mb: float,
    ttl_s: float | None = None,
    on_miss: Callable[[], AbstractContextManager[Any]] | None = None,
) -> Callable[[Callable[P, R]], Bounded[P, R]]:
    """Decorate a function of hashable arguments (short strings, numbers: keys, never frames)
    so that its results are cached in at most ``max_mb`` MiB of pickles. ``on_miss``: a context
    manager entered while a missing value is computed (e.g. a spinner)."""

    def wrap(fn: Callable[P, R]) -> Bounded[P, R]:
        cache = ByteCache(int(max_mb * 2**20), ttl_s)
        _ALL.append(cache)
        return Bounded(fn, cache, on_miss)

    return wrap


def clear_all() -> None:
    """Empty every :func:`bounded` cache (after a dataset is deleted or replaced)."""
    for cache in _ALL:
        cache.clear()
