"""A per-client rate limit: each client (its address, through trusted proxies) has a bucket of `burst` requests
that refills at `per_minute`; a request that finds it empty is told how long to wait (429, Retry-After).

Buckets live in this process only and are bounded: at most MAX_CLIENTS, the least recently seen dropped
first (a dropped client starts again with a full bucket). With several workers or replicas each counts on
its own, so a client may make up to that many times the rate in all.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_CLIENTS = 10_000  # about 100 bytes each


class RateLimit:
    def __init__(self, per_minute: int, burst: int | None = None, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = MAX_CLIENTS) -> None:
        self.rate = per_minute / 60.0  # requests per second
        self.burst = float(burst if burst is not None else max(1, per_minute // 10))
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, when)

    def __len__(self) -> int:
        return len(self._buckets)

    def wait(self, client: str) -> int:
        """0 when `client` may go on (and counts this request), else the whole seconds until it may."""
        now = self.clock()
        tokens, when = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - when) * self.rate)
        if tokens >= 1:
            tokens -= 1
            wait = 0
        else:
            wait = max(1, math.ceil((1 - tokens) / self.rate))
        self._buckets[client] = (tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait
