"""Which part of MEAD to fetch: actors, emotions, levels, camera, and how many sentences per cell."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from emohead.data.manifest import MediaFile
from emohead.errors import InputError


@dataclass(frozen=True)
class Selection:
    actors: tuple[str, ...]  # empty = every actor the source has
    emotions: tuple[str, ...]  # resolved: never empty
    levels: tuple[int, ...]  # resolved: never empty
    camera: str
    max_sentences: int  # per (actor, emotion, level) cell; 0 = all

    def resolve_actors(self, available: Iterable[str], where: str) -> tuple[str, ...]:
        """The selected actors among those `where` has; naming one it lacks is an InputError."""
        available = sorted(set(available))
        if not self.actors:
            if not available:
                raise InputError(f"{where}: holds no MEAD actors (folders like M003/, W009/)")
            return tuple(available)
        absent = [a for a in self.actors if a not in available]
        if absent:
            raise InputError(
                f"{where}: actor {', '.join(absent)} not found; it has {', '.join(available) or 'none'}"
            )
        return self.actors

    def wants(self, media: MediaFile) -> bool:
        key = media.key
        if media.kind == "video" and media.camera != self.camera:
            return False
        return key.emotion in self.emotions and key.level in self.levels

    def choose(self, files: Iterable[MediaFile]) -> list[MediaFile]:
        """The wanted files, keeping the first `max_sentences` sentence numbers of each cell.

        Sentences count whether they have video, audio or both, so a clip missing one half is still
        chosen (and reported as missing) rather than silently replaced by the next sentence.
        """
        wanted = [f for f in files if self.wants(f)]
        if not self.max_sentences:
            return wanted
        sentences: dict[tuple[str, str, int], set[int]] = defaultdict(set)
        for f in wanted:
            sentences[f.key.actor, f.key.emotion, f.key.level].add(f.key.sentence)
        kept = {cell: set(sorted(s)[: self.max_sentences]) for cell, s in sentences.items()}
        return [f for f in wanted if f.key.sentence in kept[f.key.actor, f.key.emotion, f.key.level]]


def resolve(values: Sequence, everything: Sequence) -> tuple:
    """An empty selection list means everything."""
    return tuple(values) if values else tuple(everything)
