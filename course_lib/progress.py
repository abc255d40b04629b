"""Progress that a saved notebook keeps: one line of text, updated in place (notebooks 02, 06-10; the command line).

tqdm's notebook bars are ipywidgets: a saved or exported notebook (nbconvert, HTML, GitHub) shows them as a frozen
``0%| | 0/32``, so a student reading a saved copy sees a cell stuck at 0 %. In a Jupyter kernel the course shows one
plain-text line instead, redrawn in place through an IPython display handle at most twice a second, and ending on a
line that stays in the saved outputs::

    photos: 3/12 (4 s)          while it runs
    photos: 12/12 done in 14 s  when it is over

In a terminal (the command line) :func:`progress` is a tqdm bar on stderr that disappears when done.
:class:`StatusLine` is the one implementation of the line; ``course_lib.fitting.ProgressCallback`` draws
Keras training with it. No TensorFlow here.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Callable, Iterable, Iterator, TypeVar

from .config import in_jupyter_kernel  # the one kernel check; re-exported

__all__ = ["progress", "StatusLine", "in_jupyter_kernel", "format_seconds", "UPDATE_INTERVAL"]

#: Seconds between two redraws of a line (the last state is always drawn).
UPDATE_INTERVAL = 0.5

T = TypeVar("T")


def format_seconds(seconds: float) -> str:
    """A duration for a progress line: ``"4 s"``, ``"2 min 05 s"``, ``"1 h 02 min"``. Used in notebooks 02, 06-10."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class StatusLine:
    """One line of text shown in place, throttled; its last text stays (notebooks 02, 06-10).

    In a Jupyter kernel the line is a ``text/plain`` output drawn with ``display(..., display_id=True)`` and
    redrawn with ``handle.update(...)``, so a saved notebook keeps plain text, never a widget. Elsewhere it is
    written to stderr: redrawn with a carriage return when stderr is a terminal, otherwise only its last text.

    Args:
        enabled: False shows nothing.
        interval: the least number of seconds between two redraws (``force=True`` ignores it).
        display: the function that shows a new output, ``display(bundle, raw=True, display_id=True) -> handle``
            (default: IPython's inside a kernel; given, it is used wherever the code runs).
    """

    def __init__(self, *, enabled: bool = True, interval: float = UPDATE_INTERVAL, display: Callable | None = None):
        self.enabled, self.interval, self.text = enabled, interval, None
        self._display = display
        self._in_kernel = display is not None or (enabled and in_jupyter_kernel())
        self._tty = not self._in_kernel and getattr(sys.stderr, "isatty", lambda: False)()
        self._handle = None
        self._last_draw = -math.inf
        self._closed = False

    def due(self) -> bool:
        """Whether :meth:`show` would redraw now (build an expensive text only then)."""
        return self.enabled and not self._closed and time.monotonic() - self._last_draw >= self.interval

    def show(self, text: str, *, force: bool = False) -> None:
        """Redraw the line with ``text``, unless the last redraw is less than ``interval`` seconds old."""
        if not self.enabled or self._closed or not (force or self.due()):
            return
        self._last_draw, previous, self.text = time.monotonic(), self.text, text
        if self._in_kernel:
            bundle = {"text/plain": text}
            if self._handle is None:
                display = self._display
                if display is None:
                    from IPython.display import display
                self._handle = display(bundle, raw=True, display_id=True)
            else:
                self._handle.update(bundle, raw=True)
        elif self._tty:
            # Spaces, not a terminal code, erase what a longer previous text left behind.
            sys.stderr.write("\r" + text.ljust(len(previous or "")))
            sys.stderr.flush()

    def close(self, text: str) -> None:
        """Draw ``text`` as the line's last state; later calls change nothing."""
        if not self.enabled or self._closed:
            return
        self.show(text, force=True)
        if not self._in_kernel:
            sys.stderr.write("\n" if self._tty else text + "\n")
            sys.stderr.flush()
        self._closed = True


def _count(done: int, total: int | None) -> str:
    return f"{done}/{total}" if total is not None else f"{done}"


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None, enabled: bool = True) -> Iterator[T]:
    """Yield the items of ``iterable`` while showing how many are done.

    In a Jupyter kernel: one :class:`StatusLine`, ``"photos: 3/12 (4 s)"``, that ends as ``"photos: 12/12 done in
    14 s"`` (``"photos: 5/12, stopped after 4 s"`` when the loop is left early, ``"..., failed after 4 s"`` when
    ``iterable`` raises). In a terminal: a tqdm bar on stderr that disappears when done (``leave=False``).

    Args:
        iterable: the items; ``total`` defaults to ``len(iterable)`` when it has one.
        desc: what is counted, the line's first word(s).
        enabled: False yields the items and shows nothing.

    >>> for rate in progress((0.0, 2.0, 5.0), desc="rates"): ...
    Introduced in notebook 02; used by the command line's evaluations.
    """
    if total is None:
        try:
            total = len(iterable)
        except TypeError:
            total = None
    if not enabled:
        yield from iterable
        return
    if not in_jupyter_kernel():
        from tqdm import tqdm

        with tqdm(iterable, total=total, desc=desc, leave=False, file=sys.stderr) as bar:
            yield from bar
        return
    line, done, started, ending = StatusLine(), 0, time.monotonic(), ", stopped after"
    line.show(f"{desc}: {_count(0, total)}", force=True)
    try:
        for item in iterable:
            yield item
            done += 1
            if line.due():
                line.show(f"{desc}: {_count(done, total)} ({format_seconds(time.monotonic() - started)})")
        ending = " done in"
    except GeneratorExit:
        raise
    except BaseException:
        # Only an error raised by ``iterable`` arrives here; one raised in the loop's body closes the
        # generator (GeneratorExit) when the loop is left, and reads as "stopped".
        ending = ", failed after"
        raise
    finally:
        line.close(f"{desc}: {_count(done, total)}{ending} {format_seconds(time.monotonic() - started)}")
