"""The paper's networks: MSEF, Audio2Lm (stage 1); CBAM, U-Net translator, VGG-19 perceptual (stage 2)."""
