"""Stage `download`: every source into data/raw with a manifest, on tiny fake MEAD data (tests/fake_mead.py).

Its bad-input rows (unsafe or truncated tar, interrupted download, wrong checksum) live in test_bad_inputs.py.
"""

from __future__ import annotations

import csv
import io
import re
import sys
import tarfile
import types
from pathlib import Path

import fake_mead as fm
import pytest

from emohead.data.download import load_config, run
from emohead.errors import ConfigError, InputError

# --- local source -----------------------------------------------------------------------------------------

def test_local_folder_keeps_only_the_selection_and_normalises_w021(workdir, tmp_path):
    mead = tmp_path / "mead"
    fm.write_folder(mead, "M003", fm.mead_files("M003"))
    fm.write_folder(mead, "W009", fm.mead_files("W009"))
    fm.write_folder(mead, "W021", fm.mead_files("W021", video_prefix="video/1"))  # MEAD's W021 quirk

    run(fm.config(source="local", local_path=str(mead), actors=["M003", "W021"], emotions=["angry", "neutral"],
                levels=[1, 2], max_sentences=2))

    rows = fm.manifest()
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
    metrics = fm.metrics()
    assert metrics["clips"] == len(expected) == 12
    assert metrics["actors"] == 2
    assert metrics["missing_audio"] == metrics["missing_video"] == 0
    assert metrics["clips_per_emotion"]["angry"] == 8 and metrics["clips_per_emotion"]["happy"] == 0


def test_clips_missing_audio_or_video_are_counted_and_listed(workdir, tmp_path):
    mead = tmp_path / "mead"
    files = fm.mead_files("M003", emotions=("angry",), sentences=2, cameras=("front",))
    del files["audio/angry/level_1/002.m4a"]
    del files["video/front/angry/level_3/001.mp4"]
    fm.write_folder(mead, "M003", files)

    run(fm.config(source="local", local_path=str(mead)))

    ids = {r["clip_id"] for r in fm.manifest()}
    assert len(ids) == 4 and "M003_angry_1_002" not in ids and "M003_angry_3_001" not in ids
    with open("data/raw/missing.csv", newline="") as f:
        missing = {r["clip_id"]: r["reason"] for r in csv.DictReader(f)}
    assert missing == {"M003_angry_1_002": "no audio", "M003_angry_3_001": "no video"}
    assert (fm.metrics()["missing_audio"], fm.metrics()["missing_video"]) == (1, 1)


@pytest.mark.parametrize("prefix", ["", "M003/", "./"])
def test_local_tars_extract_only_the_selection(workdir, tmp_path, prefix):
    mead = tmp_path / "mead"
    files = fm.mead_files("M003", emotions=("angry", "happy", "neutral"), audio_ext=".wav")
    fm.write_tars(mead, "M003", files, prefix)

    run(fm.config(source="local", local_path=str(mead), emotions=["happy"], levels=[3], max_sentences=2))

    rows = fm.manifest()
    assert [r["clip_id"] for r in rows] == ["M003_happy_3_001", "M003_happy_3_002"]
    raw = Path("data/raw")
    for r in rows:
        rel_video = r["video"].removeprefix("M003/")
        assert (raw / r["video"]).read_bytes() == files[rel_video]
        assert r["audio"].endswith(".wav")
    extracted = sorted(p.relative_to(raw).as_posix() for p in (raw / "M003").rglob("*") if p.is_file())
    assert extracted == sorted([r["video"] for r in rows] + [r["audio"] for r in rows])


def test_tar_symlink_pointing_outside_is_refused(workdir, tmp_path):
    mead = tmp_path / "mead"
    video, audio = fm.split(fm.mead_files("M003", emotions=("angry",), sentences=1, cameras=("front",)))
    raw = io.BytesIO(fm.tar_bytes(video))
    buf = io.BytesIO()
    with tarfile.open(fileobj=raw) as src, tarfile.open(fileobj=buf, mode="w") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member))
        link = tarfile.TarInfo("video/front/angry/level_2/001.mp4")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../../../../etc/passwd"
        dst.addfile(link)
    (mead / "M003").mkdir(parents=True)
    (mead / "M003" / "video.tar").write_bytes(buf.getvalue())
    (mead / "M003" / "audio.tar").write_bytes(fm.tar_bytes(audio))

    with pytest.raises(InputError, match=r"M003/video\.tar: .*unsafe member 'video/front/angry/level_2/001\.mp4'"):
        run(fm.config(source="local", local_path=str(mead)))
    fm.assert_nothing_left()


def test_interrupted_run_leaves_no_raw_and_a_rerun_completes(workdir, tmp_path, monkeypatch):
    import emohead.data.sources as sources

    mead = tmp_path / "mead"
    fm.write_tars(mead, "M003", fm.mead_files("M003", emotions=("angry",), sentences=2))
    real_extract, calls = sources.extract_member, []

    def extract_then_interrupt(*args):
        calls.append(args)
        real_extract(*args)
        if len(calls) == 3:
            raise KeyboardInterrupt  # what SIGTERM becomes under emohead.runner

    monkeypatch.setattr(sources, "extract_member", extract_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run(fm.config(source="local", local_path=str(mead)))
    fm.assert_nothing_left()
    assert not Path("metrics/download.json").exists()

    monkeypatch.setattr(sources, "extract_member", real_extract)
    run(fm.config(source="local", local_path=str(mead)))
    assert len(fm.manifest()) == 6


# --- url source -------------------------------------------------------------------------------------------

def test_url_download_continues_a_part_file_left_on_disk(workdir, server):
    fm.serve_actor(server, "W009", emotions=("sad",), sentences=1)
    whole = server.files["/MEAD/W009/audio.tar"]
    part = Path("data/downloads/W009/audio.tar.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(whole[:1234])

    run(fm.url_config(server, actors=["W009"]))

    assert ("/MEAD/W009/audio.tar", "bytes=1234-") in server.requests
    assert Path("data/downloads/W009/audio.tar").read_bytes() == whole
    assert len(fm.manifest()) == 3


def test_url_server_ignoring_range_restarts_from_zero(workdir, server):
    fm.serve_actor(server, "W009", emotions=("sad",), sentences=1)
    server.honour_range = False
    part = Path("data/downloads/W009/video.tar.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"stale bytes from some other file")

    run(fm.url_config(server, actors=["W009"]))

    assert Path("data/downloads/W009/video.tar").read_bytes() == server.files["/MEAD/W009/video.tar"]
    assert len(fm.manifest()) == 3


def test_url_cached_archives_are_not_downloaded_again(workdir, server):
    fm.serve_actor(server, "M003", emotions=("angry",), sentences=1)
    run(fm.url_config(server, actors=["M003"]))
    first = len(server.requests)
    run(fm.url_config(server, actors=["M003"]))
    assert len(server.requests) == first == 2
    assert len(fm.manifest()) == 3


def test_url_missing_file_and_retries_exhausted(workdir, server):
    with pytest.raises(InputError, match=r"/MEAD/M003/video\.tar: HTTP 404"):
        run(fm.url_config(server, actors=["M003"]))
    fm.serve_actor(server, "M003", emotions=("angry",), sentences=1)
    server.drop_after["/MEAD/M003/video.tar"] = 10  # one drop per attempt would need more; retries=1 fails
    with pytest.raises(InputError, match=r"download failed after 1 attempts: connection closed after 10 of"):
        run(fm.url_config(server, actors=["M003"], retries=1))
    fm.assert_nothing_left()


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
        video, audio = fm.split(fm.mead_files(actor, emotions=("fear",), sentences=2))
        drive[f"{actor}/video.tar"], drive[f"{actor}/audio.tar"] = fm.tar_bytes(video), fm.tar_bytes(audio)
    drive["README.txt"] = b"not an archive"
    monkeypatch.setitem(sys.modules, "gdown", _fake_gdown(drive, calls))

    run(fm.config(source="gdrive", gdrive_folder_id="FOLDER", actors=["W009"], levels=[2]))

    assert sorted(calls) == ["W009/audio.tar", "W009/video.tar"]
    assert [r["clip_id"] for r in fm.manifest()] == ["W009_fear_2_001", "W009_fear_2_002"]

    with pytest.raises(InputError, match=r"actor M030 not found; it has M003, W009"):
        run(fm.config(source="gdrive", gdrive_folder_id="FOLDER", actors=["M030"]))


def test_gdrive_without_gdown_says_how_to_install_it(workdir, monkeypatch):
    monkeypatch.setitem(sys.modules, "gdown", None)  # makes `import gdown` raise ImportError
    with pytest.raises(InputError, match=r"pip install gdown"):
        run(fm.config(source="gdrive", gdrive_folder_id="FOLDER"))
    fm.assert_nothing_left()


# --- bad input --------------------------------------------------------------------------------------------

def test_missing_local_folder_is_named_and_stale_raw_is_removed(workdir, tmp_path):
    stale = Path("data/raw/M003")
    stale.mkdir(parents=True)
    Path("data/raw/manifest.csv").write_text("clip_id\n")
    missing = tmp_path / "nowhere"
    with pytest.raises(InputError, match=rf"data.local_path: folder {re.escape(str(missing))} not found"):
        run(fm.config(source="local", local_path=str(missing)))
    fm.assert_nothing_left()


def test_unknown_actor_names_it_and_lists_those_found(workdir, tmp_path):
    mead = tmp_path / "mead"
    fm.write_folder(mead, "M003", fm.mead_files("M003", emotions=("angry",), sentences=1))
    fm.write_tars(mead, "W009", fm.mead_files("W009", emotions=("angry",), sentences=1))
    with pytest.raises(InputError, match=r"actor M099 not found; it has M003, W009"):
        run(fm.config(source="local", local_path=str(mead), actors=["M003", "M099"]))
    fm.assert_nothing_left()


def test_selection_matching_nothing_is_an_error(workdir, tmp_path):
    mead = tmp_path / "mead"
    fm.write_folder(mead, "M003", fm.mead_files("M003", emotions=("angry",), sentences=1))
    with pytest.raises(InputError, match=r"matched no clip"):
        run(fm.config(source="local", local_path=str(mead), emotions=["sad"]))
    fm.assert_nothing_left()


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
        fm.config(**data)
    assert "\n" not in str(caught.value)


def test_unknown_sample_key_is_a_config_error():
    params = fm.params()
    params["sample"] = dict(params["sample"], sentencez=1)
    with pytest.raises(ConfigError, match=r"sample: unknown key 'sentencez'"):
        load_config(params)


# --- sample source ----------------------------------------------------------------------------------------

def test_sample_source_writes_the_selection(workdir):
    params = fm.params(source="sample", actors=["M901"], emotions=["happy"], levels=[1], max_sentences=1)
    params["sample"] = dict(params["sample"], duration_s=0.5, width=128, height=128, workers=1)

    run(load_config(params))

    rows = fm.manifest()
    assert [r["clip_id"] for r in rows] == ["M901_happy_1_001"]
    assert all(Path("data/raw", r[col]).stat().st_size > 0 for r in rows for col in ("video", "audio"))
    assert fm.metrics()["clips"] == 1
