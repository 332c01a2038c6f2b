"""A client-side leaky bucket for the Bitrix24 REST limits (2 requests a second, bursts of 50).

Implemented as the generic cell rate algorithm, the exact equivalent of a leaky bucket of
``capacity`` draining ``rate`` requests a second: each request is scheduled no earlier than
``TAT - (capacity - 1) / rate``, where TAT (the theoretical arrival time) moves ``1 / rate``
further with every request. So in any interval of length ``t`` at most ``capacity + rate * t``
requests start. Thread-safe; the wait happens outside the lock, in the order requests asked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class LeakyBucket:
    def __init__(
        self,
        rate: float,
        capacity: int,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("rate must be positive and capacity at least 1")
        self.rate = rate
        self.capacity = capacity
        self._interval = 1.0 / rate
        self._tolerance = (capacity - 1) * self._interval
        self._monotonic = monotonic
        self._sleep = sleep
        self._tat = monotonic()
        self._lock = threading.Lock()

    @property
    def interval(self) -> float:
        """Seconds between two requests once the burst is used up."""
        return self._interval

    def reserve(self) -> float:
        """Take a place in the bucket; returns the monotonic time at which the request may start."""
        with self._lock:
            now = self._monotonic()
            tat = max(self._tat, now)
            start = max(now, tat - self._tolerance)
            self._tat = tat + self._interval
            return start

    def acquire(self) -> float:
        """Wait until a request may start; returns how long it waited."""
        start = self.reserve()
        waited = 0.0
        while True:
            left = start - self._monotonic()
            if left <= 0:
                return waited
            self._sleep(left)
            waited += left

    def fill(self) -> None:
        """The server said its bucket is full (``QUERY_LIMIT_EXCEEDED``): behave as if ours were
        full too, so the next request waits one interval and the following ones keep the rate."""
        with self._lock:
            now = self._monotonic()
            self._tat = max(self._tat, now + self._tolerance + self._interval)
