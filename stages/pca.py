"""DVC stage `pca`: training landmarks -> models/pca.json (PCA used by stage 1's L_pca)."""

from emohead.pca import load_config, run

from emohead.runner import run_stage

if __name__ == "__main__":
    run_stage("pca", load_config, run)
