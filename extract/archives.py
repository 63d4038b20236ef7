"""Split archives and safe extraction.

Feature releases on the Hub ship tarballs cut into Git-LFS-sized parts (``x.tar.gz.part0``,
``x.tar.gz.part1``, ...). They are joined, then extracted without trusting the archive: every
member is checked before anything is written, and absolute paths, ``..``, links and device
files are refused, so nothing can land outside the target folder.
"""
from __future__ import annotations

import re
import shutil
import stat
import tarfile
import zipfile
from functools import partial
from pathlib import Path, PurePosixPath
from typing import IO, Callable

from .errors import ExtractError

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip")
_PART = re.compile(r"^(?P<base>.+)\.part[-_.]?(?P<index>[0-9a-z]+)$")


class UnsafeArchiveError(ExtractError, ValueError):
    """An archive member that would escape the target or is not a plain file or folder."""


def is_archive(path: Path) -> bool:
    return path.name.endswith(ARCHIVE_SUFFIXES)


def _part_order(index: str) -> tuple[int, int | str]:
    return (0, int(index)) if index.isdigit() else (1, index)


def join_parts(folder: Path, work: Path) -> list[Path]:
    """Concatenate every ``NAME.partK`` group under ``folder`` into ``work/NAME``, in part order."""
    groups: dict[str, list[tuple[tuple[int, int | str], Path]]] = {}
    for path in sorted(folder.rglob("*.part*")):
        m = _PART.match(path.name)
        if m and path.is_file():
            groups.setdefault(m["base"], []).append((_part_order(m["index"]), path))
    joined = []
    for base, parts in sorted(groups.items()):
        target = work / base
        with open(target, "wb") as out:
            for _, part in sorted(parts):
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, length=16 << 20)
        joined.append(target)
    return joined


def _safe_name(name: str, archive: Path) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not path.parts or re.match(r"^[A-Za-z]:", name):
        raise UnsafeArchiveError(f"{archive}: member {name!r} would be written outside the target folder")
    return path


def _write(root: Path, members: list[tuple[PurePosixPath, bool, Callable[[], IO[bytes]]]]) -> list[Path]:
    written = []
    for rel, is_dir, open_member in members:
        dest = root.joinpath(*rel.parts)
        if is_dir:
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open_member() as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, length=16 << 20)
        written.append(dest)
    return written


def safe_extract(archive: Path, target: Path) -> list[Path]:
    """Extract a tar (any compression) or zip archive into ``target``; return the files written.

    All members are validated first: on a bad member nothing is extracted at all.
    """
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            members = []
            for info in zf.infolist():
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode) or (mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))):
                    raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is a link or special file")
                members.append((_safe_name(info.filename, archive), info.is_dir(), partial(zf.open, info)))
            return _write(root, members)
    try:
        tf = tarfile.open(archive, "r:*")
    except tarfile.TarError as exc:
        raise UnsafeArchiveError(f"{archive} is not a tar or zip archive ({exc})") from None
    with tf:
        members = []
        for member in tf.getmembers():
            if not (member.isfile() or member.isdir()):
                kind = "link" if member.issym() or member.islnk() else "device or special file"
                raise UnsafeArchiveError(f"{archive}: member {member.name!r} is a {kind}; refusing the archive")
            members.append((_safe_name(member.name, archive), member.isdir(), partial(tf.extractfile, member)))
        return _write(root, members)
