"""DVC stage `evaluate`: F-LMD, M-LMD, SSIM, PSNR and emotion accuracy on the test split.

For every test clip, as in the paper: the reference is the clip's first crop frame (same emotion), stage 1
predicts landmarks from the clip's MFCC and the first frame's landmarks, stage 2 renders every frame, and the
result is compared with the real crops (the metric definitions follow evaluation_eat, see emohead.metrics):
- M-LMD / F-LMD: dlib's 68 points fitted on real and generated frames alike, in one box per clip (the box of
  the clip's mean stored landmarks: dlib's HOG misses faces that fill a small crop, and a per-frame box taken
  from the real landmarks would leak the true mouth opening into the fit of the generated frame).
- stage1_m_lmd / stage1_f_lmd: stage 1's landmarks against the stored real landmarks, no re-detection.
- SSIM / PSNR: uint8 RGB, range 255, averaged over all frames of all clips (evaluation_eat's "total");
  LMDs are averaged over frames, then clips (evaluation_eat's per-video mean).
Outputs: metrics/eval.json, plots/eval_per_emotion.png, data/eval/ (side-by-side videos, per_clip.csv).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from emohead import inference, metrics, paths, plots
from emohead.atomic import atomic_path, remove_stale, write_json
from emohead.config import from_dict
from emohead.data.layout import EMOTIONS
from emohead.errors import InputError
from emohead.features import schema
from emohead.parallel import check_failures, map_clips
from emohead.tracking import stage_run

log = logging.getLogger(__name__)

METRICS_JSON = paths.METRICS / "eval.json"
PLOT_PNG = paths.PLOTS / "eval_per_emotion.png"
METRIC_KEYS = ("f_lmd", "m_lmd", "ssim", "psnr", "stage1_f_lmd", "stage1_m_lmd")


@dataclass(frozen=True)
class EvaluateConfig:
    crop_size: int = 128  # LMD/SSIM/PSNR resolution; crops of another size are resized to it
    videos: int = 4  # side-by-side test videos written to data/eval
    max_clips: int = 0  # test clips evaluated (spread over emotions); 0 = all
    max_failed_share: float = 0.1  # fail the stage when more test clips than this share cannot be evaluated


def load_config(params: dict) -> EvaluateConfig:
    config = from_dict(EvaluateConfig, params.get("evaluate"), "evaluate")
    if config.crop_size < 32:
        raise InputError(f"evaluate.crop_size: {config.crop_size} px is too small for dlib's landmarks (>= 32)")
    return config


@dataclass
class ClipScore:
    """Frame sums of one clip's metrics (means are taken when clips are pooled)."""

    clip_id: str
    emotion: str
    frames: int
    frames_fitted: int  # frames where dlib fitted both the real and the generated face
    m_lmd: float  # mean over fitted frames
    f_lmd: float
    ssim_sum: float
    psnr_sum: float
    stage1_m_lmd: float
    stage1_f_lmd: float
    predicted_emotion: str | None  # None: the stage 1 model has no emotion classifier (model.msef: false)
    side_by_side: np.ndarray | None = field(default=None, repr=False)  # only for clips made into videos

    @property
    def correct(self) -> bool:
        return self.predicted_emotion == self.emotion


def select_test_clips(clips: pd.DataFrame, max_clips: int) -> pd.DataFrame:
    """Test clips with status ok, in round-robin emotion order so any prefix covers the emotions evenly."""
    test = clips[(clips["split"] == "test") & (clips["status"] == "ok")].sort_values("clip_id")
    if test.empty:
        raise InputError(
            f"{schema.clips_path(paths.FEATURES)}: no test clips (split test, status ok); "
            "check split.test_share and the features stage's skipped clips"
        )
    rank = test.groupby("emotion").cumcount()
    order = pd.Series(test["emotion"].map(EMOTIONS.index), index=test.index)
    test = test.assign(_rank=rank, _emotion=order).sort_values(["_rank", "_emotion", "clip_id"])
    test = test.drop(columns=["_rank", "_emotion"]).reset_index(drop=True)
    return test.head(max_clips) if max_clips > 0 else test


def _read_rows(path: Path, clip_ids: list[str], order: str) -> dict[str, pd.DataFrame]:
    if not path.is_file():
        raise InputError(f"{path}: not found; run `dvc repro features`")
    table = pd.read_parquet(path, filters=[("clip_id", "in", clip_ids)])
    return {cid: rows.sort_values(order) for cid, rows in table.groupby("clip_id", sort=False)}


def _fit_all(detector, frames: np.ndarray, box) -> list[np.ndarray | None]:
    """dlib's 68 points per frame inside `box`; None where the fit is unusable (off the image, not finite)."""
    size = frames.shape[1]
    fitted: list[np.ndarray | None] = []
    for frame in frames:
        points = detector.fit(np.ascontiguousarray(frame), box)
        inside = np.isfinite(points).all() and (points >= -0.5 * size).all() and (points <= 1.5 * size).all()
        fitted.append(points if inside else None)
    return fitted


def _side_by_side(real: np.ndarray, fake: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """real | generated | predicted landmarks drawn, one row of three crops per frame."""
    from emohead.rendering import draw_landmarks

    size = real.shape[1]
    drawn = np.stack([draw_landmarks(points, size) for points in landmarks])
    return np.concatenate([real, fake, drawn], axis=2)


@dataclass
class ClipInputs:
    clip_id: str
    emotion: str
    crops: np.ndarray  # (n, S, S, 3) uint8, features' crop size
    landmarks: np.ndarray  # (n, 68, 2) in those crops' px
    mfcc: np.ndarray  # (n_mfcc_frames, n_mfcc) raw


def score_clip(
    clip: ClipInputs, models: inference.Models, detector, crop_size: int, keep_video: bool
) -> ClipScore:
    """Animate one test clip from its own audio and first frame, and score it against the real frames."""
    n = min(len(clip.crops), len(clip.landmarks))
    if n == 0:
        raise InputError(f"{clip.clip_id}: no frames in the features")
    source_size = clip.crops.shape[1]
    real = np.asarray(clip.crops[:n])
    real_points = clip.landmarks[:n]
    # Stage 2 renders at its own size: bring the reference to it, then everything to the evaluation size.
    reference = inference.resize_frames(real[:1], models.crop_size)[0]
    reference_points = inference.resize_landmarks(real_points[0], source_size, models.crop_size)
    predicted, fake = inference.animate(models, clip.mfcc, reference, reference_points, n)
    # model.msef: false (Baseline, w/o MSEF) has no emotion classifier: accuracy is then not defined.
    predicted_emotion = None
    if getattr(models.stage1, "has_emotion_classifier", True):
        predicted_emotion = EMOTIONS[int(np.argmax(models.stage1.predict_emotion(clip.mfcc, n)))]

    real = inference.resize_frames(real, crop_size)
    fake = inference.resize_frames(fake, crop_size)
    real_points = inference.resize_landmarks(real_points, source_size, crop_size)
    predicted = inference.resize_landmarks(predicted, models.crop_size, crop_size)

    from emohead.features.landmarks import landmark_box

    box = landmark_box(real_points.mean(axis=0))
    pairs = [
        (r, f)
        for r, f in zip(_fit_all(detector, real, box), _fit_all(detector, fake, box), strict=True)
        if r is not None and f is not None
    ]
    m_lmd = float(np.mean([metrics.mouth_lmd(r, f) for r, f in pairs])) if pairs else math.nan
    f_lmd = float(np.mean([metrics.face_lmd(r, f) for r, f in pairs])) if pairs else math.nan
    return ClipScore(
        clip_id=clip.clip_id,
        emotion=clip.emotion,
        frames=n,
        frames_fitted=len(pairs),
        m_lmd=m_lmd,
        f_lmd=f_lmd,
        ssim_sum=float(sum(metrics.ssim(r, f) for r, f in zip(real, fake, strict=True))),
        psnr_sum=float(sum(metrics.psnr(r, f) for r, f in zip(real, fake, strict=True))),
        stage1_m_lmd=metrics.mouth_lmd(real_points, predicted),
        stage1_f_lmd=metrics.face_lmd(real_points, predicted),
        predicted_emotion=predicted_emotion,
        side_by_side=_side_by_side(real, fake, predicted) if keep_video else None,
    )


def summarise(scores: list[ClipScore]) -> dict[str, float]:
    """Pool clip scores: LMDs mean over clips (clips with no fitted frame left out), SSIM/PSNR over frames."""
    frames = sum(s.frames for s in scores)
    fitted = [s for s in scores if s.frames_fitted > 0]
    classified = [s for s in scores if s.predicted_emotion is not None]

    def clip_mean(key: str, among: list[ClipScore]) -> float:
        return float(np.mean([getattr(s, key) for s in among])) if among else math.nan

    return {
        "f_lmd": clip_mean("f_lmd", fitted),
        "m_lmd": clip_mean("m_lmd", fitted),
        "ssim": sum(s.ssim_sum for s in scores) / frames if frames else math.nan,
        "psnr": sum(s.psnr_sum for s in scores) / frames if frames else math.nan,
        "stage1_f_lmd": clip_mean("stage1_f_lmd", scores),
        "stage1_m_lmd": clip_mean("stage1_m_lmd", scores),
        "emotion_accuracy": float(np.mean([s.correct for s in classified])) if classified else math.nan,
        "clips": len(scores),
        "frames": frames,
        "frames_skipped": frames - sum(s.frames_fitted for s in scores),
    }


def _load_clip(row, landmarks: dict, mfcc: dict) -> ClipInputs:
    crop_file = schema.crop_path(paths.FEATURES, row.clip_id)
    if not crop_file.is_file():
        raise InputError(f"{crop_file}: crop frames missing")
    if row.clip_id not in landmarks or row.clip_id not in mfcc:
        raise InputError(f"{row.clip_id}: no rows in landmarks.parquet or mfcc.parquet")
    return ClipInputs(
        clip_id=row.clip_id,
        emotion=row.emotion,
        crops=np.load(crop_file, mmap_mode="r"),
        landmarks=schema.landmarks_array(landmarks[row.clip_id]),
        mfcc=schema.mfcc_array(mfcc[row.clip_id]),
    )


def _audio_for(clip_id: str) -> Path | None:
    """The clip's 16 kHz wav from data/resampled (manifest's audio column), or None when absent."""
    manifest = paths.RESAMPLED / paths.MANIFEST_NAME
    if manifest.is_file():
        table = pd.read_csv(manifest, dtype=str)
        rows = table[table["clip_id"] == clip_id]
        if len(rows) and isinstance(rows.iloc[0].get("audio"), str) and rows.iloc[0]["audio"]:
            path = paths.RESAMPLED / rows.iloc[0]["audio"]
            if path.is_file():
                return path
    return None


def _write_videos(scores: list[ClipScore], folder: Path) -> list[Path]:
    from emohead.media import write_video

    written = []
    for score in scores:
        if score.side_by_side is None:
            continue
        audio = _audio_for(score.clip_id)
        if audio is None:
            log.warning("%s: no resampled audio found; its side-by-side video is silent", score.clip_id)
        path = folder / f"{score.clip_id}.mp4"
        write_video(path, score.side_by_side, inference.FPS, audio=audio)
        written.append(path)
    return written


def per_emotion(scores: list[ClipScore]) -> dict[str, dict[str, float]]:
    return {
        emotion: summarise([s for s in scores if s.emotion == emotion])
        for emotion in EMOTIONS
        if any(s.emotion == emotion for s in scores)
    }


def _finite(values: dict) -> dict:
    """JSON has no NaN: metrics nobody could compute become null."""
    return {k: (_finite(v) if isinstance(v, dict) else None if isinstance(v, float) and not math.isfinite(v)
                else v) for k, v in values.items()}


def run(config: EvaluateConfig) -> None:
    remove_stale(METRICS_JSON, PLOT_PNG, paths.EVAL)
    clips_file = schema.clips_path(paths.FEATURES)
    if not clips_file.is_file():
        raise InputError(f"{clips_file}: not found; run `dvc repro features`")
    test = select_test_clips(pd.read_parquet(clips_file), config.max_clips)
    from emohead.train.common import pick_device

    models = inference.load_models(paths.MODELS, device=str(pick_device()))
    from emohead.features.landmarks import LandmarkDetector

    detector = LandmarkDetector()
    ids = list(test["clip_id"])
    landmarks = _read_rows(schema.landmarks_path(paths.FEATURES), ids, "frame")
    mfcc = _read_rows(schema.mfcc_path(paths.FEATURES), ids, "mfcc_frame")
    video_ids = set(ids[: config.videos])  # the round-robin order makes these distinct emotions

    def evaluate_one(row) -> ClipScore:
        clip = _load_clip(row, landmarks, mfcc)
        return score_clip(clip, models, detector, config.crop_size, keep_video=row.clip_id in video_ids)

    with stage_run("evaluate", config) as tracker, atomic_path(paths.EVAL) as out_dir:
        out_dir.mkdir(parents=True)
        outcomes = map_clips(evaluate_one, list(test.itertuples(index=False)), workers=1, desc="evaluate")
        check_failures(outcomes, config.max_failed_share, "test clips", name=lambda row: row.clip_id)
        for outcome in outcomes:
            if not outcome.ok:
                log.warning("skipped %s: %s", outcome.item.clip_id, outcome.error)
        scores = [o.result for o in outcomes if o.ok]
        if not scores:
            raise InputError(f"{clips_file}: none of the {len(outcomes)} test clips could be evaluated")
        source_size = int(np.load(schema.crop_path(paths.FEATURES, scores[0].clip_id), mmap_mode="r").shape[1])
        result = {
            **summarise(scores),
            "clips_failed": sum(not o.ok for o in outcomes),
            "crop_size": config.crop_size,
            "source_crop_size": source_size,  # features' crops; resized to crop_size when they differ
            "render_crop_size": models.crop_size,
            "per_emotion": per_emotion(scores),
        }
        result = _finite(result)
        pd.DataFrame([_clip_row(s) for s in scores]).to_csv(out_dir / "per_clip.csv", index=False)
        videos = _write_videos(scores, out_dir)
        plots.per_emotion_bars(result["per_emotion"], PLOT_PNG)
        write_json(METRICS_JSON, result)
        tracker.metrics(_flat_numbers(result))
        for path in (METRICS_JSON, PLOT_PNG, *videos):
            tracker.artifact(path, folder="evaluate")
    log.info(
        "evaluated %d test clips: F-LMD %s, M-LMD %s, SSIM %s, PSNR %s dB, emotion accuracy %s",
        result["clips"], *(_fmt(result[k]) for k in ("f_lmd", "m_lmd", "ssim", "psnr", "emotion_accuracy")),
    )


def _clip_row(score: ClipScore) -> dict:
    row = {k: v for k, v in asdict(score).items() if k != "side_by_side"}
    row["ssim"] = score.ssim_sum / score.frames
    row["psnr"] = score.psnr_sum / score.frames
    return row


def _flat_numbers(result: dict, prefix: str = "") -> dict[str, float]:
    """{'per_emotion': {'angry': {'m_lmd': x}}} -> {'per_emotion/angry/m_lmd': x}, numbers only."""
    flat: dict[str, float] = {}
    for key, value in result.items():
        if isinstance(value, dict):
            flat.update(_flat_numbers(value, f"{prefix}{key}/"))
        elif isinstance(value, int | float):
            flat[f"{prefix}{key}"] = float(value)
    return flat


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"

