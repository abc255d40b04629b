"""Two codecs at the same file size, side by side and as a wipe: the slider demo's compare mode (notebook 09).

:func:`compare` is pure like :func:`course_lib.demo.update` (:class:`CompareState` -> :class:`Comparison`): both
codecs are matched to the reference learned codec's file at a rate, and :func:`wipe_image` composes the two
reconstructions into one picture that changes from left to right at a column. No widgets here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from . import metrics
from .demo import Result, State, update
from .demo_codecs import CODEC_LABELS, can_match, reference_codec

__all__ = ["CompareState", "Comparison", "result_label", "wipe_image", "compare"]


@dataclass(frozen=True, eq=False)
class CompareState:
    """What the compare view's controls say: two codecs at the file size of the reference codec at ``level``.

    Attributes:
        image: as in :class:`course_lib.demo.State`.
        left, right: codec names of :data:`course_lib.demo_codecs.CODECS` (``left=None``: the reference learned
            codec, :func:`course_lib.demo_codecs.reference_codec`).
        level: the reference codec's rate; its file size is the target both sides are matched to.
        split: where the wipe view changes from left to right, as a fraction of the width (0: all right).
        crop_center, crop_size: the zoom square, the same on both sides.

    Introduced in notebook 09.
    """

    image: object = "astronaut"
    left: str | None = None
    right: str = "jpeg420"
    level: float = 2.0
    split: float = 0.5
    crop_center: tuple[float, float] = (0.5, 0.5)
    crop_size: int = 96


@dataclass(eq=False)
class Comparison:
    """Two codecs at the same file size (:func:`compare`). Introduced in notebook 09.

    Attributes:
        left, right: the two :class:`course_lib.demo.Result` s (same image, same crop), each no larger than the
            target when the codec can make a file that small (else its ``note`` says so).
        target_bytes, target_bpp: the reference codec's file at the chosen rate.
        reference: the reference codec's name.
        wipe: uint8 RGB (H, W, 3): the left reconstruction on columns ``< split_column``, the right one after.
        split_column: the first column taken from the right reconstruction.
    """

    left: Result
    right: Result
    target_bytes: int
    target_bpp: float
    reference: str
    wipe: np.ndarray = field(repr=False)
    split_column: int

    @property
    def crop(self) -> tuple[int, int, int]:
        return self.left.crop

    def label(self, side: str) -> str:
        """One line for a side ("left" or "right"): codec, bytes, bpp and PSNR."""
        return result_label(getattr(self, side))


def result_label(result: Result) -> str:
    """``"JPEG 4:2:0: 12,345 bytes, 0.251 bpp, 29.14 dB"``: what a panel's caption says. Notebook 09."""
    return (f"{CODEC_LABELS[result.codec]}: {result.num_bytes:,} bytes, {result.bpp:.3f} bpp, "
            f"{result.psnr:.2f} dB")


def wipe_image(left: np.ndarray, right: np.ndarray, split: float) -> tuple[np.ndarray, int]:
    """Compose two pictures of the same shape: ``left`` before column ``round(split * W)``, ``right`` after.

    Returns (picture, that column). ``split`` is clipped to [0, 1]. Introduced in notebook 09.
    """
    if left.shape != right.shape:
        raise ValueError(f"the two pictures differ in shape: {left.shape} and {right.shape}")
    column = round(min(max(float(split), 0.0), 1.0) * left.shape[1])
    wiped = np.array(right)
    wiped[:, :column] = left[:, :column]
    return wiped, column


def compare(state: CompareState | Mapping) -> Comparison:
    """Two codecs at the same file size: each side matched to the reference codec's file at ``state.level``.

    The reference codec itself is shown at that rate; every other codec takes the largest setting whose file
    is not larger (:func:`course_lib.demo.update` with ``match_bpp``). Both sides share the image and the zoom
    square. Cached like ``update``, so moving the wipe costs only the composition. Introduced in notebook 09.
    """
    if isinstance(state, Mapping):
        state = CompareState(**state)
    reference = reference_codec()
    if reference is None:
        raise ValueError("comparing at the same size needs a learned codec, and none is available here")
    left, right = (update(State(image=state.image, codec=codec, level=state.level, match_bpp=can_match(codec),
                                crop_center=state.crop_center, crop_size=state.crop_size, curves=False))
                   for codec in (state.left or reference, state.right))
    # A matched side carries the reference codec's file size; an unmatched one is the reference codec itself
    # (or it followed by restoration, which adds no bytes).
    target_bytes = left.reference["num_bytes"] if left.reference else left.num_bytes
    wiped, column = wipe_image(left.reconstruction, right.reconstruction, state.split)
    return Comparison(left=left, right=right, target_bytes=target_bytes,
                      target_bpp=metrics.bits_per_pixel(target_bytes, left.original.shape), reference=reference,
                      wipe=wiped, split_column=column)
