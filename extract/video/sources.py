"""Finding the inputs: videos under a folder (by extension), a list file, or frame folders.

Video ids are the file stems when they are unique, else the paths relative to the input folder
(without extension), so two ``clip.mp4`` in different folders never collide. Adding a file whose
stem repeats an existing one changes every id under ``auto``: pin them with ``relative``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp")
FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Source:
    video_id: str
    path: Path
    is_frame_dir: bool = False
    shown_as: str | None = None   # what stores and messages name the input by (default: its path)

    @property
    def name(self) -> str:
        return str(self.path) if self.shown_as is None else self.shown_as

    def redact(self, text: str) -> str:
        """``text`` with the input's path and file name replaced by :attr:`name`."""
        if self.shown_as is None:
            return text
        return text.replace(str(self.path), self.shown_as).replace(self.path.name, self.shown_as)


def _ids(paths: list[Path], root: Path | None, style: str) -> list[str]:
    stems = [p.stem if p.is_file() else p.name for p in paths]
    if style == "stem" or (style == "auto" and len(set(stems)) == len(stems)):
        return stems
    if root is None:
        return [p.with_suffix("").as_posix() for p in paths]
    return [p.relative_to(root).with_suffix("").as_posix() if p.is_file() else p.relative_to(root).as_posix()
            for p in paths]


def find_videos(video_dir: Path | None = None, list_file: Path | None = None, frame_dir: Path | None = None,
                id_style: str = "auto") -> list[Source]:
    """Inputs from exactly one of ``video_dir`` (recursive), ``list_file`` (one path per line,
    relative to the list's folder) or ``frame_dir`` (one sub-folder of images per video)."""
    if sum(x is not None for x in (video_dir, list_file, frame_dir)) != 1:
        raise ValueError("give exactly one of --video-dir, --list, --frame-dir")
    if id_style not in ("auto", "stem", "relative"):
        raise ValueError(f"id style must be auto, stem or relative, got {id_style!r}")
    if frame_dir is not None:
        if not frame_dir.is_dir():
            raise FileNotFoundError(f"--frame-dir {frame_dir} is not a directory")
        dirs = sorted(d for d in frame_dir.rglob("*") if d.is_dir() and any(
            f.suffix.lower() in FRAME_EXTENSIONS for f in d.iterdir()))
        return [Source(i, d, True) for i, d in zip(_ids(dirs, frame_dir, id_style), dirs)]
    if video_dir is not None:
        if not video_dir.is_dir():
            raise FileNotFoundError(f"--video-dir {video_dir} is not a directory")
        paths = sorted(p for p in video_dir.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
        root = video_dir
    else:
        base = list_file.parent
        lines = [line.strip() for line in list_file.read_text(encoding="utf-8").splitlines()]
        paths = [(base / line) if not Path(line).is_absolute() else Path(line) for line in lines if line]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{list_file}: {len(missing)} listed files do not exist, e.g. {missing[0]}")
        root = None
    ids = _ids(paths, root, id_style)
    if len(set(ids)) != len(ids):
        raise ValueError("video ids collide even as relative paths; use distinct files")
    return [Source(i, p) for i, p in zip(ids, paths)]
