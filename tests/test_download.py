"""Stage `download`: every source into data/raw with a manifest, on tiny fake MEAD data made here."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sys
import tarfile
import threading
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from emohead.data.download import load_config, run
from emohead.errors import ConfigError, InputError

REPO = Path(__file__).resolve().parents[1]


def _params(**data) -> dict:
    """params.yaml's data and sample sections with `data` overrides; fast retries for the tests."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = dict(params["data"], retry_backoff_s=0.0, timeout_s=10.0)
    section.update(data)
    return {"data": section, "sample": params["sample"]}


def _config(**data):
    return load_config(_params(**data))


# --- tiny fake MEAD ---------------------------------------------------------------------------------------

def _payload(relpath: str) -> bytes:
    """Distinct bytes per file, so a copy can be traced back to its source."""
    return (relpath.encode() + b"\n") * 50


def _mead_files(
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
    return {rel: _payload(f"{actor}/{rel}") for rel in files}


def _write_folder(root: Path, actor: str, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / actor / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _tar_bytes(files: dict[str, bytes], prefix: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for rel, data in files.items():
            info = tarfile.TarInfo(prefix + rel)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _split(files: dict[str, bytes]) -> tuple[dict[str, bytes], dict[str, bytes]]:
    video = {k: v for k, v in files.items() if k.startswith("video/")}
    return video, {k: v for k, v in files.items() if k.startswith("audio/")}


def _write_tars(root: Path, actor: str, files: dict[str, bytes], prefix: str = "") -> None:
    video, audio = _split(files)
    (root / actor).mkdir(parents=True, exist_ok=True)
    (root / actor / "video.tar").write_bytes(_tar_bytes(video, prefix))
    (root / actor / "audio.tar").write_bytes(_tar_bytes(audio, prefix))


def _manifest(root: Path = Path("data/raw")) -> list[dict[str, str]]:
    with (root / "manifest.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _metrics() -> dict:
    return json.loads(Path("metrics/download.json").read_text())


def _assert_nothing_left() -> None:
    assert not Path("data/raw").exists()
    assert not list(Path().glob("data/.raw.*"))  # atomic_path's staging folder is gone too


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


# --- local source -----------------------------------------------------------------------------------------

def test_local_folder_keeps_only_the_selection_and_normalises_w021(workdir, tmp_path):
    mead = tmp_path / "mead"
    _write_folder(mead, "M003", _mead_files("M003"))
    _write_folder(mead, "W009", _mead_files("W009"))
    _write_folder(mead, "W021", _mead_files("W021", video_prefix="video/1"))  # MEAD's W021 quirk

    run(_config(source="local", local_path=str(mead), actors=["M003", "W021"], emotions=["angry", "neutral"],
                levels=[1, 2], max_sentences=2))

    rows = _manifest()
    assert list(rows[0]) == ["clip_id", "actor", "emotion", "level", "sentence", "video", "audio"]
    expected = {
        f"{a}_{e}_{lv}_{s:03d}"
        for a in ("M003", "W021") for e, levels in (("angry", (1, 2)), ("neutral", (1,))) for lv in levels
        for s in (1, 2)
    }
    assert {r["clip_id"] for r in rows} == expected
    raw = Path("data/raw")
    for r in rows:
        assert r["video"] == f"{r['actor']}/video/front/{r['emotion']}/level_{r['level']}/{int(r['sentence']):03d}.mp4"
        assert r["audio"] == f"{r['actor']}/audio/{r['emotion']}/level_{r['level']}/{int(r['sentence']):03d}.m4a"
        source_video = r["video"].replace("W021/video/", "W021/video/1/")
        assert (raw / r["video"]).read_bytes() == (mead / source_video).read_bytes()
        assert (raw / r["audio"]).read_bytes() == (mead / r["audio"]).read_bytes()
    # Only the selection travels: no other camera, level, sentence or actor.
    media = {p.relative_to(raw).as_posix() for p in raw.rglob("*") if p.is_file() and p.suffix != ".csv"}
    assert media == {r["video"] for r in rows} | {r["audio"] for r in rows}
    # Hard links, not copies, when the file system allows them.
    first = rows[0]
    assert (raw / first["audio"]).stat().st_ino == (mead / first["audio"]).stat().st_ino
    metrics = _metrics()
    assert metrics["clips"] == len(expected) == 12
    assert metrics["actors"] == 2
    assert metrics["missing_audio"] == metrics["missing_video"] == 0
    assert metrics["clips_per_emotion"]["angry"] == 8 and metrics["clips_per_emotion"]["happy"] == 0


def test_clips_missing_audio_or_video_are_counted_and_listed(workdir, tmp_path):
    mead = tmp_path / "mead"
    files = _mead_files("M003", emotions=("angry",), sentences=2, cameras=("front",))
    del files["audio/angry/level_1/002.m4a"]
    del files["video/front/angry/level_3/001.mp4"]
    _write_folder(mead, "M003", files)

    run(_config(source="local", local_path=str(mead)))

    ids = {r["clip_id"] for r in _manifest()}
    assert len(ids) == 4 and "M003_angry_1_002" not in ids and "M003_angry_3_001" not in ids
    with open("data/raw/missing.csv", newline="") as f:
        missing = {r["clip_id"]: r["reason"] for r in csv.DictReader(f)}
    assert missing == {"M003_angry_1_002": "no audio", "M003_angry_3_001": "no video"}
    assert (_metrics()["missing_audio"], _metrics()["missing_video"]) == (1, 1)


@pytest.mark.parametrize("prefix", ["", "M003/", "./"])
def test_local_tars_extract_only_the_selection(workdir, tmp_path, prefix):
    mead = tmp_path / "mead"
    files = _mead_files("M003", emotions=("angry", "happy", "neutral"), audio_ext=".wav")
    _write_tars(mead, "M003", files, prefix)

    run(_config(source="local", local_path=str(mead), emotions=["happy"], levels=[3], max_sentences=2))

    rows = _manifest()
    assert [r["clip_id"] for r in rows] == ["M003_happy_3_001", "M003_happy_3_002"]
    raw = Path("data/raw")
    for r in rows:
        rel_video = r["video"].removeprefix("M003/")
        assert (raw / r["video"]).read_bytes() == files[rel_video]
        assert r["audio"].endswith(".wav")
    extracted = sorted(p.relative_to(raw).as_posix() for p in (raw / "M003").rglob("*") if p.is_file())
    assert extracted == sorted([r["video"] for r in rows] + [r["audio"] for r in rows])


def test_tar_member_escaping_the_folder_is_refused(workdir, tmp_path):
    mead = tmp_path / "mead"
    files = _mead_files("M003", emotions=("angry",), sentences=1, cameras=("front",))
    video, audio = _split(files)
    video["../evil.mp4"] = b"gotcha"
    (mead / "M003").mkdir(parents=True)
    (mead / "M003" / "video.tar").write_bytes(_tar_bytes(video))
    (mead / "M003" / "audio.tar").write_bytes(_tar_bytes(audio))

    with pytest.raises(InputError, match=r"M003/video\.tar: .*unsafe member '\.\./evil\.mp4'"):
        run(_config(source="local", local_path=str(mead)))
    assert not list(tmp_path.rglob("evil.mp4"))
    _assert_nothing_left()


def test_tar_symlink_pointing_outside_is_refused(workdir, tmp_path):
    mead = tmp_path / "mead"
    video, audio = _split(_mead_files("M003", emotions=("angry",), sentences=1, cameras=("front",)))
    raw = io.BytesIO(_tar_bytes(video))
    buf = io.BytesIO()
    with tarfile.open(fileobj=raw) as src, tarfile.open(fileobj=buf, mode="w") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member))
        link = tarfile.TarInfo("video/front/angry/level_2/001.mp4")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../../../../etc/passwd"
        dst.addfile(link)
    (mead / "M003").mkdir(parents=True)
    (mead / "M003" / "video.tar").write_bytes(buf.getvalue())
    (mead / "M003" / "audio.tar").write_bytes(_tar_bytes(audio))

    with pytest.raises(InputError, match=r"M003/video\.tar: .*unsafe member 'video/front/angry/level_2/001\.mp4'"):
        run(_config(source="local", local_path=str(mead)))
    _assert_nothing_left()


@pytest.mark.parametrize("cut", ["mid_file", "member_boundary"])
def test_truncated_tar_is_a_one_line_error_naming_actor_and_archive(workdir, tmp_path, cut):
    mead = tmp_path / "mead"
    files = _mead_files("M019", emotions=("angry",), sentences=2, cameras=("front",))
    video, audio = _split(files)
    whole = _tar_bytes(video)
    # Each member here is one 512-byte header plus its data padded to 512 bytes.
    member_bytes = 512 + -(-len(next(iter(video.values()))) // 512) * 512
    keep = member_bytes * 2 + (700 if cut == "mid_file" else 0)
    (mead / "M019").mkdir(parents=True)
    (mead / "M019" / "video.tar").write_bytes(whole[:keep])
    (mead / "M019" / "audio.tar").write_bytes(_tar_bytes(audio))

    with pytest.raises(InputError) as caught:
        run(_config(source="local", local_path=str(mead)))
    message = str(caught.value)
    assert "M019/video.tar" in message and "corrupt or truncated" in message
    assert "\n" not in message
    _assert_nothing_left()


def test_interrupted_run_leaves_no_raw_and_a_rerun_completes(workdir, tmp_path, monkeypatch):
    import emohead.data.sources as sources

    mead = tmp_path / "mead"
    _write_tars(mead, "M003", _mead_files("M003", emotions=("angry",), sentences=2))
    real_extract, calls = sources.extract_member, []

    def extract_then_interrupt(*args):
        calls.append(args)
        real_extract(*args)
        if len(calls) == 3:
            raise KeyboardInterrupt  # what SIGTERM becomes under emohead.runner

    monkeypatch.setattr(sources, "extract_member", extract_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run(_config(source="local", local_path=str(mead)))
    _assert_nothing_left()
    assert not Path("metrics/download.json").exists()

    monkeypatch.setattr(sources, "extract_member", real_extract)
    run(_config(source="local", local_path=str(mead)))
    assert len(_manifest()) == 6


# --- url source -------------------------------------------------------------------------------------------

class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.drop_after: dict[str, int] = {}  # path -> bytes sent before the first response is cut
        self.honour_range = True

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

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


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _serve_actor(server: _Server, actor: str, **kwargs) -> dict[str, bytes]:
    files = _mead_files(actor, **kwargs)
    video, audio = _split(files)
    server.files[f"/MEAD/{actor}/video.tar"] = _tar_bytes(video)
    server.files[f"/MEAD/{actor}/audio.tar"] = _tar_bytes(audio)
    return files


def _url_config(server: _Server, **data):
    return _config(source="url", url_template=server.base + "/MEAD/{actor}/{archive}", **data)


def test_url_download_resumes_after_a_dropped_connection(workdir, server):
    files = _serve_actor(server, "M003", emotions=("angry",), sentences=2)
    server.drop_after["/MEAD/M003/video.tar"] = 3000

    run(_url_config(server, actors=["M003"], levels=[1]))

    video_requests = [r for p, r in server.requests if p == "/MEAD/M003/video.tar"]
    assert video_requests == [None, "bytes=3000-"]
    cached = Path("data/downloads/M003/video.tar")
    assert cached.read_bytes() == server.files["/MEAD/M003/video.tar"]
    assert not Path("data/downloads/M003/video.tar.part").exists()
    rows = _manifest()
    assert [r["clip_id"] for r in rows] == ["M003_angry_1_001", "M003_angry_1_002"]
    assert Path("data/raw", rows[1]["video"]).read_bytes() == files["video/front/angry/level_1/002.mp4"]


def test_url_download_continues_a_part_file_left_on_disk(workdir, server):
    _serve_actor(server, "W009", emotions=("sad",), sentences=1)
    whole = server.files["/MEAD/W009/audio.tar"]
    part = Path("data/downloads/W009/audio.tar.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(whole[:1234])

    run(_url_config(server, actors=["W009"]))

    assert ("/MEAD/W009/audio.tar", "bytes=1234-") in server.requests
    assert Path("data/downloads/W009/audio.tar").read_bytes() == whole
    assert len(_manifest()) == 3


def test_url_server_ignoring_range_restarts_from_zero(workdir, server):
    _serve_actor(server, "W009", emotions=("sad",), sentences=1)
    server.honour_range = False
    part = Path("data/downloads/W009/video.tar.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"stale bytes from some other file")

    run(_url_config(server, actors=["W009"]))

    assert Path("data/downloads/W009/video.tar").read_bytes() == server.files["/MEAD/W009/video.tar"]
    assert len(_manifest()) == 3


def test_url_cached_archives_are_not_downloaded_again(workdir, server):
    _serve_actor(server, "M003", emotions=("angry",), sentences=1)
    run(_url_config(server, actors=["M003"]))
    first = len(server.requests)
    run(_url_config(server, actors=["M003"]))
    assert len(server.requests) == first == 2
    assert len(_manifest()) == 3


def test_url_sha256_mismatch_names_file_expected_and_got(workdir, server):
    _serve_actor(server, "M003", emotions=("angry",), sentences=1)
    good = hashlib.sha256(server.files["/MEAD/M003/video.tar"]).hexdigest()
    got = hashlib.sha256(server.files["/MEAD/M003/audio.tar"]).hexdigest()
    wrong = "0" * 64
    config = _url_config(server, actors=["M003"], sha256={"M003/video.tar": good, "M003/audio.tar": wrong})

    with pytest.raises(InputError) as caught:
        run(config)
    message = str(caught.value)
    assert "audio.tar" in message and f"expected {wrong}" in message and f"got {got}" in message
    assert not Path("data/downloads/M003/audio.tar").exists()
    assert not Path("data/downloads/M003/audio.tar.part").exists()
    assert Path("data/downloads/M003/video.tar").is_file()  # the good one stays cached
    _assert_nothing_left()


def test_url_missing_file_and_retries_exhausted(workdir, server):
    with pytest.raises(InputError, match=r"/MEAD/M003/video\.tar: HTTP 404"):
        run(_url_config(server, actors=["M003"]))
    _serve_actor(server, "M003", emotions=("angry",), sentences=1)
    server.drop_after["/MEAD/M003/video.tar"] = 10  # one drop per attempt would need more; retries=1 fails
    with pytest.raises(InputError, match=r"download failed after 1 attempts: connection closed after 10 of"):
        run(_url_config(server, actors=["M003"], retries=1))
    _assert_nothing_left()


# --- gdrive source ----------------------------------------------------------------------------------------

def _fake_gdown(drive: dict[str, bytes], calls: list[str]) -> types.ModuleType:
    """A gdown stand-in: `drive` maps a path in the shared folder ("M003/video.tar") to its bytes."""
    ids = {f"id-{i}": path for i, path in enumerate(sorted(drive))}
    module = types.ModuleType("gdown")

    def download_folder(id, output, skip_download, quiet, remaining_ok):  # noqa: A002 (gdown's name)
        assert skip_download and id == "FOLDER"
        return [types.SimpleNamespace(id=i, path=p, local_path=str(Path(output, p))) for i, p in ids.items()]

    def download(id, output, quiet, resume):  # noqa: A002
        calls.append(ids[id])
        Path(output).write_bytes(drive[ids[id]])
        return output

    module.download_folder, module.download = download_folder, download
    return module


def test_gdrive_fetches_only_selected_actors_through_gdown(workdir, monkeypatch):
    drive, calls = {}, []
    for actor in ("M003", "W009"):
        video, audio = _split(_mead_files(actor, emotions=("fear",), sentences=2))
        drive[f"{actor}/video.tar"], drive[f"{actor}/audio.tar"] = _tar_bytes(video), _tar_bytes(audio)
    drive["README.txt"] = b"not an archive"
    monkeypatch.setitem(sys.modules, "gdown", _fake_gdown(drive, calls))

    run(_config(source="gdrive", gdrive_folder_id="FOLDER", actors=["W009"], levels=[2]))

    assert sorted(calls) == ["W009/audio.tar", "W009/video.tar"]
    assert [r["clip_id"] for r in _manifest()] == ["W009_fear_2_001", "W009_fear_2_002"]

    with pytest.raises(InputError, match=r"actor M030 not found; it has M003, W009"):
        run(_config(source="gdrive", gdrive_folder_id="FOLDER", actors=["M030"]))


def test_gdrive_without_gdown_says_how_to_install_it(workdir, monkeypatch):
    monkeypatch.setitem(sys.modules, "gdown", None)  # makes `import gdown` raise ImportError
    with pytest.raises(InputError, match=r"pip install gdown"):
        run(_config(source="gdrive", gdrive_folder_id="FOLDER"))
    _assert_nothing_left()


# --- bad input --------------------------------------------------------------------------------------------

def test_missing_local_folder_is_named_and_stale_raw_is_removed(workdir, tmp_path):
    stale = Path("data/raw/M003")
    stale.mkdir(parents=True)
    Path("data/raw/manifest.csv").write_text("clip_id\n")
    missing = tmp_path / "nowhere"
    with pytest.raises(InputError, match=rf"data.local_path: folder {re.escape(str(missing))} not found"):
        run(_config(source="local", local_path=str(missing)))
    _assert_nothing_left()


def test_unknown_actor_names_it_and_lists_those_found(workdir, tmp_path):
    mead = tmp_path / "mead"
    _write_folder(mead, "M003", _mead_files("M003", emotions=("angry",), sentences=1))
    _write_tars(mead, "W009", _mead_files("W009", emotions=("angry",), sentences=1))
    with pytest.raises(InputError, match=r"actor M099 not found; it has M003, W009"):
        run(_config(source="local", local_path=str(mead), actors=["M003", "M099"]))
    _assert_nothing_left()


def test_selection_matching_nothing_is_an_error(workdir, tmp_path):
    mead = tmp_path / "mead"
    _write_folder(mead, "M003", _mead_files("M003", emotions=("angry",), sentences=1))
    with pytest.raises(InputError, match=r"matched no clip"):
        run(_config(source="local", local_path=str(mead), emotions=["sad"]))
    _assert_nothing_left()


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ({"emotions": ["angry", "joyful"]}, r"unknown emotion 'joyful'; valid: angry, contempt, .*surprised"),
        ({"levels": [4]}, r"data.levels: unknown level 4"),
        ({"camera": "back"}, r"data.camera: unknown camera 'back'"),
        ({"actors": ["bob"]}, r"data.actors: 'bob' is not a MEAD actor id"),
        ({"max_sentence": 2}, r"data: unknown key 'max_sentence'; valid keys: source, .*max_sentences"),
        ({"source": "ftp"}, r"data.source: 'ftp' is not one of"),
        ({"source": "local"}, r"data.local_path: required when data.source is local"),
        ({"source": "url", "url_template": "http://x/{actor}/{archive}"}, r"data.actors: list the actors"),
        ({"source": "url", "url_template": "http://x/{who}", "actors": ["M003"]}, r"data.url_template"),
        ({"sha256": {"M003/video.tar": "abc"}}, r"data.sha256\['M003/video.tar'\]: expected 64 hex"),
    ],
)
def test_bad_params_are_one_line_config_errors(data, pattern):
    with pytest.raises(ConfigError, match=pattern) as caught:
        _config(**data)
    assert "\n" not in str(caught.value)


def test_unknown_sample_key_is_a_config_error():
    params = _params()
    params["sample"] = dict(params["sample"], sentencez=1)
    with pytest.raises(ConfigError, match=r"sample: unknown key 'sentencez'"):
        load_config(params)


# --- sample source ----------------------------------------------------------------------------------------

def test_sample_source_writes_the_selection(workdir):
    params = _params(source="sample", actors=["M901"], emotions=["happy"], levels=[1], max_sentences=1)
    params["sample"] = dict(params["sample"], duration_s=0.5, width=128, height=128, workers=1)

    run(load_config(params))

    rows = _manifest()
    assert [r["clip_id"] for r in rows] == ["M901_happy_1_001"]
    assert all(Path("data/raw", r[col]).stat().st_size > 0 for r in rows for col in ("video", "audio"))
    assert _metrics()["clips"] == 1
