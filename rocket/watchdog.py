"""The watchdog: a warning when one fiber step blocks the loop for too long.

A blocking call in a fiber (``time.sleep``, a synchronous HTTP client, a long
computation) stalls every fiber, silently. ``rocket.run(main(), slow_step=0.1)``
(the default; ``None`` turns it off) starts a watchdog thread that logs, on the
``rocket`` logger, once per stall::

    WARNING rocket: fiber 3 'handler' has been running for 0.10 s without yielding,
    at app.py:42 in handler; every other fiber waits meanwhile: ...

How it costs the loop nothing: the executor adds one to ``executor.passes``
once per pass of its loop and notes the fiber it steps in
``executor.running``, nothing more. A pass steps each runnable fiber at most
once, so while both stay the same, one step is still running (or the loop is
idle). The watchdog wakes every quarter of the threshold and reads the two;
only when neither has moved since the last look does it look at the loop
thread's stack (``sys._current_frames()``): a loop idle in its engine is not
inside ``Executor._step``, a stuck one is, and the innermost frame is where it
is stuck. So a warning comes between one and one and a quarter thresholds
into a stall, and the time it gives is how long the step has run at least.

The watchdog holds the GIL only for those looks, about 40 times a second at
the default threshold.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rocket.executor import Executor

__all__ = ["DEFAULT_SLOW_STEP", "Watchdog", "stuck_frame"]

#: The default threshold of ``rocket.run(slow_step=...)``, in seconds.
DEFAULT_SLOW_STEP = 0.1

_log = logging.getLogger("rocket")


def stuck_frame(executor: Executor) -> FrameType | None:
    """The innermost frame of the loop's thread if it is inside a fiber step, else None."""
    if executor.thread is None:
        return None
    frame = sys._current_frames().get(executor.thread)
    innermost = frame
    step = type(executor)._step.__code__
    while frame is not None:
        if frame.f_code is step:
            return innermost
        frame = frame.f_back
    return None


def where(frame: FrameType) -> str:
    """``file.py:42 in func`` for a frame (the file by its base name)."""
    code = frame.f_code
    return f"{code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno} in {code.co_name}"


class Watchdog:
    """A thread that reports fiber steps longer than ``threshold`` seconds."""

    def __init__(self, executor: Executor, threshold: float) -> None:
        self._executor = executor
        self._threshold = threshold
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="rocket-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """End the thread (at once: it waits on an Event) and join it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _watch(self) -> None:
        executor, threshold = self._executor, self._threshold
        seen = (executor.passes, id(executor.running))
        since = time.monotonic()  # when ``seen`` was first read
        reported = None  # the step last warned about: once per stall
        while not self._stop.wait(threshold / 4):
            now_seen = (executor.passes, id(executor.running))
            now = time.monotonic()
            if now_seen != seen:
                seen, since = now_seen, now
                continue
            if now_seen == reported or now - since < threshold:
                continue
            frame = stuck_frame(executor)
            if frame is None:
                since = now  # idle in the engine: a step starting later is timed from here
                continue
            reported = now_seen
            self._warn(now - since, frame)
            del frame

    def _warn(self, seconds: float, frame: FrameType) -> None:
        fiber = self._executor.running
        who = f"fiber {fiber.id} {fiber.name!r}" if fiber is not None else "a fiber"
        _log.warning(
            "rocket: %s has been running for %.2f s without yielding, at %s; every other "
            "fiber waits meanwhile: run blocking calls with 'yield rocket.to_thread(func, ...)' "
            "(rocket.run(..., slow_step=None) turns this warning off)",
            who,
            seconds,
            where(frame),
        )
