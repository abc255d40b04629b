"""Files in and out, safely: refuse what is not a regular file, read with a size limit, write atomically.

Library plumbing (no TensorFlow, no images): the command line reads and writes through these
helpers, the weights registry reads and checksums with them, and :mod:`course_lib.data` reads
images through :func:`open_regular_file`. Every error is an ``OSError`` whose one-line message
starts with the path.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from pathlib import Path
from typing import BinaryIO, Callable

__all__ = ["os_error", "open_regular_file", "read_file", "write_file", "sha256_file"]

def _file_error(path: Path, exc: OSError) -> OSError:
    """An ``OSError`` of the same kind whose one-line message (``str``) starts with ``path``."""
    if isinstance(exc, FileNotFoundError):
        return os_error(FileNotFoundError, exc.errno, f"{path}: no such file")
    if exc.errno == errno.ENXIO:  # a socket: open() cannot read it
        return os_error(OSError, exc.errno, f"{path}: not a regular file (a device, pipe or socket)")
    return os_error(type(exc), exc.errno, f"{path}: {exc.strerror or exc}")


def os_error(kind: type, number: int | None, message: str) -> OSError:
    """An ``OSError`` of type ``kind`` with ``errno`` = ``number`` whose ``str`` is ``message`` alone.

    ``OSError(errno, message)`` would print as "[Errno N] message"; the command line's errors are one
    line that starts with the path.
    """
    error = kind(message)
    error.errno = number
    return error


def open_regular_file(path) -> BinaryIO:
    """Open ``path`` for reading (binary), refusing anything but a regular file.

    A folder raises ``IsADirectoryError`` ("is a directory"); a device such as
    ``/dev/null``, a pipe or a socket raises ``OSError`` ("not a regular file");
    a missing path ``FileNotFoundError`` ("no such file"); every message is one
    line that starts with the path. The file is opened without blocking and
    checked through the open descriptor, so a named pipe cannot make the
    caller wait for a writer, nor can the path be swapped after the check.
    Used by the command line and by :func:`course_lib.data.load_image`.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise _file_error(path, exc) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise os_error(IsADirectoryError, errno.EISDIR, f"{path}: is a directory, not a file")
        raise os_error(OSError, errno.EINVAL, f"{path}: not a regular file (a device, pipe or socket)")
    return os.fdopen(fd, "rb")


def read_file(path, max_bytes: int | None = None) -> bytes:
    """The bytes of a regular file (see :func:`open_regular_file`), read once.

    With ``max_bytes`` a larger file is refused with ``OSError`` ("N bytes,
    more than ...") before anything is read, and at most ``max_bytes + 1``
    bytes are ever read (a file that grows meanwhile is refused too). Used by the command line and the weights
    registry.
    """
    path = Path(path)
    with open_regular_file(path) as file:
        if max_bytes is None:
            content = file.read()
        else:
            size = os.fstat(file.fileno()).st_size
            content = file.read(max_bytes + 1) if size <= max_bytes else b""
            if size > max_bytes or len(content) > max_bytes:
                raise os_error(OSError, errno.EFBIG, f"{path}: {max(size, len(content)):,} bytes, more than "
                                                      f"the largest file accepted here ({max_bytes:,} bytes)")
        return content


def write_file(path, content: bytes | Callable[[BinaryIO], None]) -> Path:
    """Write ``content`` (bytes, or a function that writes to a binary file) to ``path``, atomically.

    The bytes go to a temporary file beside ``path`` (same folder, so the
    final rename never crosses file systems), which replaces ``path`` only once
    everything is written: a failed write (disk full, an exception in
    ``content``) leaves ``path`` as it was and no temporary file behind. A
    symbolic link at ``path`` is replaced by the new file, not followed.
    I/O errors are ``OSError``s whose one-line message names ``path``. Used by the command line.
    """
    path = Path(path)
    if path.is_dir():
        raise os_error(IsADirectoryError, errno.EISDIR, f"{path}: is a directory; give a file name")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        while True:  # a name nobody else holds; permissions from the umask, as for any new file
            temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
            try:
                fd = os.open(temporary, flags, 0o666)
                break
            except FileExistsError:
                continue
    except OSError as exc:
        raise _file_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as file:
            if callable(content):
                content(file)
            else:
                file.write(content)
            file.flush()
            os.fsync(file.fileno())  # the data is on disk before the new name points at it
        os.replace(temporary, path)
    except BaseException as exc:
        temporary.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _file_error(path, exc) from None
        raise
    return path


def sha256_file(path) -> str:
    """Hex SHA-256 of a file's bytes: used by the command line's ``ship``, the weights registry and the
    Kodak checks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
