"""One clock per app, which every part reads (layer: bottom, beside settings).

A test that points it at :class:`~flask_token_vault_pytest.testing.FakeClock` moves the
transport's deadlines, the cache's expiry and lock waits and the exchange's issue times at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable


@runtime_checkable
class ClockSource(Protocol):
    """Where a :class:`Clock` reads the time."""

    def time(self) -> float:
        """Return the wall-clock time in epoch seconds."""

    def monotonic(self) -> float:
        """Return a monotonic time in seconds (only differences mean anything)."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""


class SystemClock:
    """The machine's clocks: ``time.time``, ``time.monotonic`` and ``time.sleep`` themselves."""

    monotonic = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)
    time = staticmethod(time.time)  # last: from here on, "time" in this body is this attribute


class _WallOnly(SystemClock):
    """Read the wall time from a bare ``() -> epoch seconds``, the rest from the machine."""

    def __init__(self, wall: Callable[[], float]) -> None:
        self._wall = wall

    def time(self) -> float:
        return self._wall()


class Clock:
    """The clock an app's parts share; :meth:`use` points all of them at another source."""

    __slots__ = ("_source", "monotonic", "time")

    def __init__(self, source: ClockSource | None = None) -> None:
        self.use(source or SystemClock())

    def use(self, source: ClockSource | Callable[[], float]) -> None:
        """Read time from ``source`` from now on: a :class:`ClockSource` or a wall-time function."""
        self._source = source if isinstance(source, ClockSource) else _WallOnly(source)
        # Bound once here, read on every request: no call through this object on the hot path.
        #: Return the wall-clock time in epoch seconds.
        self.time: Callable[[], float] = self._source.time
        #: Return the monotonic time in seconds.
        self.monotonic: Callable[[], float] = self._source.monotonic

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a fake source advances instead)."""
        if seconds > 0:
            self._source.sleep(seconds)


#: The last second of the year 9999 (UTC): later "times" are refused, not computed with.
MAX_NUMERIC_DATE = 253_402_300_799


def is_numeric_date(value: object) -> bool:
    """Return whether ``value`` is a time in epoch seconds that code can safely compute with.

    A JSON number (not a boolean) from 1970 to the end of the year 9999. Refused: NaN, which
    compares false with everything (an expiry of NaN never comes), an infinity, and an integer
    too large for ``float()`` (hundreds of digits raise ``OverflowError``).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    # The range check is the finiteness check too, and compares an int exactly, never converted
    # (math.isfinite would raise OverflowError on a huge int).
    return 0 <= value <= MAX_NUMERIC_DATE
