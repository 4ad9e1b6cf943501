"""The io_uring engine's own SQEs (time limits, to_thread's wake-ups) and requests of several SQEs.

A base class of :class:`~rocket.engines.uring.UringEngine`. These SQEs carry
user_data at or above ``INTERNAL`` (2**63), so they never meet the executor's
tokens; ``_internal`` keeps what each points to (a timespec, the wake buffer)
until its CQE is reaped:

* ``timeout(s, request)``: the request's SQE is linked (``IOSQE_IO_LINK``) to a
  ``link_timeout`` SQE with user_data ``INTERNAL | token``. When it fires the
  kernel cancels the request, whose -ECANCELED becomes ``TimeoutError``. A
  request prepared again under the same token (the rest of a ``sendall``)
  links a new one; the old one's CQE is then counted in ``_stale``.
* A request that needs more than one SQE (a ``sendall`` the kernel took in
  part, a datagram poll that lost its datagram) is prepared again under the
  same token by ``_again``, keeping its record (and buffers) in ``_inflight``.
* ``to_thread``: the job runs in the engine's :class:`~rocket.engines._workers.JobTable`.
  A read of the pool's eventfd (user_data ``WAKE``) stays in flight while jobs
  are out: a finished job completes it, which wakes the ring like any CQE. A
  time limit on a job is a plain timeout SQE; when it fires, a job no worker
  has started is dropped with ``TimeoutError``.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable
from typing import Any

from rocket import ops
from rocket.engines import Completion, _liburing, unsupported
from rocket.engines._uring_finish import Sending, sent_some
from rocket.engines._workers import JobTable
from rocket.ops import Timeout, ToThread, timed_out
from rocket.request import IORequest

__all__ = ["INTERNAL", "WAKE", "UringInternal"]

INTERNAL = 2**63  # user_data from here up: the engine's own SQEs
WAKE = 2**64 - 1  # the read of the worker pool's eventfd

_Finisher = Callable[[int, Any], Any]


class UringInternal:
    """Time limits and to_thread wake-ups; see the module docstring."""

    __slots__ = ()

    name: str
    _ring: _liburing.Ring
    _internal: dict[int, Any]
    _stale: dict[int, int]
    _jobs: JobTable
    _closing: bool
    _prep: dict[type, Callable[[int, Any], tuple[_Finisher, Any]]]
    _inflight: dict[int, tuple[_Finisher, IORequest[Any], Any]]

    def submit(self, token: int, request: IORequest[Any]) -> None:
        raise NotImplementedError

    def _timeout(self, token: int, r: Timeout[Any]) -> tuple[_Finisher, Any]:
        if r.request.__class__ is ToThread:
            self._start_job(token, r.request, r)
            return None, None  # type: ignore[return-value]
        prep = self._prep.get(r.request.__class__)
        if prep is None or r.request.__class__ is Timeout:
            raise unsupported(self.name, r)
        self._ring.reserve(2)  # the request and its linked timeout go in together
        finish, keep = prep(token, r.request)
        if r.request.__class__ is ops.SendAll:  # its later sends share the time limit
            finish, keep = sent_some, Sending(r.request.data)
            keep.deadline = time.monotonic() + r.seconds
        self._link_timeout(token, r.seconds)
        return finish, keep

    def _link_timeout(self, token: int, seconds: float) -> None:
        """Link a time limit to the SQE prepared last (after ``reserve(2)``)."""
        timespec = self._ring.new_timespec(seconds)
        key = INTERNAL | token
        self._ring.prep_link_timeout(key, timespec)
        if key in self._internal:  # prepared again: the old link timeout's CQE is still due
            self._stale[key] = self._stale.get(key, 0) + 1
        self._internal[key] = timespec

    def _start_job(self, token: int, job: ToThread[Any], request: IORequest[Any]) -> None:
        """Hand a to_thread job to the pool; arm the eventfd read (and its timer)."""
        self._jobs.start(token, request, job.call)
        if WAKE not in self._internal:
            buf = self._internal[WAKE] = bytearray(8)
            self._ring.prep_read(WAKE, self._jobs.pool.wake_fd, buf, 0)
        if isinstance(request, Timeout):
            timespec = self._internal[INTERNAL | token] = self._ring.new_timespec(request.seconds)
            self._ring.prep_timeout(INTERNAL | token, timespec)

    def _internal_done(self, user_data: int, res: int, completions: list[Completion]) -> None:
        """The CQE of one of the engine's own SQEs."""
        stale = self._stale.get(user_data)
        if stale:  # the link timeout of a request prepared again since: not the live one
            if stale == 1:
                del self._stale[user_data]
            else:
                self._stale[user_data] = stale - 1
            return
        del self._internal[user_data]
        if user_data == WAKE:
            for token, value, error in self._jobs.collect(consume_wake=False):
                if INTERNAL | token in self._internal:  # its time limit: not needed now
                    self._ring.prep_cancel(INTERNAL | token)
                completions.append((token, value, error))
            if self._jobs and not self._closing:
                buf = self._internal[WAKE] = bytearray(8)
                self._ring.prep_read(WAKE, self._jobs.pool.wake_fd, buf, 0)
            return
        token = user_data - INTERNAL  # a link timeout, or a to_thread job's time limit
        job = self._jobs.requests.get(token)
        if res == -errno.ETIME and job is not None and self._jobs.cancel(token):
            completions.append((token, None, timed_out(job)))

    def _again(
        self,
        token: int,
        finish: _Finisher,
        request: Any,
        keep: Any,
        res: int,
        out: list[Completion],
    ) -> None:
        """Prepare the next step of a request that is not done (same token, same record)."""
        if keep.__class__ is ops.SendAll:  # the first send was partial: track the rest
            finish, keep = sent_some, Sending(keep.data)
            keep.sent = res
        elif keep.__class__ is not Sending:  # a datagram poll that lost the datagram
            self.submit(token, request)
            return
        if keep.deadline is None:
            self._ring.prep_send(token, request.fd, keep.rest())
        else:  # under rocket.timeout(): the rest gets what is left of the time
            left = keep.deadline - time.monotonic()
            if left <= 0:
                out.append((token, None, timed_out(request)))
                return
            self._ring.reserve(2)
            self._ring.prep_send(token, request.request.fd, keep.rest())
            self._link_timeout(token, left)
        self._inflight[token] = (finish, request, keep)
