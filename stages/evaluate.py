"""DVC stage `evaluate`: F-LMD, M-LMD, SSIM, PSNR on the test split -> metrics/eval.json."""

from emohead.evaluate import load_config, run
from emohead.runner import run_stage

if __name__ == "__main__":
    run_stage("evaluate", load_config, run)
