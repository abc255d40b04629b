import os

import pytest

# Quiet TensorFlow's C++ logging in every test process.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def saved_tiny_codec(folder, crop=(40, 56)):
    """A small untrained LearnedCodec (N = 8, M = 12, seed 0) saved as ``tiny`` in ``folder/weights``, and a
    ``crop`` of the coffee photo saved as ``folder/in.png``: (codec, weights path, image path).

    Shared by the command-line tests (test_cli, test_hostile_inputs, test_weights_registry).
    """
    import keras

    from course_lib.codec import LearnedCodec
    from course_lib.models import save_codec
    from course_lib.data import course_photo, save_image

    keras.utils.set_random_seed(0)
    codec = LearnedCodec(channels=8, latent_channels=12)
    codec.build()
    codec.update_tables()
    weights = save_codec(codec, "tiny", folder / "weights")
    image = save_image(course_photo("coffee")[:crop[0], :crop[1]], folder / "in.png")
    return codec, weights, image


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """Three 96 x 96 course photos as PNGs: a tiny training folder (test_training, test_device_training)."""
    from course_lib import data

    folder = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "coffee", "chelsea"):
        data.save_image(data.course_photo(name)[:96, :96], folder / f"{name}.png")
    return folder
