"""Where MEAD comes from: one class per `data.source`, each filling a staging folder with MEAD's layout."""

from __future__ import annotations

import contextlib
import importlib
import logging
import shutil
import tarfile
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

from emohead.data.archives import extract_member, list_members, open_archive
from emohead.data.fetch import RetryPolicy, download
from emohead.data.layout import ACTOR_PATTERN
from emohead.data.manifest import MediaFile, parse_media_path
from emohead.data.selection import Selection
from emohead.errors import InputError
from emohead.paths import DOWNLOADS

if TYPE_CHECKING:
    from emohead.data.download import DownloadConfig

log = logging.getLogger(__name__)

ARCHIVES: tuple[str, ...] = ("video.tar", "audio.tar")  # how MEAD ships each actor


class Source(Protocol):
    def fetch(self, selection: Selection, staging: Path) -> None:
        """Write the selected clips under `staging` in MEAD's layout."""


def copy_or_link(source: Path, target: Path) -> None:
    """Hard-link (no extra disk for a many-GB MEAD folder), copying where links fail (other file system)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        target.hardlink_to(source)
    except OSError:
        shutil.copy2(source, target)


def copy_actor_folder(actor_dir: Path, selection: Selection, staging: Path) -> int:
    """Copy (hard-link) the selected files of one actor folder already in MEAD's layout; files copied."""
    actor = actor_dir.name
    found: dict[MediaFile, Path] = {}
    for path in actor_dir.rglob("*"):
        media = parse_media_path(actor, path.relative_to(actor_dir).parts) if path.is_file() else None
        if media is not None:
            found[media] = path
    chosen = selection.choose(found)
    for media in chosen:
        copy_or_link(found[media], staging / media.relpath())
    return len(chosen)


def _member_parts(name: str, actor: str) -> tuple[str, ...]:
    """Member path relative to the actor folder: MEAD tars may or may not start with `<ACTOR>/` or `./`."""
    parts = PurePosixPath(name).parts
    return parts[1:] if parts and parts[0] == actor else parts


def extract_actor_tars(actor: str, tars: Mapping[str, Path], selection: Selection, staging: Path) -> int:
    """Extract only the selected clips from one actor's video.tar/audio.tar; files extracted."""
    found: dict[MediaFile, tuple[tarfile.TarFile, tarfile.TarInfo, str]] = {}
    with contextlib.ExitStack() as stack:
        for archive, path in tars.items():
            label = f"{actor}/{archive}"
            tar = stack.enter_context(open_archive(path, label))
            for member in list_members(tar, path, label, staging / actor):
                if member.isdir():
                    continue
                media = parse_media_path(actor, _member_parts(member.name, actor))
                if media is not None:
                    found[media] = (tar, member, label)
        chosen = selection.choose(found)
        for media in chosen:
            tar, member, label = found[media]
            extract_member(tar, member, staging / media.relpath(), label)
    return len(chosen)


class SampleSource:
    """The generated, offline stand-in for MEAD (emohead.data.sample)."""

    def __init__(self, sample_config: Any):
        self.sample_config = sample_config

    def fetch(self, selection: Selection, staging: Path) -> None:
        from emohead.data.sample import generate_dataset  # renders video: only this source pays the import

        actors = selection.resolve_actors(self.sample_config.actors, "the sample dataset (sample.actors)")
        staging.mkdir(parents=True, exist_ok=True)
        generate_dataset(
            self.sample_config, staging, selection.emotions, selection.levels,
            max_sentences=selection.max_sentences, actors=list(actors),
        )


class LocalSource:
    """A folder on disk: actors in MEAD's layout (`M003/video/front/...`) or as MEAD's `M003/video.tar`."""

    def __init__(self, root: Path):
        self.root = root

    def _actors(self) -> dict[str, Path]:
        if not self.root.is_dir():
            raise InputError(f"data.local_path: folder {self.root} not found")
        return {
            d.name: d for d in self.root.iterdir()
            if d.is_dir() and ACTOR_PATTERN.match(d.name)
            and any((d / name).exists() for name in ("video", "audio", *ARCHIVES))
        }

    def fetch(self, selection: Selection, staging: Path) -> None:
        actors = self._actors()
        for actor in selection.resolve_actors(actors, str(self.root)):
            actor_dir = actors[actor]
            if (actor_dir / "video").is_dir() or (actor_dir / "audio").is_dir():
                count = copy_actor_folder(actor_dir, selection, staging)
            else:
                tars = {name: actor_dir / name for name in ARCHIVES if (actor_dir / name).is_file()}
                count = extract_actor_tars(actor, tars, selection, staging)
            log.info("%s: %d files from %s", actor, count, actor_dir)


class UrlSource:
    """A web mirror with MEAD's per-actor tars at `url_template` (placeholders {actor}, {archive})."""

    def __init__(
        self, url_template: str, sha256: Mapping[str, str], policy: RetryPolicy, cache: Path = DOWNLOADS
    ):
        self.url_template, self.sha256, self.policy, self.cache = url_template, sha256, policy, cache

    def fetch(self, selection: Selection, staging: Path) -> None:
        for actor in selection.actors:  # a mirror cannot be listed: the config insists on named actors
            tars = {}
            for archive in ARCHIVES:
                url = self.url_template.format(actor=actor, archive=archive)
                checksum = self.sha256.get(f"{actor}/{archive}")
                tars[archive] = download(url, self.cache / actor / archive, checksum, self.policy)
            count = extract_actor_tars(actor, tars, selection, staging)
            log.info("%s: %d files from %s", actor, count, self.cache / actor)


def _import_gdown() -> Any:
    try:
        return importlib.import_module("gdown")
    except ImportError:
        raise InputError(
            "data.source=gdrive needs gdown: pip install gdown (or pip install 'emohead[gdrive]')"
        ) from None


class GdriveSource:
    """MEAD's official Google Drive folder (a sub-folder per actor with video.tar, audio.tar), via gdown."""

    def __init__(self, folder_id: str, cache: Path = DOWNLOADS):
        self.folder_id, self.cache = folder_id, cache

    def _list(self, gdown: Any) -> dict[str, dict[str, str]]:
        """{actor: {archive: Drive file id}} from the folder listing (nothing downloaded yet)."""
        try:
            listing = gdown.download_folder(
                id=self.folder_id, output=str(self.cache), skip_download=True, quiet=True, remaining_ok=True
            )
        except TypeError:  # no skip_download before gdown 5.1
            raise InputError("data.source=gdrive needs gdown>=5.1: pip install -U gdown") from None
        if listing is None:
            raise InputError(
                f"Google Drive folder {self.folder_id}: cannot list it (shared with 'Anyone with the link'?)"
            )
        files: dict[str, dict[str, str]] = defaultdict(dict)
        for entry in listing:
            parts = PurePosixPath(str(entry.path).replace("\\", "/")).parts
            if len(parts) >= 2 and ACTOR_PATTERN.match(parts[-2]) and parts[-1] in ARCHIVES:
                files[parts[-2]][parts[-1]] = entry.id
        return files

    def fetch(self, selection: Selection, staging: Path) -> None:
        gdown = _import_gdown()
        files = self._list(gdown)
        for actor in selection.resolve_actors(files, f"Google Drive folder {self.folder_id}"):
            tars = {}
            for archive, file_id in sorted(files[actor].items()):
                dest = self.cache / actor / archive
                if not dest.is_file():  # gdown moves a file into place only once it is complete
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    if gdown.download(id=file_id, output=str(dest), quiet=False, resume=True) is None:
                        raise InputError(
                            f"{actor}/{archive}: Google Drive download failed (daily quota? retry later)"
                        )
                tars[archive] = dest
            count = extract_actor_tars(actor, tars, selection, staging)
            log.info("%s: %d files from %s", actor, count, self.cache / actor)


def _sample(config: DownloadConfig) -> Source:
    return SampleSource(config.sample)


def _local(config: DownloadConfig) -> Source:
    return LocalSource(Path(config.data.local_path or ""))


def _url(config: DownloadConfig) -> Source:
    data = config.data
    policy = RetryPolicy(data.retries, data.timeout_s, data.retry_backoff_s)
    return UrlSource(data.url_template or "", data.sha256, policy)


def _gdrive(config: DownloadConfig) -> Source:
    return GdriveSource(config.data.gdrive_folder_id or "")


SOURCES: dict[str, Callable[[DownloadConfig], Source]] = {
    "sample": _sample, "local": _local, "url": _url, "gdrive": _gdrive,
}


def make_source(config: DownloadConfig) -> Source:
    return SOURCES[config.data.source](config)
