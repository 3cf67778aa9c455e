"""The bad-input matrix (issue "Reliability"): one row per case, each asserting the exact outcome a user sees:
a one-line error naming the input and what to do, or a counted skip with its reason recorded.

README's "What happens when..." table is built from these rows. One parametrised test per stage, in pipeline
order: resample (media files), features (faces), generate (images), download (archives), config (params),
training (splits, models, NaN). Each row id is the case's name in the issue.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import fake_mead as fm
import numpy as np
import pytest
import soundfile
import torch
from test_stage1 import tiny_params as stage1_params
from test_stage1 import write_features as stage1_features
from test_stage2 import _tiny_params as stage2_params
from test_stage2 import write_features as stage2_features
from tiny_models import make_models

from emohead.config import read_params
from emohead.data import download
from emohead.data.resample import ClipFiles, ResampleConfig, resample_clip
from emohead.errors import ConfigError, InputError, TrainingDivergedError
from emohead.features.landmarks import LandmarkDetector
from emohead.generate import MAX_IMAGE_SIDE, generate, read_image
from emohead.media import ffmpeg_exe, probe, read_frames, write_video
from emohead.rendering import Stage2Renderer
from emohead.train import stage1, stage2

REPO = Path(__file__).resolve().parents[1]


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", *args], check=True)


def video(path: Path, seconds: float = 1.0, fps: int = 30, vfr: bool = False) -> Path:
    extra = ["-vf", r"select='not(mod(n\,3))'", "-fps_mode", "vfr"] if vfr else []
    _ffmpeg("-f", "lavfi", "-i", f"testsrc=size=96x64:rate={fps}:duration={seconds}", *extra, "-c:v", "libx264",
            str(path))
    return path


def audio(path: Path, seconds: float = 1.0, rate: int = 48000, channels: int = 2, silent: bool = False) -> Path:
    source = f"anullsrc=r={rate}:cl={'stereo' if channels == 2 else 'mono'}" if silent else (
        f"sine=frequency=300:sample_rate={rate}")
    _ffmpeg("-f", "lavfi", "-t", str(seconds), "-i", source, "-ac", str(channels), "-ar", str(rate), str(path))
    return path


@dataclass(frozen=True)
class Case:
    name: str
    make: callable  # (folder) -> (video, audio)
    error: str | None  # regex the one-line error must match; None = converts
    check: callable = None  # (result, out_dir) -> None


def truncated(folder: Path):
    v = video(folder / "clip.mp4")
    v.write_bytes(v.read_bytes()[:400])
    return v, audio(folder / "a.wav")


def no_audio_stream(folder: Path):
    v = video(folder / "clip.mp4")
    return v, v


def audio_without_video(folder: Path):
    a = audio(folder / "speech.m4a")
    return a, a


def zero_length(folder: Path):
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    return empty, audio(folder / "a.wav")


def _rate(rate: int, channels: int):
    def make(folder: Path):
        return video(folder / "clip.mp4"), audio(folder / "a.wav", rate=rate, channels=channels)

    return make


def _is_16k_mono(result: dict, out: Path) -> None:
    info = probe(out / result["audio"])
    assert (info.sample_rate_hz, info.channels) == (16000, 1)


def mismatched(folder: Path):
    return video(folder / "clip.mp4", seconds=1.0), audio(folder / "a.wav", seconds=2.5)


def _flags_mismatch(result: dict, out: Path) -> None:
    assert result["av_mismatch"] and result["duration_audio_s"] - result["duration_video_s"] > 1.0


def variable_frame_rate(folder: Path):
    return video(folder / "clip.mp4", seconds=2.0, vfr=True), audio(folder / "a.wav", seconds=2.0)


def _constant_25(result: dict, out: Path) -> None:
    info = probe(out / result["video"])
    assert info.fps == 25
    import cv2

    frames = int(cv2.VideoCapture(str(out / result["video"])).get(cv2.CAP_PROP_FRAME_COUNT))
    assert abs(frames - 50) <= 2, frames


def silent(folder: Path):
    return video(folder / "clip.mp4"), audio(folder / "a.wav", silent=True)


def odd_path(folder: Path):
    weird = folder / "dossier été" / "clip ✓"
    weird.mkdir(parents=True)
    return video(weird / "vidéo 1.mp4"), audio(weird / "son 1.m4a")


CASES = [
    Case("truncated mp4", truncated, r"clip\.mp4: (has no video stream|not a readable|cannot decode)"),
    Case("mp4 with no audio stream", no_audio_stream, r"clip\.mp4: has no audio stream"),
    Case("audio with no video", audio_without_video, r"speech\.m4a: has no video stream"),
    Case("zero-length clip", zero_length, r"empty\.mp4: (not a readable|has no video|no video frames)"),
    Case("8 kHz mono input", _rate(8000, 1), None, _is_16k_mono),
    Case("44.1 kHz stereo input", _rate(44100, 2), None, _is_16k_mono),
    Case("audio/video lengths differ > 1 s", mismatched, None, _flags_mismatch),
    Case("variable frame rate video", variable_frame_rate, None, _constant_25),
    Case("silent audio", silent, None, _is_16k_mono),
    Case("non-ASCII path with spaces", odd_path, None, _is_16k_mono),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_resample_matrix(case: Case, tmp_path: Path):
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    out.mkdir()
    video_path, audio_path = case.make(source)
    clip = ClipFiles("M001_happy_1_001", video_path, audio_path, out)
    if case.error:
        with pytest.raises(InputError, match=case.error) as info:
            resample_clip(clip, ResampleConfig())
        assert "\n" not in str(info.value)
    else:
        result = resample_clip(clip, ResampleConfig())
        case.check(result, out)


# --- the other stages: each row is a function (tmp_path, fixture) -> None; `fixture(name)` fetches a pytest
# fixture only for the rows that need it (so a row without real clips never skips for lack of them).

Row = Callable[[Path, Callable[[str], object]], None]


def rows(cases: dict[str, Row]) -> list:
    """pytest params whose ids are the case names."""
    return [pytest.param(row, id=name) for name, row in cases.items()]


# --- features: a clip's faces (process_clip's per-clip outcome is what the stage counts and records) ---------


def _features_config():
    from emohead.features.extract import load_config

    return load_config({"features": {"crop_size": 64}})


def _process(folder: Path, video_path: Path, seconds: float):
    from emohead.features.extract import ClipTask, process_clip

    wav = folder / "speech.wav"
    soundfile.write(wav, np.zeros(int(seconds * 16000), np.float32), 16000)
    (folder / "crops").mkdir(exist_ok=True)
    return process_clip(ClipTask("M001_sad_3_001", video_path, wav), _features_config(), folder / "crops")


def no_face(tmp_path: Path, fixture) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (30, 96, 128, 3), dtype=np.uint8)
    write_video(tmp_path / "noise.mp4", noise, fps=25)
    result = _process(tmp_path, tmp_path / "noise.mp4", 1.2)
    assert (result.status, result.faces_max) == ("skipped", 0)
    assert result.reason == "face found in 0% of frames (min_detection_rate 50%)"


def two_faces(tmp_path: Path, fixture) -> None:
    """A big face (left, 320 px) beside a small one (right, 160 px) in one frame."""
    shared = fixture("shared_clips")
    graph = "[0:v]scale=320:320[a];[1:v]scale=160:160,pad=160:320:0:80[b];[a][b]hstack=inputs=2"
    pair = tmp_path / "two.mp4"
    _ffmpeg("-t", "1.2", "-i", str(shared / "videoretalking_face2.mp4"), "-t", "1.2",
            "-i", str(shared / "Audio_Source_00373.mp4"), "-filter_complex", graph, "-r", "25", str(pair))
    result = _process(tmp_path, pair, 1.2)
    assert result.status == "ok" and result.faces_max == 2  # counted as clips_multiple_faces by the stage
    left, top, size = result.box
    assert left + size / 2 < 320 and size > 150  # the big face on the left is the one cropped


def face_turned_away_for_a_few_frames(tmp_path: Path, fixture) -> None:
    frames = read_frames(fixture("shared_clips") / "Audio_Source_00373.mp4")[:20].copy()
    frames[8:12] = 128  # four grey frames: no face
    landmarks, detected, _ = LandmarkDetector().track_clip(frames)
    assert list(np.flatnonzero(~detected)) == [8, 9, 10, 11]  # flagged (landmarks.parquet `interpolated`)
    expected = landmarks[7] + (landmarks[12] - landmarks[7]) * (2 / 5)  # frame 9 between frames 7 and 12
    np.testing.assert_allclose(landmarks[9], expected, atol=1e-3)


@pytest.mark.parametrize("row", rows({
    "a frame with no face": no_face,
    "two faces": two_faces,
    "a face turned away for a few frames": face_turned_away_for_a_few_frames,
}))
def test_features_matrix(row: Row, tmp_path: Path, request) -> None:
    row(tmp_path, request.getfixturevalue)


# --- generate: the still image ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    return make_models(tmp_path_factory.mktemp("models"), 64)


def _speech(folder: Path) -> Path:
    path = folder / "speech.wav"
    soundfile.write(path, np.random.default_rng(0).normal(0, 0.1, 16000).clip(-1, 1), 16000, subtype="PCM_16")
    return path


def _generate_error(tmp_path: Path, models: Path, image: Path) -> str:
    with pytest.raises(InputError) as info:
        generate(_speech(tmp_path), image, tmp_path / "out.mp4", models_dir=models)
    assert not (tmp_path / "out.mp4").exists()
    message = str(info.value)
    assert "\n" not in message
    return message


def huge_image(tmp_path: Path, fixture) -> None:
    huge = tmp_path / "huge.png"
    cv2.imwrite(str(huge), np.zeros((8000, 8000, 3), np.uint8))
    image = read_image(huge)
    assert image.shape[:2] == (MAX_IMAGE_SIDE, MAX_IMAGE_SIDE)  # downscaled before detection
    wide = tmp_path / "wide.png"
    cv2.imwrite(str(wide), np.zeros((3000, 4000, 3), np.uint8))
    assert read_image(wide).shape[:2] == (1536, 2048)  # aspect ratio kept


def tiny_image(tmp_path: Path, fixture) -> None:
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.full((32, 32, 3), 128, np.uint8))
    message = _generate_error(tmp_path, fixture("models"), tiny)
    assert str(tiny) in message and "32x32" in message and "too small" in message


def non_image_file(tmp_path: Path, fixture) -> None:
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is text, not a picture")
    message = _generate_error(tmp_path, fixture("models"), not_image)
    assert message == f"{not_image}: not a readable image (PNG, JPEG, ... expected)"


@pytest.mark.parametrize("row", rows({
    "a huge image (8000x8000)": huge_image,
    "a tiny one (32x32)": tiny_image,
    "a non-image file given as the image": non_image_file,
}))
def test_generate_matrix(row: Row, tmp_path: Path, request) -> None:
    row(tmp_path, request.getfixturevalue)


# --- download: MEAD archives (tiny fake MEAD from tests/fake_mead.py) ---------------------------------------


def tar_member_escaping(tmp_path: Path, fixture) -> None:
    fixture("workdir")
    mead = tmp_path / "mead"
    files = fm.mead_files("M003", emotions=("angry",), sentences=1, cameras=("front",))
    video, audio = fm.split(files)
    video["../evil.mp4"] = b"gotcha"
    (mead / "M003").mkdir(parents=True)
    (mead / "M003" / "video.tar").write_bytes(fm.tar_bytes(video))
    (mead / "M003" / "audio.tar").write_bytes(fm.tar_bytes(audio))

    with pytest.raises(InputError, match=r"M003/video\.tar: .*unsafe member '\.\./evil\.mp4'"):
        download.run(fm.config(source="local", local_path=str(mead)))
    assert not list(tmp_path.rglob("evil.mp4"))
    fm.assert_nothing_left()


def tar_truncated(tmp_path: Path, fixture) -> None:
    fixture("workdir")
    for cut in ("mid_file", "member_boundary"):
        mead = tmp_path / f"mead_{cut}"
        files = fm.mead_files("M019", emotions=("angry",), sentences=2, cameras=("front",))
        video, audio = fm.split(files)
        whole = fm.tar_bytes(video)
        # Each member here is one 512-byte header plus its data padded to 512 bytes.
        member_bytes = 512 + -(-len(next(iter(video.values()))) // 512) * 512
        keep = member_bytes * 2 + (700 if cut == "mid_file" else 0)
        (mead / "M019").mkdir(parents=True)
        (mead / "M019" / "video.tar").write_bytes(whole[:keep])
        (mead / "M019" / "audio.tar").write_bytes(fm.tar_bytes(audio))

        with pytest.raises(InputError) as caught:
            download.run(fm.config(source="local", local_path=str(mead)))
        message = str(caught.value)
        assert "M019/video.tar" in message and "corrupt or truncated" in message, cut
        assert "\n" not in message
        fm.assert_nothing_left()


def download_interrupted_and_resumed(tmp_path: Path, fixture) -> None:
    fixture("workdir")
    server = fixture("server")
    files = fm.serve_actor(server, "M003", emotions=("angry",), sentences=2)
    server.drop_after["/MEAD/M003/video.tar"] = 3000

    download.run(fm.url_config(server, actors=["M003"], levels=[1]))

    video_requests = [r for p, r in server.requests if p == "/MEAD/M003/video.tar"]
    assert video_requests == [None, "bytes=3000-"]
    cached = Path("data/downloads/M003/video.tar")
    assert cached.read_bytes() == server.files["/MEAD/M003/video.tar"]
    assert not Path("data/downloads/M003/video.tar.part").exists()
    manifest = fm.manifest()
    assert [r["clip_id"] for r in manifest] == ["M003_angry_1_001", "M003_angry_1_002"]
    assert Path("data/raw", manifest[1]["video"]).read_bytes() == files["video/front/angry/level_1/002.mp4"]


def wrong_checksum(tmp_path: Path, fixture) -> None:
    fixture("workdir")
    server = fixture("server")
    fm.serve_actor(server, "M003", emotions=("angry",), sentences=1)
    good = hashlib.sha256(server.files["/MEAD/M003/video.tar"]).hexdigest()
    got = hashlib.sha256(server.files["/MEAD/M003/audio.tar"]).hexdigest()
    wrong = "0" * 64
    config = fm.url_config(server, actors=["M003"], sha256={"M003/video.tar": good, "M003/audio.tar": wrong})

    with pytest.raises(InputError) as caught:
        download.run(config)
    message = str(caught.value)
    assert "audio.tar" in message and f"expected {wrong}" in message and f"got {got}" in message
    assert not Path("data/downloads/M003/audio.tar").exists()
    assert not Path("data/downloads/M003/audio.tar.part").exists()
    assert Path("data/downloads/M003/video.tar").is_file()  # the good one stays cached
    fm.assert_nothing_left()


@pytest.mark.parametrize("row", rows({
    "a MEAD tar with a member escaping the target folder": tar_member_escaping,
    "a tar truncated mid-member": tar_truncated,
    "a download interrupted and resumed": download_interrupted_and_resumed,
    "a wrong checksum": wrong_checksum,
}))
def test_download_matrix(row: Row, tmp_path: Path, request) -> None:
    row(tmp_path, request.getfixturevalue)


# --- config: params.yaml and `-S key=value` overrides -----------------------------------------------------


def _stage1_params(**loss) -> dict:
    params = read_params(REPO / "params.yaml")
    return {**params, "loss": {**params["loss"], **loss}}


def unknown_params_key(tmp_path: Path, fixture) -> None:
    params = _stage1_params()
    params["loss"] = {"gama": 10}
    with pytest.raises(ConfigError) as info:
        stage1.load_config(params)
    assert str(info.value).startswith("loss: unknown key 'gama'; valid keys: ")
    assert "gamma" in str(info.value)


def wrong_type(tmp_path: Path, fixture) -> None:
    with pytest.raises(ConfigError) as info:
        stage1.load_config(_stage1_params(gamma="abc"))  # what `dvc exp run -S loss.gamma=abc` writes
    assert str(info.value) == "loss.gamma: expected a number, got 'abc'"


@pytest.mark.parametrize("row", rows({
    "an unknown params key": unknown_params_key,
    "a wrong type (-S loss.gamma=abc)": wrong_type,
}))
def test_config_matrix(row: Row, tmp_path: Path, request) -> None:
    row(tmp_path, request.getfixturevalue)


# --- training and models ----------------------------------------------------------------------------------


def empty_test_split(tmp_path: Path, fixture) -> None:
    torch.set_num_threads(1)
    stage1_features(tmp_path, sentences=1, emotions=("angry",), test_sentence=5)
    fixture("monkeypatch").chdir(tmp_path)
    with pytest.raises(InputError, match="no usable clips in the test split"):
        stage1.run(stage1.load_config(stage1_params()))


def missing_model_files(tmp_path: Path, fixture) -> None:
    with pytest.raises(InputError, match=r"stage1\.pt.*dvc repro train_stage1"):
        stage1.Stage1Predictor.load(tmp_path / "models" / "stage1.pt")
    with pytest.raises(InputError, match=r"stage2\.pt.*dvc repro train_stage2"):
        Stage2Renderer.load(tmp_path / "models" / "stage2.pt")
    empty = tmp_path / "models"
    empty.mkdir()
    shared = fixture("shared_clips")
    with pytest.raises(InputError) as info:
        generate(shared / "sadtalker_speech.wav", shared / "sadtalker_face_happy.png", tmp_path / "out.mp4",
                 models_dir=empty)
    message = str(info.value)
    assert "\n" not in message and "stage1.pt" in message and "stage2.pt" in message
    assert "dvc repro train_stage1 train_stage2" in message


def nan_in_training(tmp_path: Path, fixture) -> None:
    torch.set_num_threads(1)
    monkeypatch = fixture("monkeypatch")
    monkeypatch.chdir(tmp_path)
    stage2_features(tmp_path / "data" / "features", size=32)
    original = stage2.Trainer.losses

    def nan_at_step_five(self, generated, real):
        losses = original(self, generated, real)
        return losses | {"l1": losses["l1"] * float("nan")} if self.step == 4 else losses

    monkeypatch.setattr(stage2.Trainer, "losses", nan_at_step_five)
    with pytest.raises(TrainingDivergedError, match=r"step 5.*l1=nan.*checkpoints/stage2\.pt"):
        stage2.run(stage2.load_config(stage2_params()))
    assert stage2.CHECKPOINT.exists() and not Path("models/stage2.pt").exists()  # last good checkpoint kept


@pytest.mark.parametrize("row", rows({
    "an empty test split": empty_test_split,
    "missing model files": missing_model_files,
    "a NaN appearing in training": nan_in_training,
}))
def test_training_matrix(row: Row, tmp_path: Path, request) -> None:
    row(tmp_path, request.getfixturevalue)
