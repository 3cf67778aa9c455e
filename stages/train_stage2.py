"""DVC stage `train_stage2`: AATU (U-Net + CBAM) -> models/stage2.pt."""

from emohead.train.stage2 import load_config, run

from emohead.runner import run_stage

if __name__ == "__main__":
    run_stage("train_stage2", load_config, run)
