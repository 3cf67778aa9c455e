"""Stage `features` on a tiny resampled folder made from the real clips: schemas, alignment, split, faces."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import soundfile

from emohead.errors import ConfigError, InputError, TooManyFailuresError
from emohead.features import schema
from emohead.features.crops import clip_crop_box, crop_face_image, crop_frames, to_crop_coords
from emohead.features.extract import load_config, run
from emohead.features.landmarks import LandmarkDetector, to_gray
from emohead.features.mfcc import compute_mfcc, expected_mfcc_frames, fit_to_video
from emohead.features.split import assign_split, unit_hash
from emohead.media import ffmpeg_exe, read_frames, write_video

SEGMENT_S = 1.6
# shared clip -> (actor, emotion, has audio); each gives two 2 s clips (sentences 1 and 2)
REAL_CLIPS = {
    "Audio_Source_00373.mp4": ("W001", "happy", True),
    "Pose_Source_00473.mp4": ("M002", "angry", True),
    "Pose_Source_620900105.mp4": ("M003", "neutral", True),
    "styletalk_feifeili_clip1.mp4": ("W004", "sad", True),
    "videoretalking_face2.mp4": ("M005", "fear", True),
    "styletalk_sad_noaudio.mp4": ("M006", "sad", False),  # a silent wav stands in for the missing audio
}


def _ffmpeg(*args: str) -> None:
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args]
    subprocess.run(cmd, check=True, capture_output=True)


def _resample(source: Path, video: Path, audio: Path, start_s: float, has_audio: bool) -> None:
    window = ["-ss", str(start_s), "-t", str(SEGMENT_S)]
    _ffmpeg(*window, "-i", str(source), "-r", "25", "-an", "-c:v", "libx264", "-crf", "18", str(video))
    if has_audio:
        _ffmpeg(*window, "-i", str(source), "-vn", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", str(audio))
    else:
        soundfile.write(audio, np.zeros(int(SEGMENT_S * 16000), np.float32), 16000, subtype="PCM_16")


def _two_faces(shared: Path, video: Path) -> None:
    """A big face (left, 320 px) beside a small one (right, 160 px) in one frame."""
    graph = "[0:v]scale=320:320[a];[1:v]scale=160:160,pad=160:320:0:80[b];[a][b]hstack=inputs=2"
    _ffmpeg(
        "-t", "1.2", "-i", str(shared / "videoretalking_face2.mp4"), "-t", "1.2",
        "-i", str(shared / "Audio_Source_00373.mp4"), "-filter_complex", graph, "-r", "25", str(video),
    )  # fmt: skip


@pytest.fixture(scope="session")
def resampled(shared_clips: Path, tmp_path_factory) -> Path:
    """A repository folder whose data/resampled holds real, two-face, no-face and broken clips."""
    repo = tmp_path_factory.mktemp("repo")
    root = repo / "data" / "resampled"
    (root / "video").mkdir(parents=True)
    (root / "audio").mkdir()
    rows = []

    def add(clip_id: str, video: str, audio: str) -> None:
        actor, emotion, level, sentence = clip_id.rsplit("_", 3)
        rows.append(dict(clip_id=clip_id, actor=actor, emotion=emotion, level=int(level), sentence=int(sentence),
                         video=video, audio=audio, status="ok", reason=""))  # fmt: skip

    for name, (actor, emotion, has_audio) in REAL_CLIPS.items():
        for sentence in (1, 2):
            clip_id = f"{actor}_{emotion}_3_{sentence:03d}"
            video, audio = f"video/{clip_id}.mp4", f"audio/{clip_id}.wav"
            _resample(shared_clips / name, root / video, root / audio, (sentence - 1) * SEGMENT_S, has_audio)
            add(clip_id, video, audio)
    _two_faces(shared_clips, root / "video/M007_happy_3_001.mp4")
    _ffmpeg("-t", "1.2", "-i", str(shared_clips / "Audio_Source_00373.mp4"), "-vn", "-ac", "1", "-ar", "16000",
            str(root / "audio/M007_happy_3_001.wav"))  # fmt: skip
    add("M007_happy_3_001", "video/M007_happy_3_001.mp4", "audio/M007_happy_3_001.wav")

    noise = np.random.default_rng(0).integers(0, 256, (30, 96, 128, 3), dtype=np.uint8)
    write_video(root / "video/M008_sad_3_001.mp4", noise, fps=25)
    soundfile.write(root / "audio/M008_sad_3_001.wav", np.zeros(19200, np.float32), 16000)
    add("M008_sad_3_001", "video/M008_sad_3_001.mp4", "audio/M008_sad_3_001.wav")

    (root / "video/M009_sad_3_001.mp4").write_bytes(b"this is not an mp4 file" * 50)  # unreadable
    soundfile.write(root / "audio/M009_sad_3_001.wav", np.zeros(16000, np.float32), 16000)
    add("M009_sad_3_001", "video/M009_sad_3_001.mp4", "audio/M009_sad_3_001.wav")

    write_video(root / "video/M010_sad_3_001.mp4", noise[:10], fps=25)
    soundfile.write(root / "audio/M010_sad_3_001.wav", np.zeros(0, np.float32), 16000)  # zero-length audio
    add("M010_sad_3_001", "video/M010_sad_3_001.mp4", "audio/M010_sad_3_001.wav")

    manifest = pd.DataFrame(rows)
    manifest["duration_video_s"] = 0.0
    manifest["duration_audio_s"] = 0.0
    failed = dict(manifest.iloc[0]) | {"clip_id": "M002_angry_3_009", "sentence": 9, "status": "failed"}
    pd.concat([manifest, pd.DataFrame([failed])]).to_csv(root / "manifest.csv", index=False)
    return repo


PARAMS = {
    "features": {"crop_size": 128, "workers": 2, "max_skipped_share": 0.3},
    "split": {"strategy": "hash", "test_share": 0.2},
}


@pytest.fixture(scope="module")
def features(resampled: Path) -> Path:
    """Run the stage once for this module's tests (the real entry point, cwd = the tmp repository)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(resampled)
        run(load_config(PARAMS))
    return resampled / "data" / "features"


def _clips(features: Path) -> pd.DataFrame:
    return pd.read_parquet(schema.clips_path(features)).set_index("clip_id")


def test_outputs_match_schema(features: Path) -> None:
    assert pq.read_schema(schema.clips_path(features)).remove_metadata() == schema.CLIP_SCHEMA
    assert pq.read_schema(schema.landmarks_path(features)).remove_metadata() == schema.LANDMARK_SCHEMA
    assert pq.read_schema(schema.mfcc_path(features)).remove_metadata() == schema.mfcc_schema(13)
    clips = _clips(features)
    assert "M002_angry_3_009" not in clips.index  # status failed in the manifest: not processed
    for clip_id, row in clips[clips["status"] == "ok"].iterrows():
        crops = np.load(schema.crop_path(features, clip_id), mmap_mode="r")
        assert crops.dtype == np.uint8 and crops.shape == (row["n_frames"], 128, 128, 3)
    assert not list(features.parent.glob(".features.*")), "temp folder left behind"


def test_mfcc_rows_align_with_video_frames(features: Path) -> None:
    clips = _clips(features)
    ok = clips[clips["status"] == "ok"]
    mfcc = pd.read_parquet(schema.mfcc_path(features))
    landmarks = pd.read_parquet(schema.landmarks_path(features), columns=["clip_id", "frame"])
    for clip_id, row in ok.iterrows():
        n = row["n_frames"]
        assert abs(row["n_mfcc_frames"] - 4 * n) <= 1
        assert (mfcc["clip_id"] == clip_id).sum() == row["n_mfcc_frames"]
        assert (landmarks["clip_id"] == clip_id).sum() == n


@pytest.mark.parametrize("n_frames", [1, 7, 50, 123])
def test_mfcc_gives_four_frames_per_video_frame(n_frames: int) -> None:
    audio = np.random.default_rng(n_frames).normal(0, 0.1, 16000 * 3).astype(np.float32)  # longer: trimmed
    mfcc = compute_mfcc(fit_to_video(audio, 16000, n_frames), 16000, 13)
    assert mfcc.shape == (expected_mfcc_frames(n_frames), 13) and mfcc.dtype == np.float32
    assert abs(len(mfcc) - 4 * n_frames) <= 1
    short = compute_mfcc(fit_to_video(audio[:100], 16000, n_frames), 16000, 13)  # shorter: zero-padded
    assert short.shape == mfcc.shape


def test_real_clips_have_faces_in_nearly_every_frame(features: Path, tmp_path: Path) -> None:
    clips = _clips(features)
    real = clips.loc[[c for c in clips.index if c[:4] in {a for a, _, _ in REAL_CLIPS.values()}]]
    assert (real["status"] == "ok").all(), real["reason"].to_dict()
    detected = (real["detection_rate"] * real["n_frames"]).sum() / real["n_frames"].sum()
    print(f"real clips: {len(real)}, frames {real['n_frames'].sum()}, detection rate {detected:.4f}")
    assert detected >= 0.98
    landmarks = pd.read_parquet(schema.landmarks_path(features))
    sheet = []
    for clip_id in real.index:
        points = schema.landmarks_array(landmarks[landmarks["clip_id"] == clip_id])
        # the face sits inside its crop, with margin, in every frame
        assert points.min() > 0.03 * 128 and points.max() < 0.97 * 128, clip_id
        crops = np.load(schema.crop_path(features, clip_id), mmap_mode="r")
        tiles = []
        for frame in (0, len(crops) // 2, len(crops) - 1):
            tile = np.array(crops[frame])
            for x, y in points[frame]:
                cv2.circle(tile, (round(x), round(y)), 1, (0, 255, 0), -1)
            tiles.append(tile)
        sheet.append(np.hstack(tiles))
    cv2.imwrite(str(tmp_path / "crops_contact_sheet.png"), cv2.cvtColor(np.vstack(sheet), cv2.COLOR_RGB2BGR))
    print(f"contact sheet: {tmp_path / 'crops_contact_sheet.png'}")


def test_no_face_broken_and_empty_clips_are_skipped_with_reasons(features: Path) -> None:
    clips = _clips(features)
    assert clips.at["M008_sad_3_001", "status"] == "skipped"
    assert "face found in 0%" in clips.at["M008_sad_3_001", "reason"]
    assert clips.at["M009_sad_3_001", "status"] == "skipped"
    assert "M009_sad_3_001.mp4: no decodable video frames" in clips.at["M009_sad_3_001", "reason"]
    assert clips.at["M010_sad_3_001", "status"] == "skipped"
    assert "M010_sad_3_001.wav: zero-length audio" in clips.at["M010_sad_3_001", "reason"]
    assert (clips.loc[clips["status"] == "ok", "reason"] == "").all()
    metrics = json.loads((features.parents[1] / "metrics" / "features.json").read_text())
    print("metrics/features.json:", metrics)
    assert metrics["clips_skipped"] == 3 and metrics["clips_ok"] == len(clips) - 3
    assert metrics["silent_audio"] == 2  # the no-audio clip's two segments
    assert metrics["frames"] == clips.loc[clips["status"] == "ok", "n_frames"].sum()


def test_two_faces_take_the_largest_and_count_them(features: Path) -> None:
    row = _clips(features).loc["M007_happy_3_001"]
    assert row["status"] == "ok" and row["faces_max"] == 2
    # the big face fills the left 320 px: the crop box is centred there
    assert row["box_left"] + row["box_size"] / 2 < 320 and row["box_size"] > 150


def test_split_is_per_actor_and_non_empty(features: Path) -> None:
    clips = _clips(features)
    ok = clips[clips["status"] == "ok"]
    assert set(ok["split"]) == {"train", "test"}
    assert (clips.loc[clips["status"] != "ok", "split"] == "").all()
    for actor, rows in ok.groupby("actor"):
        if len(rows) >= 2:
            assert set(rows["split"]) == {"train", "test"}, actor


def test_too_many_skipped_fails_and_writes_nothing(resampled: Path, monkeypatch) -> None:
    repo = resampled.parent / "strict_repo"
    root = repo / "data" / "resampled"
    root.mkdir(parents=True)
    for folder in ("video", "audio"):
        (root / folder).symlink_to(resampled / "data" / "resampled" / folder)
    manifest = pd.read_csv(resampled / "data" / "resampled" / "manifest.csv")
    manifest[manifest["clip_id"].isin(["W001_happy_3_001", "M008_sad_3_001"])].to_csv(root / "manifest.csv")
    monkeypatch.chdir(repo)
    params = {"features": {**PARAMS["features"], "max_skipped_share": 0.4, "workers": 1}, "split": PARAMS["split"]}
    with pytest.raises(TooManyFailuresError, match=r"1 of 2 clips skipped .*M008_sad_3_001: face found in 0%"):
        run(load_config(params))
    assert sorted(p.name for p in (repo / "data").iterdir()) == ["resampled"]  # no features, no temp folder
    assert not (repo / "metrics" / "features.json").exists()


def test_missing_manifest_is_a_clear_input_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=r"data/resampled/manifest.csv: manifest not found"):
        run(load_config(PARAMS))


def test_config_rejects_unknown_keys() -> None:
    with pytest.raises(ConfigError, match="crop_sise"):
        load_config({"features": {"crop_sise": 64}})
    with pytest.raises(ConfigError, match="strategy"):
        load_config({"split": {"strategy": "random"}})
    config = load_config({"features": {"crop_size": 64}, "split": {"strategy": "mead"}})
    assert config.crop_size == 64 and config.split.strategy == "mead"


def _table(ids: list[str]) -> pd.DataFrame:
    keys = [i.rsplit("_", 3) for i in ids]
    return pd.DataFrame({"clip_id": ids, "actor": [k[0] for k in keys], "emotion": [k[1] for k in keys],
                         "level": [int(k[2]) for k in keys], "sentence": [int(k[3]) for k in keys]})  # fmt: skip


def test_hash_split_is_stable_when_clips_are_added() -> None:
    ids = [f"M{a:03d}_{e}_3_{s:03d}" for a in (1, 2) for e in ("angry", "sad") for s in range(1, 31)]
    before = assign_split(_table(ids), "hash", 0.2)
    more = ids + [f"M{a:03d}_happy_3_{s:03d}" for a in (1, 2, 3) for s in range(1, 31)]
    after = assign_split(_table(more), "hash", 0.2)
    assert list(after[: len(ids)]) == list(before)
    assert 0.1 < (after == "test").mean() < 0.3
    assert unit_hash("M001_angry_3_001") == unit_hash("M001_angry_3_001") != unit_hash("M001_angry_3_002")


def test_hash_split_gives_a_small_actor_a_test_clip() -> None:
    ids = ["W001_sad_1_001", "W001_sad_1_002"]
    split = assign_split(_table(ids), "hash", 0.2)
    assert sorted(split) == ["test", "train"]


def test_mead_split_takes_the_last_sentences_of_each_cell() -> None:
    ids = [f"M003_neutral_1_{s:03d}" for s in range(1, 41)] + [f"M003_angry_{lv}_{s:03d}" for lv in (1, 3)
                                                              for s in range(1, 31)]  # fmt: skip
    table = _table(ids)
    split = assign_split(table, "mead")
    test = table[split == "test"]
    assert sorted(test.loc[test["emotion"] == "neutral", "sentence"]) == list(range(31, 41))
    for level in (1, 3):
        cell = test[(test["emotion"] == "angry") & (test["level"] == level)]
        assert sorted(cell["sentence"]) == list(range(25, 31))
    tiny = assign_split(_table(["M003_sad_2_001", "M003_sad_2_002", "M003_sad_2_003"]), "mead")
    assert list(tiny) == ["train", "test", "test"]  # a cell keeps one clip for training


def test_tracking_agrees_with_per_frame_detection(shared_clips: Path) -> None:
    frames = read_frames(shared_clips / "Audio_Source_00373.mp4")[:50]
    detector = LandmarkDetector(detect_max_side=320)
    tracked, detected, faces = detector.track_clip(frames)
    assert detected.all() and faces == 1
    assert detector.detections < 5  # it tracked, not re-detected every frame
    per_frame = np.stack([detector.fit(to_gray(f), detector.detect(f)[0]) for f in frames])
    distance = np.linalg.norm(tracked - per_frame, axis=-1).mean()
    print(f"tracking vs per-frame detection: mean {distance:.3f} px on 224x224 frames")
    assert distance < 2.0


def test_crop_coordinates_follow_the_pixels() -> None:
    frame = np.zeros((200, 300, 3), np.uint8)
    frame[120, 90] = 255  # one bright pixel
    points = np.tile(np.array([[90.0, 120.0]]), (68, 1))
    points[0] = [40, 60]
    points[1] = [140, 160]
    box = clip_crop_box(points[None], margin=0.0)
    assert box == (40, 60, 100)
    crop = crop_frames(frame, box, 50)[0]
    x, y = to_crop_coords(points[2], box, 50)
    brightest = np.unravel_index(crop[..., 0].argmax(), crop.shape[:2])
    assert abs(brightest[1] - x) <= 0.5 and abs(brightest[0] - y) <= 0.5


def test_crop_face_image_on_a_still(shared_clips: Path) -> None:
    image = cv2.cvtColor(cv2.imread(str(shared_clips / "sadtalker_face_happy.png")), cv2.COLOR_BGR2RGB)
    crop, points, faces = crop_face_image(image, 128, 0.25)
    assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8 and faces == 1
    assert points.shape == (68, 2) and points.min() > 0 and points.max() < 128
    with pytest.raises(InputError, match="no face found"):
        crop_face_image(np.full((120, 160, 3), 90, np.uint8), 128, 0.25)
