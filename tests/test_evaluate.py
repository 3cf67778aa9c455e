"""The evaluate stage on tiny features + tiny untrained models: outputs, keys, finite numbers."""

from __future__ import annotations

import json
import math
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_models import make_models

from emohead import evaluate, paths
from emohead.errors import ConfigError, InputError
from emohead.features import schema
from emohead.media import probe

FEATURE_SIZE = 64  # features' crop size; evaluate resizes to evaluate.crop_size (128)
N_FRAMES = 8


def _face_crop() -> tuple[np.ndarray, np.ndarray]:
    """skimage's astronaut cropped like the features stage does, and its landmarks in crop px."""
    from skimage import data

    from emohead.features.crops import crop_face_image

    crop, landmarks, _ = crop_face_image(data.astronaut(), FEATURE_SIZE, 0.25)
    return crop, landmarks


def _clip_row(clip_id: str, split: str, status: str = "ok") -> dict:
    actor, emotion, level, sentence = clip_id.rsplit("_", 3)
    return {"clip_id": clip_id, "actor": actor, "emotion": emotion, "level": int(level), "sentence": int(sentence),
            "n_frames": N_FRAMES, "n_mfcc_frames": 4 * N_FRAMES + 1, "split": split, "box_left": 0.0,
            "box_top": 0.0, "box_size": 100.0, "detection_rate": 1.0, "faces_max": 1, "status": status,
            "reason": "" if status == "ok" else "no face"}


def write_features(root: Path, clip_ids: list[str], splits: list[str]) -> None:
    """data/features and data/resampled (manifest + wavs) for the given clips, in the documented schemas."""
    crop, landmarks = _face_crop()
    features, resampled = root / paths.FEATURES, root / paths.RESAMPLED
    (features / "crops").mkdir(parents=True)
    resampled.mkdir(parents=True)
    rng = np.random.default_rng(0)
    clips, lm_rows, mfcc_rows, manifest = [], [], [], []
    for clip_id, split in zip(clip_ids, splits, strict=True):
        clips.append(_clip_row(clip_id, split))
        frames = np.repeat(crop[None], N_FRAMES, axis=0)
        np.save(schema.crop_path(features, clip_id), frames)
        for frame in range(N_FRAMES):
            points = landmarks + rng.normal(0, 0.3, landmarks.shape)
            xs = dict(zip(schema.X_COLUMNS, points[:, 0], strict=True))
            ys = dict(zip(schema.Y_COLUMNS, points[:, 1], strict=True))
            lm_rows.append({"clip_id": clip_id, "frame": frame, **xs, **ys, "interpolated": False})
        for k in range(4 * N_FRAMES + 1):
            mfcc_rows.append({"clip_id": clip_id, "mfcc_frame": k,
                              **{f"c{i}": float(v) for i, v in enumerate(rng.normal(0, 20, 13))}})
        with wave.open(str(resampled / f"{clip_id}.wav"), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(16000)
            out.writeframes((rng.normal(0, 3000, 16000 * N_FRAMES // 25)).astype("<i2").tobytes())
        manifest.append({"clip_id": clip_id, "video": f"{clip_id}.mp4", "audio": f"{clip_id}.wav"})
    pd.DataFrame(clips).to_parquet(schema.clips_path(features))
    pd.DataFrame(lm_rows).to_parquet(schema.landmarks_path(features))
    pd.DataFrame(mfcc_rows).to_parquet(schema.mfcc_path(features))
    pd.DataFrame(manifest).to_csv(resampled / paths.MANIFEST_NAME, index=False)


TEST_CLIPS = ["M901_angry_1_001", "M901_happy_2_001", "W902_angry_3_002"]


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    torch.set_num_threads(1)
    write_features(tmp_path, [*TEST_CLIPS, "M901_sad_1_003"], ["test", "test", "test", "train"])
    make_models(tmp_path / "models", FEATURE_SIZE)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_evaluate_writes_metrics_plot_and_videos(workspace):
    config = evaluate.load_config({"evaluate": {"crop_size": 128, "videos": 1, "max_clips": 0}})
    evaluate.run(config)
    result = json.loads((workspace / "metrics/eval.json").read_text())
    for key in ("f_lmd", "m_lmd", "ssim", "psnr", "stage1_f_lmd", "stage1_m_lmd", "emotion_accuracy"):
        assert isinstance(result[key], float) and math.isfinite(result[key]), key
    assert result["clips"] == 3 and result["clips_failed"] == 0  # the train clip is not evaluated
    assert result["frames"] == 3 * N_FRAMES
    assert 0 <= result["frames_skipped"] <= result["frames"]
    assert (result["crop_size"], result["source_crop_size"], result["render_crop_size"]) == (128, 64, 64)
    assert -1 <= result["ssim"] <= 1 and 0 < result["psnr"] <= 100
    assert 0 <= result["emotion_accuracy"] <= 1
    assert set(result["per_emotion"]) == {"angry", "happy"}
    assert result["per_emotion"]["angry"]["clips"] == 2
    assert set(result["per_emotion"]["happy"]) >= {"m_lmd", "f_lmd", "ssim", "psnr", "emotion_accuracy"}
    assert (workspace / "plots/eval_per_emotion.png").read_bytes()[:4] == b"\x89PNG"
    videos = sorted((workspace / "data/eval").glob("*.mp4"))
    assert [v.name for v in videos] == ["M901_angry_1_001.mp4"]  # first clip of the round-robin order
    info = probe(videos[0])
    assert info.has_video and info.has_audio and (info.width, info.height) == (3 * 128, 128)
    per_clip = pd.read_csv(workspace / "data/eval/per_clip.csv")
    assert sorted(per_clip["clip_id"]) == sorted(TEST_CLIPS)


def test_untrained_stage1_scores_its_own_landmark_error(workspace):
    # The tiny stage 1 is untrained; its landmark error against the (jittered) real landmarks is what the
    # stored landmarks say it is: recompute it independently from the Parquet file.
    evaluate.run(evaluate.load_config({"evaluate": {"crop_size": 64, "videos": 0, "max_clips": 1}}))
    result = json.loads((workspace / "metrics/eval.json").read_text())
    assert result["clips"] == 1
    from emohead import inference

    models = inference.load_models(Path("models"))
    rows = pd.read_parquet("data/features/landmarks.parquet")
    real = schema.landmarks_array(rows[rows.clip_id == "M901_angry_1_001"].sort_values("frame"))
    mfcc_rows = pd.read_parquet("data/features/mfcc.parquet")
    mfcc = schema.mfcc_array(mfcc_rows[mfcc_rows.clip_id == "M901_angry_1_001"].sort_values("mfcc_frame"))
    predicted = inference.predict_landmarks(models, mfcc, real[0], N_FRAMES)
    from emohead.metrics import mouth_lmd

    assert result["stage1_m_lmd"] == pytest.approx(mouth_lmd(real, predicted), rel=1e-5)
    assert not list(Path("data/eval").glob("*.mp4"))


def test_models_without_emotion_classifier_report_no_accuracy(workspace):
    make_models(workspace / "models", FEATURE_SIZE, msef=False)
    evaluate.run(evaluate.load_config({"evaluate": {"crop_size": 64, "videos": 0, "max_clips": 1}}))
    result = json.loads((workspace / "metrics/eval.json").read_text())
    assert result["emotion_accuracy"] is None
    assert math.isfinite(result["m_lmd"])


def test_missing_models_name_the_dvc_target(workspace):
    (workspace / "models/stage2.pt").unlink()
    with pytest.raises(InputError, match=r"dvc repro train_stage2"):
        evaluate.run(evaluate.load_config({}))
    assert not (workspace / "metrics/eval.json").exists()


def test_no_test_clips_is_a_clear_error(tmp_path):
    clips = pd.DataFrame([_clip_row("M901_angry_1_001", "train"), _clip_row("M901_sad_1_001", "test", "skipped")])
    with pytest.raises(InputError, match="no test clips"):
        evaluate.select_test_clips(clips, 0)


def test_test_clips_are_taken_round_robin_over_emotions():
    ids = ["M901_angry_1_001", "M901_angry_1_002", "M901_angry_1_003", "M901_happy_1_001", "M901_sad_1_001",
           "M901_sad_1_002"]
    clips = pd.DataFrame([_clip_row(c, "test") for c in ids] + [_clip_row("M901_fear_1_001", "train")])
    chosen = evaluate.select_test_clips(clips, 4)["clip_id"].tolist()
    assert chosen == ["M901_angry_1_001", "M901_happy_1_001", "M901_sad_1_001", "M901_angry_1_002"]
    assert len(evaluate.select_test_clips(clips, 0)) == 6


def test_summary_pools_lmd_per_clip_and_ssim_psnr_per_frame():
    def score(clip_id, emotion, frames, fitted, m_lmd, ssim, predicted):
        return evaluate.ClipScore(clip_id, emotion, frames, fitted, m_lmd, 2 * m_lmd, ssim * frames, 30.0 * frames,
                                  1.0, 2.0, predicted)

    scores = [score("a", "angry", 10, 10, 1.0, 0.5, "angry"), score("b", "happy", 30, 27, 3.0, 0.9, "sad"),
              score("c", "sad", 5, 0, math.nan, 0.1, "sad")]
    summary = evaluate.summarise(scores)
    assert summary["m_lmd"] == pytest.approx(2.0)  # clips a and b; c had no fitted frame
    assert summary["f_lmd"] == pytest.approx(4.0)
    assert summary["ssim"] == pytest.approx((5 + 27 + 0.5) / 45)  # frame-weighted
    assert summary["emotion_accuracy"] == pytest.approx(2 / 3)
    assert summary["frames_skipped"] == 3 + 5


def test_config_refuses_unknown_keys():
    with pytest.raises(ConfigError, match="max_clip"):
        evaluate.load_config({"evaluate": {"max_clip": 3}})
