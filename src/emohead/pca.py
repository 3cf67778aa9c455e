"""DVC stage `pca`: the training split's landmarks -> models/pca.json (the basis stage 1's L_pca uses).

Landmarks are normalised to [0, 1] by the crop size and flattened (68, 2) -> 136 as x0, y0, x1, y1, ...
The JSON is portable (no pickle): mean (136), components (k x 136), explained_variance_ratio (k).
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from emohead import paths
from emohead.atomic import write_json, write_text
from emohead.config import from_dict
from emohead.errors import ConfigError, InputError
from emohead.features import schema

log = logging.getLogger(__name__)

N_FEATURES = schema.N_POINTS * 2


@dataclass(frozen=True)
class PcaConfig:
    n_components: int = 16
    crop_size: int = 128  # features.crop_size: landmarks are stored in crop pixels

    def __post_init__(self) -> None:
        if not 1 <= self.n_components <= N_FEATURES:
            raise ConfigError(f"pca.n_components: must be 1..{N_FEATURES}, got {self.n_components}")
        if self.crop_size < 1:
            raise ConfigError(f"features.crop_size: must be positive, got {self.crop_size}")


def load_config(params: dict) -> PcaConfig:
    section = dict(params.get("pca") or {})
    if "crop_size" in section:
        raise ConfigError("pca.crop_size: set features.crop_size instead (the landmarks' frame)")
    section["crop_size"] = (params.get("features") or {}).get("crop_size", PcaConfig.crop_size)
    return from_dict(PcaConfig, section, "pca")


class PcaModel:
    """A fitted landmark PCA: project (..., 68, 2) normalised landmarks to (..., k) and back."""

    def __init__(
        self, mean: np.ndarray, components: np.ndarray, explained_variance_ratio: np.ndarray, crop_size: int
    ):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(N_FEATURES)
        self.components = np.asarray(components, dtype=np.float32).reshape(-1, N_FEATURES)
        self.explained_variance_ratio = np.asarray(explained_variance_ratio, dtype=np.float32)
        self.crop_size = int(crop_size)

    @property
    def n_components(self) -> int:
        return self.components.shape[0]

    def project(self, landmarks: np.ndarray) -> np.ndarray:
        """Normalised landmarks (..., 68, 2) -> PCA coefficients (..., k)."""
        flat = np.asarray(landmarks, dtype=np.float32).reshape(*np.shape(landmarks)[:-2], N_FEATURES)
        return (flat - self.mean) @ self.components.T

    def reconstruct(self, coefficients: np.ndarray) -> np.ndarray:
        """PCA coefficients (..., k) -> normalised landmarks (..., 68, 2)."""
        flat = np.asarray(coefficients, dtype=np.float32) @ self.components + self.mean
        return flat.reshape(*flat.shape[:-1], schema.N_POINTS, 2)

    def to_dict(self) -> dict:
        return {
            "n_components": self.n_components,
            "crop_size": self.crop_size,
            "layout": "landmarks / crop_size, flattened x0, y0, x1, y1, ..., x67, y67",
            "mean": self.mean.tolist(),
            "components": self.components.tolist(),
            "explained_variance_ratio": self.explained_variance_ratio.tolist(),
        }

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path = paths.PCA_MODEL) -> PcaModel:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: PCA model not found (run the pca stage)")
        try:
            data = json.loads(path.read_text())
            return cls(data["mean"], data["components"], data["explained_variance_ratio"], data["crop_size"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}: not a PCA model written by the pca stage ({exc!r})") from None


def normalised_landmarks(landmarks_in_crop: np.ndarray, crop_size: int) -> np.ndarray:
    """Crop-pixel landmarks -> [0, 1] (what the PCA is fitted on)."""
    return np.asarray(landmarks_in_crop, dtype=np.float32) / float(crop_size)


def training_landmarks(features_root: Path, crop_size: int) -> np.ndarray:
    """Normalised landmarks (n, 68, 2) of every frame of the training split's ok clips."""
    clips_file, landmarks_file = schema.clips_path(features_root), schema.landmarks_path(features_root)
    for path in (clips_file, landmarks_file):
        if not path.is_file():
            raise InputError(f"{path}: not found (run the features stage first)")
    clips = pd.read_parquet(clips_file, columns=["clip_id", "split", "status"])
    train_ids = clips.loc[(clips["split"] == "train") & (clips["status"] == "ok"), "clip_id"]
    rows = pd.read_parquet(landmarks_file)
    rows = rows[rows["clip_id"].isin(set(train_ids))]
    return normalised_landmarks(schema.landmarks_array(rows), crop_size)


def fit_pca(landmarks: np.ndarray, n_components: int, crop_size: int, source: str = "landmarks") -> PcaModel:
    from sklearn.decomposition import PCA

    if len(landmarks) < n_components:
        raise InputError(
            f"{source}: {len(landmarks)} training frames, fewer than pca.n_components={n_components}; "
            "add clips or lower pca.n_components"
        )
    flat = landmarks.reshape(len(landmarks), N_FEATURES).astype(np.float64)
    pca = PCA(n_components=n_components, svd_solver="full").fit(flat)
    return PcaModel(pca.mean_, pca.components_, pca.explained_variance_ratio_, crop_size)


def _plot_png(model: PcaModel, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cumulative = np.cumsum(model.explained_variance_ratio)
    components = np.arange(1, model.n_components + 1)
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    ax.bar(components, model.explained_variance_ratio, label="per component")
    ax.plot(components, cumulative, "o-", color="C1", label="cumulative")
    ax.set(xlabel="component", ylabel="explained variance ratio", ylim=(0, 1.02), title="Landmark PCA")
    ax.legend(loc="center right")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def run(config: PcaConfig) -> None:
    from emohead.tracking import stage_run

    landmarks = training_landmarks(paths.FEATURES, config.crop_size)
    with stage_run("pca", config) as tracker:
        model = fit_pca(landmarks, config.n_components, config.crop_size, source=str(paths.FEATURES))
        model.save(paths.PCA_MODEL)
        ratios = model.explained_variance_ratio.astype(float)
        cumulative = np.cumsum(ratios)
        metrics = {
            "train_frames": len(landmarks),
            "n_components": model.n_components,
            "explained_variance_total": float(cumulative[-1]),
            "explained_variance_first": float(ratios[0]),
            "explained_variance_per_component": {str(i + 1): float(r) for i, r in enumerate(ratios)},
        }
        write_json(paths.METRICS / "pca.json", metrics)
        table = pd.DataFrame(
            {
                "component": np.arange(1, len(ratios) + 1),
                "explained_variance_ratio": ratios,
                "cumulative_explained_variance": cumulative,
            }
        )
        write_text(paths.PLOTS / "pca.csv", table.to_csv(index=False))
        tracker.metrics({k: v for k, v in metrics.items() if not isinstance(v, dict)})
        for i, (ratio, total) in enumerate(zip(ratios, cumulative, strict=True)):
            tracker.metrics(
                {"explained_variance_ratio": ratio, "cumulative_explained_variance": total}, step=i + 1
            )
        with tempfile.TemporaryDirectory() as tmp:  # the PNG lives in MLflow only, not in the repo
            png = Path(tmp) / "pca_explained_variance.png"
            _plot_png(model, png)
            tracker.artifact(png)
        tracker.artifact(paths.PCA_MODEL)
    log.info(
        "pca: %d components keep %.2f%% of the variance of %d training frames",
        model.n_components,
        100 * cumulative[-1],
        len(landmarks),
    )
