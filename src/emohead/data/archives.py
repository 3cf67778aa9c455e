"""Read MEAD's per-actor tars safely: list the members, refuse unsafe ones, extract only those asked for."""

from __future__ import annotations

import contextlib
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from emohead.errors import InputError

CHUNK_BYTES = 1 << 20
# Reading a damaged tar fails in any of these, depending on where the damage is.
_CORRUPT = (tarfile.TarError, EOFError, OSError, zlib.error, KeyError)


def _corrupt(label: str, path: Path, reason: object) -> InputError:
    return InputError(
        f"{label}: {path} is corrupt or truncated ({reason}); delete it and download it again"
    )


@contextlib.contextmanager
def open_archive(path: Path, label: str) -> Iterator[tarfile.TarFile]:
    """Open a tar (plain or compressed) for random access; `label` ("M019/video.tar") names it in errors."""
    if not path.is_file():
        raise InputError(f"{label}: {path} not found")
    try:
        tar = tarfile.open(path, mode="r:*")
    except _CORRUPT as exc:
        raise _corrupt(label, path, exc) from None
    with tar:
        yield tar


def _unsafe(label: str, path: Path, member: tarfile.TarInfo, reason: object) -> InputError:
    return InputError(f"{label}: {path} has an unsafe member {member.name!r} ({reason}); refusing to extract")


def _refuse_unsafe(member: tarfile.TarInfo, label: str, path: Path, dest: Path) -> None:
    parts = PurePosixPath(member.name).parts
    if member.name.startswith("/") or ".." in parts:
        raise _unsafe(label, path, member, "absolute or '..'")
    try:  # also catches links pointing outside `dest` and device files
        tarfile.data_filter(member, str(dest))
    except tarfile.FilterError as exc:
        raise _unsafe(label, path, member, exc) from None


def _check_end_marker(tar: tarfile.TarFile, path: Path, label: str) -> None:
    """A plain tar cut exactly between two members lists cleanly; only its missing end block tells."""
    if path.suffix != ".tar":
        return
    with path.open("rb") as raw:
        raw.seek(tar.offset)
        tail = raw.read(tarfile.BLOCKSIZE)
    if len(tail) < tarfile.BLOCKSIZE or tail.strip(b"\0"):
        raise _corrupt(label, path, f"no end-of-archive block after {tar.offset} bytes")


def list_members(tar: tarfile.TarFile, path: Path, label: str, dest: Path) -> list[tarfile.TarInfo]:
    """Every member of the archive, after checking that none would land outside `dest`.

    A plain tar is listed by seeking from header to header, so a many-GB MEAD video.tar costs little.
    """
    try:
        members = tar.getmembers()
    except _CORRUPT as exc:
        raise _corrupt(label, path, exc) from None
    for member in members:
        _refuse_unsafe(member, label, path, dest)
    _check_end_marker(tar, path, label)
    return members


def extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, label: str) -> int:
    """Copy one member's bytes to `target` (a link inside the archive gives its file); bytes written."""
    path = Path(tar.name) if tar.name else Path(label)
    try:
        source = tar.extractfile(member)
    except _CORRUPT as exc:
        raise _corrupt(label, path, exc) from None
    if source is None:
        raise InputError(f"{label}: member {member.name!r} of {path} is not a file")
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with source, target.open("wb") as out:
        while True:
            try:
                chunk = source.read(CHUNK_BYTES)
            except _CORRUPT as exc:
                raise _corrupt(label, path, exc) from None
            if not chunk:
                break
            out.write(chunk)
            written += len(chunk)
    if written != member.size and member.isreg():
        raise _corrupt(label, path, f"member {member.name!r} has {written} of {member.size} bytes")
    return written

