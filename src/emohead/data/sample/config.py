"""SampleConfig: the `sample:` section of params.yaml, checked when built."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from emohead.data.layout import ACTOR_PATTERN
from emohead.errors import ConfigError


def check_actor_ids(actors: tuple[str, ...] | list[str], where: str) -> None:
    """MEAD actor ids are M/W + three digits; the generated identity depends on that letter."""
    for actor in actors:
        if not isinstance(actor, str) or not ACTOR_PATTERN.match(actor):
            raise ConfigError(f"{where}: actor id {actor!r} must match [MW]\\d{{3}} (e.g. M901, W902)")


@dataclass(frozen=True)
class SampleConfig:
    seed: int = 0
    actors: tuple[str, ...] = ("M901", "W902")
    sentences: int = 3
    duration_s: float = 2.4
    width: int = 320
    height: int = 256
    fps: int = 30
    sample_rate_hz: int = 48000
    audio_format: Literal["m4a", "wav"] = "m4a"
    workers: int = 2

    def __post_init__(self) -> None:
        check_actor_ids(self.actors, "sample.actors")
        if not self.actors:
            raise ConfigError("sample.actors: needs at least one actor id")
        if self.sentences < 1:
            raise ConfigError(f"sample.sentences: must be >= 1, got {self.sentences}")
        if not 0.5 <= self.duration_s <= 60:
            raise ConfigError(f"sample.duration_s: must lie in [0.5, 60] s, got {self.duration_s}")
        for name in ("width", "height"):
            side = getattr(self, name)
            if side < 128 or side % 2:
                raise ConfigError(f"sample.{name}: must be even and >= 128 px (H.264 4:2:0), got {side}")
        if not 10 <= self.fps <= 120:
            raise ConfigError(f"sample.fps: must lie in [10, 120], got {self.fps}")
        if self.sample_rate_hz < 16000:
            raise ConfigError(f"sample.sample_rate_hz: must be >= 16000, got {self.sample_rate_hz}")
        if self.workers < 1:
            raise ConfigError(f"sample.workers: must be >= 1, got {self.workers}")
