"""Atomic file and directory writes: write to a temporary sibling, then rename."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def replace_dir(src: Path, dst: Path) -> None:
    """Move the finished directory ``src`` to ``dst``, replacing any old ``dst``.

    Both live in the same parent, so each rename is atomic; a crash between the two
    leaves a ``.trash-*`` folder that :func:`staging` removes next time.
    """
    trash = None
    if dst.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".trash-{dst.name}-", dir=dst.parent))
        os.replace(dst, trash / dst.name)
    os.replace(src, dst)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


@contextmanager
def staging(final: Path) -> Iterator[Path]:
    """Lock ``final``, clear debris of interrupted runs, and yield a fresh temp dir beside it.

    The temp dir is removed on exit unless the body moved it into place.
    """
    parent = final.parent
    parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(parent / f".{final.name}.lock")):
        for stale in parent.glob(f".tmp-{final.name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        for stale in parent.glob(f".trash-{final.name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=parent))
        try:
            yield tmp
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def read_limited(path: Path, limit: int, error: type[Exception], where: str | None = None) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them. A device, a FIFO
    or a link to one (``/dev/zero``) and a larger file are refused with ``error``: a size
    from ``stat`` alone can lie, so the read itself is bounded."""
    where = where or str(path)
    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise error(f"{where}: not a regular file; refused")
            data = f.read(limit + 1)
    except OSError as e:
        raise error(f"{where}: cannot read: {e.strerror or e}") from e
    if len(data) > limit:
        raise error(f"{where}: larger than {limit:,} bytes; refused")
    return data
