"""What the demo's tests share (test_demo.py: the pure layers; test_widgets.py: the controller)."""

import io

import pytest
from PIL import Image

from course_lib import demo_codecs
from course_lib.data import course_photo

needs_learned = pytest.mark.skipif("learned" not in demo_codecs.available_codecs(),
                                   reason="the learned codec's weights are missing (data/weights)")
needs_hyperprior = pytest.mark.skipif("hyperprior" not in demo_codecs.available_codecs(),
                                      reason="the hyperprior codec's weights are missing (data/weights)")
REFERENCE = demo_codecs.reference_codec()  # the best learned codec shipped: what match_bpp and the plot compare with


@pytest.fixture(scope="module")
def photo():
    return course_photo("astronaut")[:96, 160:288].copy()  # 96 x 128: quick for every codec


@pytest.fixture(scope="module")
def medium():
    return course_photo("astronaut")[:256, 128:448].copy()  # big enough that JPEG headers do not dominate


def png(array, mode=None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()
