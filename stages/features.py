"""DVC stage `features`: data/resampled -> landmarks, MFCC, face crops, split in data/features."""

from emohead.features.extract import load_config, run
from emohead.runner import run_stage

if __name__ == "__main__":
    run_stage("features", load_config, run)
