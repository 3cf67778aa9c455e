"""DVC stage `resample`: data/raw -> 25 fps video + 16 kHz mono wav in data/resampled."""

from emohead.data.resample import load_config, run
from emohead.runner import run_stage

if __name__ == "__main__":
    run_stage("resample", load_config, run)
