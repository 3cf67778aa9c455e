"""MEAD's folder layout, emotion vocabulary and clip ids: the one place that knows them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# Alphabetical, as EVP's loaders use; label index = position here.
EMOTIONS: tuple[str, ...] = ("angry", "contempt", "disgusted", "fear", "happy", "neutral", "sad", "surprised")
LEVELS: tuple[int, ...] = (1, 2, 3)
CAMERAS: tuple[str, ...] = ("front", "down", "left_30", "left_60", "right_30", "right_60", "top")
AUDIO_EXTENSIONS: tuple[str, ...] = (".m4a", ".wav")

ACTOR_PATTERN = re.compile(r"^[MW]\d{3}$")


def levels_for(emotion: str) -> tuple[int, ...]:
    """MEAD records neutral at level 1 only."""
    return (1,) if emotion == "neutral" else LEVELS


def emotion_index(emotion: str) -> int:
    return EMOTIONS.index(emotion)


@dataclass(frozen=True, order=True)
class ClipKey:
    actor: str
    emotion: str
    level: int
    sentence: int

    @property
    def clip_id(self) -> str:
        """Stable id, e.g. M003_angry_3_001; file names and Parquet rows use it."""
        return f"{self.actor}_{self.emotion}_{self.level}_{self.sentence:03d}"

    @classmethod
    def from_clip_id(cls, clip_id: str) -> ClipKey:
        actor, emotion, level, sentence = clip_id.rsplit("_", 3)
        return cls(actor, emotion, int(level), int(sentence))

    def video_relpath(self, camera: str = "front") -> Path:
        return Path(self.actor, "video", camera, self.emotion, f"level_{self.level}", f"{self.sentence:03d}.mp4")

    def audio_relpath(self, extension: str = ".m4a") -> Path:
        return Path(self.actor, "audio", self.emotion, f"level_{self.level}", f"{self.sentence:03d}{extension}")


def find_audio(root: Path, key: ClipKey) -> Path | None:
    for ext in AUDIO_EXTENSIONS:
        path = root / key.audio_relpath(ext)
        if path.is_file():
            return path
    return None
