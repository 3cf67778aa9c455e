"""data/raw/manifest.csv: a row per clip with both video and audio, found by scanning a MEAD-layout folder."""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Literal

from emohead.data.layout import ACTOR_PATTERN, AUDIO_EXTENSIONS, CAMERAS, EMOTIONS, ClipKey

_LEVEL = re.compile(r"^level_(\d+)$")
_SENTENCE = re.compile(r"^(\d+)$")


@dataclass(frozen=True)
class MediaFile:
    """One MEAD video or audio file, identified by its place in the layout rather than its path."""

    key: ClipKey
    kind: Literal["video", "audio"]
    camera: str | None  # video only
    extension: str  # ".mp4", ".m4a", ".wav"

    def relpath(self) -> Path:
        """Where the file lives under the dataset root, in MEAD's standard layout."""
        if self.kind == "video":
            return self.key.video_relpath(self.camera or "front")
        return self.key.audio_relpath(self.extension)


def _clip_key(actor: str, emotion: str, level_dir: str, file_name: str) -> tuple[ClipKey, str] | None:
    stem, dot, extension = file_name.rpartition(".")
    level, sentence = _LEVEL.match(level_dir), _SENTENCE.match(stem)
    if not (dot and level and sentence and emotion in EMOTIONS):
        return None
    return ClipKey(actor, emotion, int(level.group(1)), int(sentence.group(1))), "." + extension.lower()


def parse_media_path(actor: str, parts: Sequence[str]) -> MediaFile | None:
    """Parse a path relative to an actor's folder, e.g. ('video', 'front', 'angry', 'level_1', '001.mp4').

    Returns None for anything that is not a MEAD clip file. W021 keeps its videos under `video/1/front/...`:
    a numeric folder right after `video` is dropped so the clip lands in the standard layout.
    """
    parts = list(parts)
    if len(parts) == 6 and parts[0] == "video" and parts[1].isdigit():
        del parts[1]
    if len(parts) == 5 and parts[0] == "video" and parts[1] in CAMERAS:
        parsed = _clip_key(actor, *parts[2:])
        if parsed and parsed[1] == ".mp4":
            return MediaFile(parsed[0], "video", parts[1], parsed[1])
    if len(parts) == 4 and parts[0] == "audio":
        parsed = _clip_key(actor, *parts[1:])
        if parsed and parsed[1] in AUDIO_EXTENSIONS:
            return MediaFile(parsed[0], "audio", None, parsed[1])
    return None


@dataclass(frozen=True)
class ManifestRow:
    clip_id: str
    actor: str
    emotion: str
    level: int
    sentence: int
    video: str  # relative to the dataset root, POSIX separators
    audio: str


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ManifestRow))


@dataclass(frozen=True)
class MissingClip:
    clip_id: str
    reason: str  # "no audio" | "no video"


@dataclass(frozen=True)
class Scan:
    rows: list[ManifestRow]
    missing: list[MissingClip]


def scan_layout(root: Path, camera: str = "front") -> Scan:
    """Pair every clip's video (from `camera`) with its audio under a MEAD-layout `root`."""
    videos: dict[ClipKey, Path] = {}
    audios: dict[ClipKey, Path] = {}
    for actor_dir in sorted(p for p in root.iterdir() if p.is_dir() and ACTOR_PATTERN.match(p.name)):
        for path in sorted(p for p in actor_dir.rglob("*") if p.is_file()):
            media = parse_media_path(actor_dir.name, path.relative_to(actor_dir).parts)
            if media is None or (media.kind == "video" and media.camera != camera):
                continue
            found = videos if media.kind == "video" else audios
            # Several audio formats for one clip: keep the first in AUDIO_EXTENSIONS' order of preference.
            if media.key not in found or (media.kind == "audio" and _prefer(path, found[media.key])):
                found[media.key] = path
    rows, missing = [], []
    for key in sorted(videos.keys() | audios.keys()):
        if key not in audios:
            missing.append(MissingClip(key.clip_id, "no audio"))
        elif key not in videos:
            missing.append(MissingClip(key.clip_id, "no video"))
        else:
            video, audio = (p.relative_to(root).as_posix() for p in (videos[key], audios[key]))
            rows.append(ManifestRow(key.clip_id, *astuple(key), video, audio))
    return Scan(rows, missing)


def _prefer(new: Path, old: Path) -> bool:
    return AUDIO_EXTENSIONS.index(new.suffix.lower()) < AUDIO_EXTENSIONS.index(old.suffix.lower())


def write_manifest(path: Path, rows: Sequence[ManifestRow]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(astuple(row) for row in rows)


def write_missing(path: Path, missing: Sequence[MissingClip]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("clip_id", "reason"))
        writer.writerows((m.clip_id, m.reason) for m in missing)
