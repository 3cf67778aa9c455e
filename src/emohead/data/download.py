"""Stage `download`: the selected part of MEAD from `data.source` -> data/raw (MEAD layout) + manifest.csv."""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from emohead import paths
from emohead.atomic import atomic_path, remove_stale, write_json
from emohead.config import from_dict
from emohead.data.layout import ACTOR_PATTERN, CAMERAS, EMOTIONS, LEVELS
from emohead.data.manifest import Scan, scan_layout, write_manifest, write_missing
from emohead.data.selection import Selection, resolve
from emohead.data.sources import make_source
from emohead.errors import ConfigError, InputError
from emohead.tracking import stage_run

if TYPE_CHECKING:
    from emohead.data.sample import SampleConfig

log = logging.getLogger(__name__)

METRICS_FILE = paths.METRICS / "download.json"
MISSING_NAME = "missing.csv"  # in data/raw: clips left out of the manifest, with the reason
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class DataConfig:
    """The `data:` section of params.yaml."""

    source: Literal["sample", "local", "url", "gdrive"] = "sample"
    local_path: str | None = None
    url_template: str | None = None
    sha256: dict[str, str] = field(default_factory=dict)
    gdrive_folder_id: str | None = None
    actors: tuple[str, ...] = ()
    emotions: tuple[str, ...] = ()
    levels: tuple[int, ...] = ()
    camera: str = "front"
    max_sentences: int = 0
    retries: int = 3
    retry_backoff_s: float = 1.0
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.sha256 is None:  # `sha256:` left empty in YAML
            object.__setattr__(self, "sha256", {})
        if not isinstance(self.sha256, dict):
            raise ConfigError(f"data.sha256: expected a mapping '<actor>/<archive>': hex, got {self.sha256!r}")
        for name, digest in self.sha256.items():
            if not isinstance(digest, str) or not _SHA256.match(digest):
                raise ConfigError(f"data.sha256[{name!r}]: expected 64 hex digits, got {digest!r}")
        self._check_selection()
        self._check_source()

    def _check_selection(self) -> None:
        for actor in self.actors:
            if not ACTOR_PATTERN.match(actor):
                raise ConfigError(f"data.actors: {actor!r} is not a MEAD actor id like M003 or W009")
        for emotion in self.emotions:
            if emotion not in EMOTIONS:
                raise ConfigError(f"data.emotions: unknown emotion {emotion!r}; valid: {', '.join(EMOTIONS)}")
        for level in self.levels:
            if level not in LEVELS:
                raise ConfigError(f"data.levels: unknown level {level}; valid: {', '.join(map(str, LEVELS))}")
        if self.camera not in CAMERAS:
            raise ConfigError(f"data.camera: unknown camera {self.camera!r}; valid: {', '.join(CAMERAS)}")
        if self.max_sentences < 0:
            raise ConfigError(f"data.max_sentences: must be 0 (all) or more, got {self.max_sentences}")

    def _check_source(self) -> None:
        needs = {"local": "local_path", "url": "url_template", "gdrive": "gdrive_folder_id"}.get(self.source)
        if needs and not getattr(self, needs):
            raise ConfigError(f"data.{needs}: required when data.source is {self.source}")
        if self.source == "sample" and self.camera != "front":
            raise ConfigError(f"data.camera: the sample source renders only 'front', not {self.camera!r}")
        if self.source == "url":
            self._check_url()
        if self.retries < 1 or self.timeout_s <= 0 or self.retry_backoff_s < 0:
            raise ConfigError("data.retries must be >= 1, data.timeout_s > 0 and data.retry_backoff_s >= 0")

    def _check_url(self) -> None:
        if not self.actors:
            raise ConfigError("data.actors: list the actors to fetch; a URL mirror cannot be listed")
        try:
            self.url_template.format(actor="M003", archive="video.tar")  # type: ignore[union-attr]
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"data.url_template: {self.url_template!r} is not a template of {{actor}}, {{archive}} ({exc})"
            ) from None


@dataclass(frozen=True)
class DownloadConfig:
    data: DataConfig
    sample: SampleConfig  # read by the sample source only

    def selection(self) -> Selection:
        data = self.data
        return Selection(
            actors=data.actors,
            emotions=resolve(data.emotions, EMOTIONS),
            levels=resolve(data.levels, LEVELS),
            camera=data.camera,
            max_sentences=data.max_sentences,
        )


def load_config(params: dict) -> DownloadConfig:
    from emohead.data.sample import SampleConfig

    data = from_dict(DataConfig, params.get("data"), "data")
    return DownloadConfig(data=data, sample=from_dict(SampleConfig, params.get("sample"), "sample"))


def _counts(scan: Scan) -> dict[str, Any]:
    reasons = Counter(m.reason for m in scan.missing)
    per_emotion = Counter(row.emotion for row in scan.rows)
    return {
        "clips": len(scan.rows),
        "actors": len({row.actor for row in scan.rows}),
        "emotions": len(per_emotion),
        "missing_audio": reasons["no audio"],
        "missing_video": reasons["no video"],
        "clips_per_emotion": {emotion: per_emotion[emotion] for emotion in EMOTIONS},
    }


def _flat(counts: dict[str, Any]) -> dict[str, float]:
    flat = {k: v for k, v in counts.items() if not isinstance(v, dict)}
    flat.update({f"clips_{emotion}": n for emotion, n in counts["clips_per_emotion"].items()})
    return flat


def _report_missing(scan: Scan, shown: int = 20) -> None:
    for clip in scan.missing[:shown]:
        log.warning("%s: left out of the manifest (%s)", clip.clip_id, clip.reason)
    if len(scan.missing) > shown:
        log.warning("... and %d more, all listed in %s", len(scan.missing) - shown, paths.RAW / MISSING_NAME)


def run(config: DownloadConfig) -> None:
    # A stale data/raw must not pass for this run's output (atomic_path drops a killed run's staging).
    remove_stale(paths.RAW, METRICS_FILE)
    selection = config.selection()
    with stage_run("download", config) as tracker:
        with atomic_path(paths.RAW) as staging:
            staging.mkdir()
            make_source(config).fetch(selection, staging)
            scan = scan_layout(staging, selection.camera)
            if not scan.rows:
                raise InputError(
                    f"data.source={config.data.source}: the selection matched no clip with both video and "
                    f"audio ({len(scan.missing)} incomplete); check data.actors/emotions/levels/camera"
                )
            write_manifest(staging / paths.MANIFEST_NAME, scan.rows)
            write_missing(staging / MISSING_NAME, scan.missing)
        _report_missing(scan)
        counts = _counts(scan)
        write_json(METRICS_FILE, counts)
        tracker.metrics(_flat(counts))
        tracker.artifact(paths.RAW / paths.MANIFEST_NAME)
        tracker.artifact(paths.RAW / MISSING_NAME)
        log.info("data/raw: %d clips of %d actors (%d incomplete left out)",
                 counts["clips"], counts["actors"], len(scan.missing))
