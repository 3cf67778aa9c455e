"""Where each DVC stage reads and writes (relative to the repository root; mirrors dvc.yaml)."""

from pathlib import Path

RAW = Path("data/raw")
RESAMPLED = Path("data/resampled")
FEATURES = Path("data/features")
EVAL = Path("data/eval")
MODELS = Path("models")
PCA_MODEL = MODELS / "pca.json"
STAGE1_MODEL = MODELS / "stage1.pt"
STAGE2_MODEL = MODELS / "stage2.pt"
METRICS = Path("metrics")
PLOTS = Path("plots")
CHECKPOINTS = Path("data/checkpoints")  # resumable training state, outside DVC outputs
MANIFEST_NAME = "manifest.csv"  # in data/raw and data/resampled: one row per clip
DOWNLOADS = Path("data/downloads")  # download cache: partial files survive a kill and resume
