"""The slider demo's background worker: the newest input wins (notebook 09).

A slider dragged across ten values must not queue ten redraws: the class would watch the picture replay every
step for seconds while the controls already show the last one. :class:`NewestInputWins` keeps one wanted
request; an input that arrives while the worker computes replaces it, and a finished computation whose request
is no longer the newest is dropped, never shown. No widgets here: :mod:`course_lib.widgets` passes functions that
compute and show.
"""

from __future__ import annotations

import threading
from typing import Callable, Iterator

__all__ = ["NewestInputWins"]


class NewestInputWins:
    """Computes only for the newest request, in a background thread or synchronously. Used by the demo.

    Args:
        compute: ``compute(request)`` is a generator run in the worker; each ``yield`` gives a function that
            shows what has been computed so far (e.g. the pictures, then the RD plot). That function is called
            under :attr:`lock`, and only while no newer request has come; otherwise the computation is dropped
            (:attr:`dropped` counts them) and the worker starts over with the newest request.
        on_request: called under the lock at each :meth:`submit`, e.g. to grey the views and show "busy".
        on_done: ``on_done(request)`` is called under the lock once the newest request is fully shown.
        background: compute in a thread (False: :meth:`submit` computes before it returns).
        name: the worker thread's name (:meth:`in_worker` tells whether the caller is that thread).
    """

    def __init__(self, compute: Callable[[object], Iterator[Callable[[], None]]],
                 on_request: Callable[[], None] | None = None, on_done: Callable[[object], None] | None = None,
                 background: bool = True, name: str = "newest-input-wins"):
        self.compute, self.on_request, self.on_done = compute, on_request, on_done
        self.background, self.name = bool(background), name
        self.lock = threading.Lock()
        self.submitted = 0  # requests so far; the newest one's number
        self.dropped = 0    # computations dropped because a newer request came
        self._wanted = None  # (number, request)
        self._working = False
        self._idle = threading.Event()
        self._idle.set()

    def submit(self, request) -> None:
        """Make ``request`` the newest; a request still waiting is replaced (never computed)."""
        with self.lock:
            self.submitted += 1
            self._wanted = (self.submitted, request)
            start = not self._working
            self._working = True
            self._idle.clear()
            if self.on_request is not None:
                self.on_request()
        if not start:
            return  # the running worker picks the newest request when it finishes
        if self.background:
            threading.Thread(target=self._run, name=self.name, daemon=True).start()
        else:
            self._run()

    def wait(self, timeout: float = 120.0) -> bool:
        """Block until the newest request is shown (for tests and scripts); False on timeout."""
        return self._idle.wait(timeout)

    def in_worker(self) -> bool:
        """Whether the calling thread is the worker (which must not :meth:`wait` for itself)."""
        return threading.current_thread().name == self.name

    def _run(self):
        while True:
            with self.lock:
                number, request = self._wanted
            stale = False
            for show in self.compute(request):
                with self.lock:
                    stale = number != self.submitted
                    if stale:
                        self.dropped += 1
                        break  # a newer input came while computing: never show this one
                    show()
            with self.lock:
                if stale or number != self.submitted:
                    continue  # shown in full but already old: the newest request still waits
                self._working = False
                if self.on_done is not None:
                    self.on_done(request)
                self._idle.set()
                return
