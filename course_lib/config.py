"""Fast mode, seeds and paths (introduced in notebook 00).

Fast mode (``COURSE_FAST=1``, set by ``make test``) shrinks training and data so
that every notebook runs in seconds on a 2-core CPU. A student who opens a
notebook normally gets the full version: real training or shipped weights.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import numpy as np

__all__ = ["PROJECT_ROOT", "DATA_DIR", "WEIGHTS_DIR", "FIGURE_STYLE", "fast_mode", "pick", "cpu_has_fast_bfloat16",
           "import_tensorflow_quietly", "ReproducibilityWarning", "onednn_enabled", "use_figure_style",
           "in_jupyter_kernel", "set_seed", "describe"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"
WEIGHTS_DIR = DATA_DIR / "weights"


def fast_mode() -> bool:
    """True when the environment variable ``COURSE_FAST`` is set to 1/true/yes.

    Introduced in notebook 00.
    """
    return os.environ.get("COURSE_FAST", "").strip().lower() in {"1", "true", "yes", "on"}


def pick(full, fast):
    """Return ``fast`` in fast mode and ``full`` otherwise.

    >>> steps = pick(full=2000, fast=5)
    Introduced in notebook 00.
    """
    return fast if fast_mode() else full


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and Keras with stderr muted at the file-descriptor level.

    TF 2.21's C++ runtime prints start-up notices (oneDNN, absl) on import that
    ``TF_CPP_MIN_LOG_LEVEL`` does not silence; they would bury a command line's
    one-line messages and clutter every notebook's first cell. Python
    exceptions (an ImportError, say) still propagate normally.
    """
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class ReproducibilityWarning(UserWarning):
    """Weights were measured under another numerical setting (TensorFlow's oneDNN kernels on
    or off, :func:`onednn_enabled`): decoded pixels may differ by one level from the recorded ones.

    Raised by the weights loader for notebooks 03-12 and the command line.
    """


def onednn_enabled() -> bool | None:
    """Whether TensorFlow runs its oneDNN kernels in this process; ``None`` when unknown.

    TensorFlow decides once, at start-up (``tensorflow/core/util/port.cc``):
    ``TF_ENABLE_ONEDNN_OPTS`` set to ``1``/``true`` or ``0``/``false`` (any
    case) turns them on or off; unset, or any other value, leaves the default:
    on for Linux x86 CPUs with AVX512-VNNI, AVX512-BF16, AVX-VNNI or AMX (and
    for Arm Neoverse V1) since TF 2.9, off elsewhere. The two kinds of kernels
    round differently, so decoded pixels can differ by one level between the
    settings (:meth:`course_lib.codec.LearnedCodec.quantized_forward`).
    Asks TensorFlow itself (its answer holds whatever the environment says
    now); without TensorFlow, reads the variable the same way and returns
    ``None`` when it leaves the choice to the CPU.
    Recorded in the manifest; used by the weights loader and the command line.
    """
    try:
        import_tensorflow_quietly()
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        value = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "").lower()
        return {"1": True, "true": True, "0": False, "false": False}.get(value)


def cpu_has_fast_bfloat16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU does bfloat16 arithmetic in hardware: x86 AVX512-BF16 or AMX-BF16.

    Where it does (and TensorFlow's oneDNN kernels are on, their default on
    such CPUs), Keras' ``mixed_bfloat16`` policy trains the codec in about 0.6x
    the time per step of float32 (``benchmarks/training_speed.py`` measures
    it); elsewhere bfloat16 is emulated and slower. Reads ``/proc/cpuinfo``
    (or the text given); ``False`` where it cannot tell (not Linux).
    Used by notebook 07 to pick the class run's precision.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags.update(value.split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


#: The course's figure style: every text at 11 pt or more, readable on a projector (matplotlib rcParams).
FIGURE_STYLE = {"font.size": 12, "axes.titlesize": 13, "axes.labelsize": 12, "legend.fontsize": 11,
                "xtick.labelsize": 11, "ytick.labelsize": 11, "figure.titlesize": 14,
                "legend.title_fontsize": 11}


def use_figure_style() -> None:
    """Apply :data:`FIGURE_STYLE` to matplotlib (a no-op without matplotlib), and in a Jupyter kernel
    turn on pyplot's inline backend.

    IPython registers its PNG formatter for ``Figure`` objects only once the inline backend is active,
    so before that a cell that returns a bare ``Figure`` (``plots.show_images``, say) shows the text
    ``<Figure size ... with 3 Axes>`` instead of the picture. Outside a kernel (scripts, tests, the
    command line) nothing else changes and IPython is not imported.
    Called by :func:`set_seed`, the first call of every notebook from notebook 00 on.
    """
    try:
        import matplotlib
    except ImportError:
        return
    _use_inline_backend_in_a_kernel()
    matplotlib.rcParams.update(FIGURE_STYLE)


_inline_backend_on = False


def _use_inline_backend_in_a_kernel() -> None:
    """``%matplotlib inline`` the first time this runs in a Jupyter kernel; otherwise nothing.

    Once only: notebooks call :func:`set_seed` again mid-cell, and switching the backend then could close a
    figure that the cell has not shown yet.
    """
    global _inline_backend_on
    if _inline_backend_on or not in_jupyter_kernel():
        return  # done already, or not a kernel (a script, a plain IPython terminal): import nothing
    sys.modules["IPython"].get_ipython().run_line_magic("matplotlib", "inline")
    _inline_backend_on = True


def in_jupyter_kernel() -> bool:
    """True inside a Jupyter kernel (IPython with a kernel), False in a terminal or a script.

    Does not import IPython: a kernel has imported it already. Used by :func:`use_figure_style` (every
    notebook's first cell) and ``course_lib.progress`` (notebooks 02, 06-10).
    """
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    return getattr(ipython.get_ipython(), "kernel", None) is not None


def set_seed(seed: int = 0) -> None:
    """Seed Python, NumPy and (if importable) Keras/TensorFlow for reproducible runs.

    Imports TensorFlow quietly (:func:`import_tensorflow_quietly`), so the
    first cell of a notebook shows no start-up notices, and applies the
    course's figure style (:func:`use_figure_style`): every notebook calls this
    first, so every figure after it has text of 11 pt or more.
    Introduced in notebook 00; every notebook's first cell calls it.
    """
    use_figure_style()
    random.seed(seed)
    np.random.seed(seed)
    try:
        import_tensorflow_quietly()
        import keras

        keras.utils.set_random_seed(seed)
    except ImportError:  # Keras is optional for the classical-codec modules
        pass


def describe() -> str:
    """One line saying which mode the course runs in, for the top of each notebook.

    Introduced in notebook 00.
    """
    if fast_mode():
        return "FAST mode (COURSE_FAST=1): tiny data and a few training steps, for tests."
    return "Full mode: real training runs and full-size data."
