"""DVC stage `train_stage1`: MSEF + Audio2Lm -> models/stage1.pt."""

from emohead.runner import run_stage
from emohead.train.stage1 import load_config, run

if __name__ == "__main__":
    run_stage("train_stage1", load_config, run)
