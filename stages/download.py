"""DVC stage `download`: data.source -> data/raw (MEAD layout) + manifest."""

from emohead.data.download import load_config, run
from emohead.runner import run_stage

if __name__ == "__main__":
    run_stage("download", load_config, run)
