"""Tiny fake MEAD for the download tests: actor folders and tars in MEAD's layout, and a local HTTP server
that can drop a connection part-way and honour (or ignore) HTTP Range requests."""

from __future__ import annotations

import csv
import io
import json
import re
import tarfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from emohead.data.download import load_config

REPO = Path(__file__).resolve().parents[1]


def params(**data) -> dict:
    """params.yaml's data and sample sections with `data` overrides; fast retries for the tests."""
    repo_params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = dict(repo_params["data"], retry_backoff_s=0.0, timeout_s=10.0)
    section.update(data)
    return {"data": section, "sample": repo_params["sample"]}


def config(**data):
    return load_config(params(**data))


def payload(relpath: str) -> bytes:
    """Distinct bytes per file, so a copy can be traced back to its source."""
    return (relpath.encode() + b"\n") * 50


def mead_files(
    actor: str,
    emotions=("angry", "neutral"),
    sentences=3,
    cameras=("front", "left_30"),
    audio_ext=".m4a",
    video_prefix="video",
) -> dict[str, bytes]:
    """{path relative to the actor folder: bytes} in MEAD's layout."""
    files = {}
    for emotion in emotions:
        for level in (1,) if emotion == "neutral" else (1, 2, 3):
            for s in range(1, sentences + 1):
                for camera in cameras:
                    files[f"{video_prefix}/{camera}/{emotion}/level_{level}/{s:03d}.mp4"] = b""
                files[f"audio/{emotion}/level_{level}/{s:03d}{audio_ext}"] = b""
    return {rel: payload(f"{actor}/{rel}") for rel in files}


def write_folder(root: Path, actor: str, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / actor / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def tar_bytes(files: dict[str, bytes], prefix: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for rel, data in files.items():
            info = tarfile.TarInfo(prefix + rel)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def split(files: dict[str, bytes]) -> tuple[dict[str, bytes], dict[str, bytes]]:
    video = {k: v for k, v in files.items() if k.startswith("video/")}
    return video, {k: v for k, v in files.items() if k.startswith("audio/")}


def write_tars(root: Path, actor: str, files: dict[str, bytes], prefix: str = "") -> None:
    video, audio = split(files)
    (root / actor).mkdir(parents=True, exist_ok=True)
    (root / actor / "video.tar").write_bytes(tar_bytes(video, prefix))
    (root / actor / "audio.tar").write_bytes(tar_bytes(audio, prefix))


def manifest(root: Path = Path("data/raw")) -> list[dict[str, str]]:
    with (root / "manifest.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def metrics() -> dict:
    return json.loads(Path("metrics/download.json").read_text())


def assert_nothing_left() -> None:
    assert not Path("data/raw").exists()
    assert not list(Path().glob("data/.raw.*"))  # atomic_path's staging folder is gone too



class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.drop_after: dict[str, int] = {}  # path -> bytes sent before the first response is cut
        self.honour_range = True

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Server

    def do_GET(self):  # noqa: N802 (http.server's naming)
        body = self.server.files.get(self.path)
        requested = self.headers.get("Range")
        self.server.requests.append((self.path, requested))
        if body is None:
            self.send_error(404)
            return
        start = 0
        if requested and self.server.honour_range:
            start = int(re.match(r"bytes=(\d+)-", requested).group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        cut = self.server.drop_after.pop(self.path, None)
        self.wfile.write(payload if cut is None else payload[:cut])
        self.close_connection = True

    def log_message(self, *args):
        pass


def serve_actor(server: Server, actor: str, **kwargs) -> dict[str, bytes]:
    files = mead_files(actor, **kwargs)
    video, audio = split(files)
    server.files[f"/MEAD/{actor}/video.tar"] = tar_bytes(video)
    server.files[f"/MEAD/{actor}/audio.tar"] = tar_bytes(audio)
    return files


def url_config(server: Server, **data):
    return config(source="url", url_template=server.base + "/MEAD/{actor}/{archive}", **data)
