"""The slider demo's codecs: their names, what the level slider means for each, the shipped models (notebook 09).

Codecs (:data:`CODECS`) and what the level means for each:

=======================  ================================================
``hyperprior``           rate of the shipped scale-hyperprior codec
                         (``learned_hyperprior``, notebook 12), continuous
                         in [0, num_rates - 1] (stored in steps of
                         1 / (255 // (num_rates - 1)): 1/36 for 8 rates)
``learned``              rate of the shipped factorized codec
                         (``learned_codec``, notebooks 03-07), likewise
``jpeg420``              JPEG quality 1-100 (4:2:0 chroma)
``webp``                 WebP quality 0-100
``jpeg2000``             JPEG 2000 target PSNR in dB (OpenJPEG's knob)
``learned+restoration``  learned codec, then the network trained on its
                         artefacts (``restoration_learned``)
``jpeg+restoration``     JPEG 4:2:0, then the network trained on JPEG
                         artefacts (``restoration``)
=======================  ================================================

With "match the size" the other codecs take the *reference* learned codec's rate as their level
(:func:`reference_codec`: the best one shipped, the hyperprior when its weights are present) and pick the
highest setting whose file is no larger than the reference codec's at that rate. Restoration adds no bytes: it
runs after decoding.

No widgets here: :mod:`course_lib.demo` builds the pure ``update()`` on these, :mod:`course_lib.widgets` the
controls.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from . import baselines
from .models import load_codec
from .plots import CODEC_NAMES
from .registry import WeightsError
from .restoration import is_shipped, load_restorer, model_for

__all__ = ["CODECS", "LEARNED_MODELS", "CODEC_LABELS", "BASE_CODEC", "LevelRange", "level_range", "can_match",
           "learned_codec", "reference_codec", "restorer", "available_codecs", "check_codec", "PRESETS",
           "available_presets"]

#: Codec names accepted by :func:`course_lib.demo.update`, in menu order (the best learned codec first).
CODECS = ("hyperprior", "learned", "jpeg420", "webp", "jpeg2000", "learned+restoration", "jpeg+restoration")
#: The learned codecs: name in the demo -> shipped model in ``data/weights/manifest.json``, best first.
LEARNED_MODELS = {"hyperprior": "learned_hyperprior", "learned": "learned_codec"}
#: What the menus, titles and the RD plot's legend call each codec: the names of every figure
#: (:data:`course_lib.plots.CODEC_NAMES`), plus the restoration variants.
CODEC_LABELS = {
    "hyperprior": CODEC_NAMES["learned_hyperprior"],
    "learned": CODEC_NAMES["learned_codec"],
    "jpeg420": CODEC_NAMES["jpeg420"],
    "webp": CODEC_NAMES["webp"],
    "jpeg2000": CODEC_NAMES["jpeg2000"],
    "learned+restoration": CODEC_NAMES["learned_codec"] + " + restoration",
    "jpeg+restoration": "JPEG + restoration",
}
#: The codec that does the compressing, for each name (restoration runs after its decoder).
BASE_CODEC = {"hyperprior": "hyperprior", "learned": "learned", "jpeg420": "jpeg420", "webp": "webp",
              "jpeg2000": "jpeg2000", "learned+restoration": "learned", "jpeg+restoration": "jpeg420"}
#: Lessons a teacher can click: what each sets (``mode``: "single" or "compare"). ``left=None`` is the reference
#: learned codec; "upload" asks for a photo. Presets whose codecs this installation lacks are not offered
#: (:func:`available_presets`).
PRESETS: dict[str, dict] = {
    "JPEG's blocks at low quality": {"mode": "single", "codec": "jpeg420", "match_bpp": False, "level": 8,
                                     "zoom": (0.5, 0.5)},
    "learned vs JPEG at the same size": {"mode": "compare", "left": None, "right": "jpeg420", "level": 1.0},
    "restoration at quality 10": {"mode": "single", "codec": "jpeg+restoration", "match_bpp": False, "level": 10},
    "your own photo": {"mode": "compare", "left": None, "right": "jpeg420", "level": 1.0, "upload": True},
}


@dataclass(frozen=True)
class LevelRange:
    """What the level slider means for a codec: ``low``..``high`` in steps of ``step``. Introduced in notebook 09."""

    low: float
    high: float
    step: float
    default: float
    label: str

    @property
    def readout_format(self) -> str:
        """How the slider writes its value (and the titles the level): as many decimals as the step has."""
        return ".0f" if self.step >= 1 else (".1f" if self.step >= 0.1 else ".2f")


_CLASSICAL_LEVELS = {
    "jpeg420": LevelRange(1, 100, 1, 20, "JPEG quality"),
    "webp": LevelRange(0, 100, 1, 30, "WebP quality"),
    "jpeg2000": LevelRange(20, 50, 0.5, 30, "target PSNR (dB)"),
}


def check_codec(codec: str) -> None:
    """Raise ``ValueError`` naming the choices unless ``codec`` is one of :data:`CODECS`. Used by the demo."""
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; choose one of {CODECS}")


def level_range(codec: str, match_bpp: bool = False) -> LevelRange:
    """The slider range of ``codec``; with ``match_bpp``, classical codecs follow the reference codec's rate.

    Learned codecs span their whole range, [0, num_rates - 1]. Introduced in notebook 09.
    """
    check_codec(codec)
    base = BASE_CODEC[codec]
    matched = match_bpp and base != reference_codec()
    if base in LEARNED_MODELS or match_bpp:
        learned = reference_codec() if matched else base
        if learned is None:
            raise ValueError("match_bpp needs a learned codec, and none is available here (weights missing?)")
        top = learned_codec(learned).num_rates - 1
        return LevelRange(0.0, float(top), 0.1, min(2.0, float(top)),
                          "learned rate" + (" (match)" if matched else ""))
    return _CLASSICAL_LEVELS[base]


def can_match(codec: str) -> bool:
    """Whether "match the size" changes anything for ``codec``: every codec but the reference learned one
    (:func:`reference_codec`, whose size is the target) can be matched. Introduced in notebook 09."""
    reference = reference_codec()
    return reference is not None and BASE_CODEC[codec] != reference


@functools.lru_cache(maxsize=len(LEARNED_MODELS))
def learned_codec(name: str = "learned"):
    """The shipped learned codec ``name`` (a key of :data:`LEARNED_MODELS`), loaded once per process.

    Introduced in notebook 09.
    """
    if name not in LEARNED_MODELS:
        raise ValueError(f"unknown learned codec {name!r}; choose one of {tuple(LEARNED_MODELS)}")
    return load_codec(LEARNED_MODELS[name])


def reference_codec() -> str | None:
    """The learned codec the others are compared with (match the size, the plot's reference curve): the first
    of :data:`LEARNED_MODELS` that is available, or None. Introduced in notebook 09."""
    return next((name for name in LEARNED_MODELS if name in available_codecs()), None)


@functools.lru_cache(maxsize=2)
def restorer(codec: str = "jpeg"):
    """The shipped restoration network for ``codec`` ("jpeg" or "learned"), loaded once. Used by the demo.

    See :func:`course_lib.restoration.model_for`: each codec has its own
    network, trained on its artefacts.
    """
    return load_restorer(model_for(codec))


@functools.lru_cache(maxsize=1)
def available_codecs() -> tuple[str, ...]:
    """The names of :data:`CODECS` this installation can run (weights present, Pillow codecs built in).

    Introduced in notebook 09.
    """
    usable = set(baselines.available_codecs())
    for name in LEARNED_MODELS:
        try:
            learned_codec(name)
            usable.add(name)
        except (WeightsError, OSError):
            pass
    # Checked without loading the networks (that takes a second each).
    usable |= {f"restoration:{kind}" for kind in ("jpeg", "learned") if is_shipped(model_for(kind))}
    needs = {"learned": {"learned"}, "learned+restoration": {"learned", "restoration:learned"},
             "jpeg+restoration": {"jpeg420", "restoration:jpeg"}}
    return tuple(c for c in CODECS if needs.get(c, {c}) <= usable)


def available_presets() -> list[str]:
    """The names of :data:`PRESETS` whose codecs this installation can run, in order. Used by the demo."""
    def runnable(preset):
        wanted = {preset.get("codec"), preset.get("right"), preset.get("left") or reference_codec()} - {None}
        return wanted <= set(available_codecs()) and (preset["mode"] == "single" or reference_codec() is not None)

    return [name for name, preset in PRESETS.items() if runnable(preset)]
