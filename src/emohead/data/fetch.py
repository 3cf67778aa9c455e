"""HTTP(S) download into a cache that survives a kill: resume via Range, retries with backoff, sha256."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from emohead.errors import InputError

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+|\*)-?(\d*)/(\d+|\*)")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # tries per file, the first included
    timeout_s: float = 60.0  # socket timeout per request
    backoff_s: float = 1.0  # wait before retry k is backoff_s * 2**(k-1)


class _Transient(Exception):
    """A failure worth retrying: connection drop, timeout, 5xx, short body."""


class _RangeRefused(_Transient):
    """The server cannot serve the rest of our .part file (the file changed?): start over."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def part_path(dest: Path) -> Path:
    """Where the bytes received so far are kept; renamed to `dest` only once complete."""
    return dest.with_name(dest.name + ".part")


def download(url: str, dest: Path, sha256: str | None = None, policy: RetryPolicy = RetryPolicy()) -> Path:
    """Download `url` to `dest` unless a complete (and matching) copy is there; return `dest`."""
    if dest.is_file():
        if sha256 is None or sha256_of(dest) == sha256.lower():
            log.info("%s: already downloaded", dest)
            return dest
        log.warning("%s: cached copy fails its sha256 check; downloading it again", dest)
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    for attempt in range(1, policy.attempts + 1):
        try:
            _transfer(url, part, policy.timeout_s, label=dest.name)
            break
        except _Transient as exc:
            if attempt == policy.attempts:
                raise InputError(f"{url}: download failed after {attempt} attempts: {exc}") from None
            wait_s = policy.backoff_s * 2 ** (attempt - 1)
            log.warning("%s: %s; retry %d of %d in %.1f s", url, exc, attempt, policy.attempts - 1, wait_s)
            time.sleep(wait_s)
    if sha256 is not None:
        got = sha256_of(part)
        if got != sha256.lower():
            part.unlink()
            raise InputError(f"{dest}: sha256 mismatch: expected {sha256.lower()}, got {got}; deleted it")
    os.replace(part, dest)
    return dest


def _open(url: str, offset: int, timeout_s: float) -> http.client.HTTPResponse | None:
    """The response for bytes from `offset` on; None when the .part file already holds the whole file."""
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # range past the end: complete already, or the file changed
            match = _CONTENT_RANGE.match(exc.headers.get("Content-Range", ""))
            if match and match.group(3) == str(offset):
                return None
            raise _RangeRefused("server refused the resume range; starting over") from None
        if exc.code in (408, 429) or exc.code >= 500:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
        raise InputError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _Transient(str(getattr(exc, "reason", exc))) from None


def _resume_start(response: http.client.HTTPResponse, offset: int) -> int:
    """The byte the body starts at: `offset` for a matching 206, else 0 (a server that ignored Range)."""
    if offset and response.status == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if match and match.group(1) == str(offset):
            return offset
    return 0


def _transfer(url: str, part: Path, timeout_s: float, label: str) -> None:
    """Append the rest of `url` to `part`; raise _Transient when the body ends short."""
    offset = part.stat().st_size if part.is_file() else 0
    try:
        response = _open(url, offset, timeout_s)
    except _RangeRefused:
        part.unlink()
        raise
    if response is None:
        return
    with response:
        start = _resume_start(response, offset)
        if offset and not start:
            log.info("%s: server ignored the resume request; downloading from the start", url)
        length = response.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else None
        received = start
        with part.open("ab" if start else "wb") as out, tqdm(
            total=total, initial=start, unit="B", unit_scale=True, desc=label, leave=False
        ) as bar:
            try:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as exc:
                raise _Transient(f"connection lost after {received} bytes ({exc})") from None
    if total is not None and received < total:
        raise _Transient(f"connection closed after {received} of {total} bytes")
