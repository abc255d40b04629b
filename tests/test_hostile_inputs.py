"""Issue 16, items 3-5 and 9: a command line that careless commands and crafted files cannot turn against
the user: sizes checked before reading, no lost input, no partial output, messages that name the real
problem, inputs that are not silently reinterpreted. Items 7 and 8 (weights): test_weights_registry.py."""

import errno
import os
import shutil
import tracemalloc
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
from PIL import Image

from course_lib import bitstream, data, files
from course_lib.__main__ import main
from course_lib.data import ImageLoadError, ImageLoadWarning, course_photo, load_image, save_image

from conftest import saved_tiny_codec


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    codec, weights, image = saved_tiny_codec(folder)
    rcz = folder / "in.rcz"
    rcz.write_bytes(codec.compress(load_image(image)))
    return codec, weights, image, rcz, folder


def run_main(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, err, *fragments):
    assert status == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


def leftovers(folder):
    """Temporary files a write may have left beside its target."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# --------------------------------------------------------------------------- item 3: size before reading
def test_largest_rcz_file_comes_from_the_header_fields():
    words = 2 ** 24 - 1  # what a 3-byte length field holds
    assert bitstream.MAX_FILE_BYTES == max(bitstream.HEADER_SIZE + 4 * words, bitstream.HEADER_SIZE_HYPERPRIOR + 8 * words)
    assert bitstream.MAX_FILE_BYTES >= 67_108_876  # the largest version-1 file (issue 16)


def test_oversized_rcz_is_refused_before_it_is_read(setup, capsys):
    codec, weights, image, rcz, folder = setup
    big = folder / "big.rcz"
    with open(big, "wb") as f:  # sparse: no disk space used
        f.truncate(bitstream.MAX_FILE_BYTES + 1)
    tracemalloc.start()
    try:
        status, out, err = run_main(capsys, "decompress", big, folder / "big.png", "--weights", weights)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_one_line_error(status, err, str(big), f"{bitstream.MAX_FILE_BYTES + 1:,} bytes")
    assert peak < 1_000_000, peak  # nothing of the file was read into memory
    assert not (folder / "big.png").exists()
    big.unlink()


def test_read_file_never_reads_past_its_limit(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 100)
    assert files.read_file(path, max_bytes=100) == b"x" * 100
    with pytest.raises(OSError, match=r"f.bin: 100 bytes, more than .*99 bytes"):
        files.read_file(path, max_bytes=99)


# --------------------------------------------------------------------------- item 4: no lost input
@pytest.mark.parametrize("spelling", ["same path", "another path", "hard link", "symbolic link"])
@pytest.mark.parametrize("command", ["compress", "decompress"])
def test_output_onto_the_input_is_refused_and_the_input_kept(setup, capsys, tmp_path, spelling, command):
    codec, weights, image, rcz, folder = setup
    source = tmp_path / ("x.png" if command == "compress" else "x.rcz")
    shutil.copyfile(image if command == "compress" else rcz, source)
    before = source.read_bytes()
    (tmp_path / "sub").mkdir()
    target = {"same path": source,
              "another path": tmp_path / "sub" / ".." / source.name,
              "hard link": tmp_path / ("linked.png"),
              "symbolic link": tmp_path / ("symlinked.png")}[spelling]
    if spelling == "hard link":
        os.link(source, target)
    elif spelling == "symbolic link":
        target.symlink_to(source)
    status, out, err = run_main(capsys, command, source, target, "--weights", weights)
    if command == "decompress" and target.suffix == ".rcz":
        assert_one_line_error(status, err, "unknown image format")  # not an image name: refused before writing
    else:
        assert_one_line_error(status, err, "is the input file")
    assert source.read_bytes() == before and out == ""


def test_a_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "out.rcz"

    def half_then_disk_full(file):
        file.write(b"RZ" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as caught:
        files.write_file(target, half_then_disk_full)
    assert str(caught.value) == f"{target}: No space left on device" and caught.value.errno == errno.ENOSPC
    assert not target.exists() and leftovers(tmp_path) == []
    target.write_bytes(b"old")  # an existing file is kept as it was
    with pytest.raises(OSError, match="No space"):
        files.write_file(target, half_then_disk_full)
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == []
    def interrupted(file):
        file.write(b"x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # an interrupted write too, and the interruption is not relabelled
        files.write_file(target, interrupted)
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == []
    assert files.write_file(target, b"new").read_bytes() == b"new" and leftovers(tmp_path) == []


@pytest.mark.parametrize("command", ["compress", "decompress"])
def test_command_line_write_errors_name_the_file_and_leave_nothing(setup, capsys, tmp_path, monkeypatch, command):
    codec, weights, image, rcz, folder = setup
    target = tmp_path / ("out.rcz" if command == "compress" else "out.png")

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", disk_full)  # the data was written, the disk refuses to keep it
    status, out, err = run_main(capsys, command, image if command == "compress" else rcz, target, "--weights", weights)
    assert_one_line_error(status, err, f"{target}: No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_save_image_is_atomic_too(tmp_path, monkeypatch):
    target = tmp_path / "a.png"
    monkeypatch.setattr(Image.Image, "save", lambda self, fp, format=None: (fp.write(b"\x89PNG"), 1 / 0))
    with pytest.raises(ZeroDivisionError):
        save_image(np.zeros((4, 4, 3), np.uint8), target)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- item 5: messages that name the problem
@pytest.mark.parametrize("case, fragments", [
    ("rcz is a directory", ["is a directory"]),
    ("rcz is a fifo", ["not a regular file"]),
    ("rcz is /dev/null", ["/dev/null: not a regular file"]),
    ("image is /dev/null", ["/dev/null: not a regular file"]),
    ("image is a fifo", ["not a regular file"]),
    ("output is a directory", ["is a directory"]),
    ("rcz output is a directory", ["is a directory"]),
    ("output without suffix", ["no suffix", ".png, .jpg"]),
    ("output with unknown suffix", ["unknown image format '.xyz'", ".png, .jpg"]),
    ("output folder missing", ["does not exist"]),
])
def test_messages_name_the_real_problem(setup, capsys, tmp_path, case, fragments):
    codec, weights, image, rcz, folder = setup
    fifo = tmp_path / "pipe.rcz"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer: it must be refused, not waited on
    argv = {
        "rcz is a directory": ["decompress", tmp_path, tmp_path / "o.png"],
        "rcz is a fifo": ["decompress", fifo, tmp_path / "o.png"],
        "rcz is /dev/null": ["decompress", "/dev/null", tmp_path / "o.png"],
        "image is /dev/null": ["compress", "/dev/null", tmp_path / "o.rcz"],
        "image is a fifo": ["compress", fifo, tmp_path / "o.rcz"],
        "output is a directory": ["decompress", rcz, tmp_path],
        "rcz output is a directory": ["compress", image, tmp_path],
        "output without suffix": ["decompress", rcz, tmp_path / "decoded"],
        "output with unknown suffix": ["decompress", rcz, tmp_path / "decoded.xyz"],
        "output folder missing": ["decompress", rcz, tmp_path / "nowhere" / "o.png"],
    }[case]
    status, out, err = run_main(capsys, *argv, "--weights", weights)
    assert_one_line_error(status, err, *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.rcz"]


def test_load_image_refuses_devices_and_pipes(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    for path in ("/dev/null", fifo):
        with pytest.raises(ImageLoadError, match="not a regular file"):
            load_image(path)


# --------------------------------------------------------------------------- item 9: inputs not reinterpreted
def _with_orientation(array, orientation, fmt):
    import io

    picture = Image.fromarray(array)
    exif = picture.getexif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, exif=exif.tobytes())
    return buffer.getvalue()


def test_exif_orientation_is_applied(tmp_path):
    sideways = course_photo("coffee")[:24, :40]
    # Orientation 6: the camera was turned; a viewer rotates the stored pixels 90 degrees clockwise.
    upright = load_image(_with_orientation(sideways, 6, "PNG"))
    np.testing.assert_array_equal(upright, np.rot90(sideways, k=-1))
    path = tmp_path / "phone.jpg"
    path.write_bytes(_with_orientation(sideways, 6, "JPEG"))
    assert load_image(path).shape == (40, 24, 3)
    assert load_image(_with_orientation(sideways, 1, "PNG")).shape == (24, 40, 3)


@pytest.mark.parametrize("fmt", ["GIF", "TIFF"])
def test_multi_frame_inputs_warn_that_only_the_first_frame_is_used(tmp_path, fmt):
    frames = [Image.fromarray(np.full((8, 8, 3), v, np.uint8)) for v in (10, 200, 90)]
    path = tmp_path / f"anim.{fmt.lower()}"
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:])
    with pytest.warns(ImageLoadWarning, match=r"anim\.\w+: 3 frames .* only the first is used"):
        image = load_image(path)
    assert abs(int(image[0, 0, 0]) - 10) <= 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImageLoadWarning)
        load_image(frames[0])  # a PIL image is taken as it is
        single = tmp_path / f"single.{fmt.lower()}"
        frames[0].save(single, format=fmt)
        load_image(single)


def test_command_line_says_only_the_first_frame_is_compressed(setup, capsys, tmp_path):
    codec, weights, image, rcz, folder = setup
    frames = [Image.fromarray(course_photo("coffee")[:32, :32]), Image.fromarray(np.zeros((32, 32, 3), np.uint8))]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    status, out, err = run_main(capsys, "compress", gif, tmp_path / "o.rcz", "--weights", weights)
    assert status == 0 and "bytes" in out
    assert err == f"warning: {gif}: 2 frames (an animated or multi-page image); only the first is used\n"


def test_max_pixels_on_the_command_line(tmp_path, capsys):
    # Issue 16: a limit the caller sets, for compress (the input image) and decompress (the header's size).
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(photo)
    packed = tmp_path / "photo.rcz"
    assert main(["compress", str(photo), str(packed), "--max-pixels", str(40 * 60 - 1)]) == 2
    assert "pixels" in capsys.readouterr().err and not packed.exists()
    assert main(["compress", str(photo), str(packed), "--max-pixels", str(40 * 60)]) == 0
    out = tmp_path / "back.png"
    assert main(["decompress", str(packed), str(out), "--max-pixels", "100"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "pixels" in err and not out.exists()
    assert main(["decompress", str(packed), str(out), "--max-pixels", "0"]) == 2
    assert main(["decompress", str(packed), str(out)]) == 0 and out.exists()


def test_a_bomb_is_refused_before_tensorflow_is_imported(tmp_path):
    # Issue 16: the 16-byte 7071x7071 file must exit 2 within 2 s; importing TensorFlow alone takes longer on a
    # 2-core machine, so the command line checks the payload against the model's integer tables first.
    import subprocess
    import sys

    from course_lib.registry import find_entry, read_verified, tables_from_bytes

    folder, name, entry = find_entry("learned_codec")
    path, content = read_verified(folder, name, entry, "tables")
    tables = tables_from_bytes(content, path)
    head = bitstream.Header(tables.model_id, 0, 7071, 7071, 0).to_bytes()
    bomb = tmp_path / "bomb.rcz"
    bomb.write_bytes(head + bitstream.checksum(head, tables.fingerprint(), b"").to_bytes(4, "big"))
    out = tmp_path / "out.png"
    script = ("import sys; from course_lib.__main__ import main; "
              f"status = main(['decompress', {str(bomb)!r}, {str(out)!r}]); "
              "print(status, 'tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["2", "False"], (result.stdout, result.stderr)
    assert "payload too short" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()
