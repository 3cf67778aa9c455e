"""Stage 2 (AATU): CBAM, U-Net translator, landmark sketches, VGG-19 loading, a tiny real training run."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from emohead.errors import InputError
from emohead.features import schema
from emohead.models.cbam import CBAM
from emohead.models.unet import AATU, TranslatorSpec
from emohead.models.vgg import CLASSIFIER_KEYS, VGG19Features, load_vgg19
from emohead.rendering import JAW_RGB, LIP_RGB, Stage2Renderer, draw_landmarks
from emohead.train import stage2

REPO = Path(__file__).resolve().parents[1]


def template_landmarks(opening: float) -> np.ndarray:
    """68 points in unit coordinates (0..1) of a frontal face; `opening` in [0, 1] parts the lips."""
    t = np.linspace(np.pi * 0.05, np.pi * 0.95, 17)
    jaw = np.stack([0.5 - 0.38 * np.cos(t), 0.45 + 0.45 * np.sin(t) * 0.9], axis=1)
    brow_l = np.stack([np.linspace(0.22, 0.42, 5), 0.33 - 0.03 * np.sin(np.linspace(0, np.pi, 5))], axis=1)
    brow_r = brow_l * [-1, 1] + [1, 0]
    nose = np.concatenate(
        [
            np.stack([np.full(4, 0.5), np.linspace(0.42, 0.58, 4)], 1),
            np.stack([np.linspace(0.44, 0.56, 5), np.full(5, 0.62)], 1),
        ]
    )
    a = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    eye_l = np.stack([0.34 + 0.06 * np.cos(a), 0.42 + 0.02 * np.sin(a)], axis=1)
    eye_r = eye_l * [-1, 1] + [1, 0]
    b = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    outer = np.stack([0.5 + 0.14 * np.cos(b), 0.75 + (0.03 + 0.07 * opening) * np.sin(b)], axis=1)
    c = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    inner = np.stack([0.5 + 0.10 * np.cos(c), 0.75 + (0.005 + 0.06 * opening) * np.sin(c)], axis=1)
    return np.concatenate([jaw, brow_l, brow_r, nose, eye_l, eye_r, outer, inner]).astype(np.float32)


def face_image(points: np.ndarray, size: int, tint: int) -> np.ndarray:
    """A face drawn from its landmarks (pixels): skin, eyes, a dark mouth as open as the inner lip."""
    image = np.full((size, size, 3), (90, 120, 160), np.uint8)
    cv2.fillPoly(image, [np.round(points[0:17]).astype(np.int32)], (230, 190 - tint, 150), cv2.LINE_AA)
    cv2.ellipse(
        image,
        (size // 2, int(size * 0.45)),
        (int(size * 0.38), int(size * 0.4)),
        0,
        180,
        360,
        (230, 190 - tint, 150),
        -1,
    )
    for eye in (points[36:42], points[42:48]):
        cv2.fillPoly(image, [np.round(eye).astype(np.int32)], (40, 40, 40))
    cv2.fillPoly(image, [np.round(points[48:60]).astype(np.int32)], (180, 60, 70))
    cv2.fillPoly(image, [np.round(points[60:68]).astype(np.int32)], (20, 10, 10))
    return image


def write_features(
    root: Path, size: int = 32, clips_per_split: tuple[int, int] = (4, 2), frames: int = 8
) -> Path:
    """data/features with clips.parquet, landmarks.parquet and crops/*.npy of drawn faces."""
    rng = np.random.default_rng(0)
    (root / "crops").mkdir(parents=True, exist_ok=True)
    clip_rows, mark_rows = [], []
    splits = ["train"] * clips_per_split[0] + ["test"] * clips_per_split[1]
    for index, split in enumerate(splits):
        actor = "M001" if index % 2 == 0 else "W002"
        emotion = "happy" if index % 3 else "sad"
        clip_id = f"{actor}_{emotion}_1_{index:03d}"
        openings = 0.5 + 0.5 * np.sin(np.linspace(0, 2 * np.pi, frames) + index)
        crops = []
        for f, opening in enumerate(openings):
            points = template_landmarks(opening) * (size - 1) + rng.normal(0, 0.2, (68, 2))
            crops.append(face_image(points, size, tint=20 * (index % 2)))
            mark_rows.append(
                {"clip_id": clip_id, "frame": f, "interpolated": False}
                | {f"x{i}": float(points[i, 0]) for i in range(68)}
                | {f"y{i}": float(points[i, 1]) for i in range(68)}
            )
        np.save(root / "crops" / f"{clip_id}.npy", np.stack(crops))
        clip_rows.append(
            {
                "clip_id": clip_id,
                "actor": actor,
                "emotion": emotion,
                "level": 1,
                "sentence": index,
                "n_frames": frames,
                "split": split,
                "status": "ok",
                "reason": "",
            }
        )
    pd.DataFrame(clip_rows).to_parquet(schema.clips_path(root))
    pd.DataFrame(mark_rows).to_parquet(schema.landmarks_path(root))
    return root


# --- CBAM ---


@pytest.mark.parametrize("channels", [3, 8, 64])
def test_cbam_keeps_shape_and_gates_lie_in_open_unit_interval(channels):
    torch.manual_seed(0)
    cbam = CBAM(channels).eval()
    x = torch.randn(2, channels, 9, 11) * 5
    assert cbam(x).shape == x.shape
    assert cbam.channel.mlp[0].out_features == max(1, channels // 16)
    channel_gate = cbam.channel.gate(x)
    spatial_gate = cbam.spatial.gate(cbam.channel(x))
    assert channel_gate.shape == (2, channels, 1, 1) and spatial_gate.shape == (2, 1, 9, 11)
    for gate in (channel_gate, spatial_gate):
        assert torch.all(gate > 0) and torch.all(gate < 1)
    # sequential, channel first: the output is x scaled by both gates
    torch.testing.assert_close(cbam(x), x * channel_gate * spatial_gate)


# --- U-Net translator ---


@pytest.mark.parametrize("attention", [True, False])
@pytest.mark.parametrize(("res_blocks", "size"), [(0, 32), (2, 64), (1, 40)])
@pytest.mark.parametrize("output", ["direct", "residual"])
def test_translator_output_shape_and_range(attention, res_blocks, size, output):
    spec = TranslatorSpec(base_channels=8, depth=3, res_blocks=res_blocks, attention=attention, output=output)
    model = AATU(spec)
    out = model(torch.rand(2, 6, size, size))
    assert out.shape == (2, 3, size, size)
    assert torch.all(out >= 0) and torch.all(out <= 1)
    n_cbam = sum(isinstance(m, CBAM) for m in model.modules())
    assert n_cbam == (2 * 3 if attention else 0)  # depth 3 < 4: every encoder and decoder level


def test_translator_attention_in_first_four_levels_and_channels_capped():
    model = AATU(TranslatorSpec(base_channels=4, depth=6, res_blocks=1, attention=True))
    with_cbam = [any(isinstance(m, CBAM) for m in level.modules()) for level in model.down]
    assert with_cbam == [True, True, True, True, False, False]
    assert [level.body[0].out_channels for level in model.down] == [4, 8, 16, 32, 32, 32]
    assert model.eval()(torch.rand(1, 6, 64, 64)).shape == (1, 3, 64, 64)


def test_residual_translator_starts_as_the_reference():
    model = AATU(TranslatorSpec(base_channels=8, depth=3, res_blocks=1, output="residual")).eval()
    reference = torch.randint(0, 256, (1, 3, 32, 32)).float() / 255
    out = model(torch.cat([torch.rand(1, 3, 32, 32), reference], dim=1))
    torch.testing.assert_close(out.mul(255).round(), reference.mul(255).round())


# --- landmark sketches ---


def test_draw_landmarks_colours_parts_on_white():
    size = 64
    points = template_landmarks(0.8) * (size - 1)
    points = np.round(points)  # integral points: the drawn pixel is exactly the point's pixel
    image = draw_landmarks(points, size)
    assert image.shape == (size, size, 3) and image.dtype == np.uint8
    x, y = points[8].astype(int)  # chin, mid-jaw
    assert tuple(image[y, x]) == JAW_RGB
    x, y = points[51].astype(int)  # top of the outer lip
    assert tuple(image[y, x]) == LIP_RGB
    assert tuple(image[0, 0]) == (255, 255, 255) and tuple(image[size // 2, 2]) == (255, 255, 255)
    with pytest.raises(InputError, match="68, 2"):
        draw_landmarks(points[:60], size)


# --- VGG-19 ---


def _torchvision_like_state(seed: int = 1) -> dict[str, torch.Tensor]:
    """Our full VGG-19 features with torchvision's names, plus classifier keys as torchvision has them.

    The classifier tensors are small stand-ins (the real ones hold 120 M numbers); the loader ignores them."""
    torch.manual_seed(seed)
    state = {f"features.{k}": v for k, v in VGG19Features(("relu5_4",)).features.state_dict().items()}
    for key in sorted(CLASSIFIER_KEYS):
        state[key] = torch.zeros(2)
    return state


def test_vgg_loads_torchvision_named_state_dict_and_truncates(tmp_path):
    state = _torchvision_like_state()
    assert "features.34.bias" in state and "classifier.6.weight" in state
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    vgg, source = load_vgg19(("relu1_2", "relu3_1"), path, missing="error")
    assert source == "imagenet"
    assert len(vgg.features) == 12  # up to relu3_1 (index 11): deeper layers never run
    torch.testing.assert_close(vgg.features[10].weight, state["features.10.weight"])
    features = vgg(torch.rand(1, 3, 32, 32))
    assert features["relu1_2"].shape == (1, 64, 32, 32) and features["relu3_1"].shape == (1, 256, 8, 8)
    assert not any(p.requires_grad for p in vgg.parameters())


def test_vgg_rejects_wrong_state_dict_naming_file_and_key(tmp_path):
    state = _torchvision_like_state()
    state["features.5.weight"] = torch.zeros(3, 3, 3, 3)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(InputError, match=r"bad\.pth.*features\.5\.weight"):
        load_vgg19(("relu2_2",), path, missing="error")
    state = _torchvision_like_state()
    state["head.weight"] = torch.zeros(1)
    torch.save(state, path)
    with pytest.raises(InputError, match=r"bad\.pth.*unexpected key 'head\.weight'"):
        load_vgg19(("relu2_2",), path, missing="error")


def test_vgg_missing_weights(tmp_path):
    path = tmp_path / "models" / "vgg19-dcbb9e9d.pth"
    with pytest.raises(
        InputError, match=r"vgg19-dcbb9e9d\.pth.*download\.pytorch\.org/models/vgg19-dcbb9e9d\.pth"
    ):
        load_vgg19(("relu1_1",), path, missing="error")
    first, source = load_vgg19(("relu1_1",), path, missing="random", seed=3)
    second, _ = load_vgg19(("relu1_1",), path, missing="random", seed=3)
    assert source == "random-init"
    torch.testing.assert_close(first.features[0].weight, second.features[0].weight)


# --- the stage through its real entry point ---


def _tiny_params() -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["stage2"].update(
        base_channels=8,
        depth=3,
        res_blocks=1,
        steps=6,
        batch_size=4,
        checkpoint_every=3,
        log_every=2,
        eval_frames=5,
    )
    params["perceptual"].update(layers=["relu1_1", "relu2_1"], input_size=0, missing="random")
    return params


def test_tiny_training_run_writes_model_metrics_and_renders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_features(tmp_path / "data" / "features", size=32)
    config = stage2.load_config(_tiny_params())
    stage2.run(config)

    metrics = json.loads(Path("metrics/train2.json").read_text())
    assert metrics["perceptual_weights"] == "random-init"
    assert metrics["eval_frames"] == 5 and metrics["steps"] == 6
    for key in ("test_l1", "test_ssim", "test_psnr", "copy_reference_psnr", "data_loading_share"):
        assert np.isfinite(metrics[key]), key
    assert 0 <= metrics["data_loading_share"] <= 1
    history = pd.read_csv("plots/train2.csv")
    assert list(history["step"]) == [2, 4, 6] and {"loss", "l1", "perceptual", "lr"} <= set(history.columns)
    grid = cv2.imread("plots/train2_grid.png")
    assert grid.shape[1] == 4 * 32
    assert not stage2.CHECKPOINT.exists()  # removed after success

    renderer = Stage2Renderer.load(Path("models/stage2.pt"))
    assert renderer.crop_size == 32
    reference = np.load(schema.crop_path(Path("data/features"), "M001_happy_1_004"))[0]
    frames = renderer.render(np.stack([template_landmarks(o) * 31 for o in (0.0, 0.5, 1.0)]), reference)
    assert frames.shape == (3, 32, 32, 3) and frames.dtype == np.uint8


def test_training_resumes_from_checkpoint_and_matches_uninterrupted_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_features(tmp_path / "data" / "features", size=32)
    config = stage2.load_config(_tiny_params())
    stage2.run(config)
    uninterrupted = torch.load("models/stage2.pt", weights_only=True)["state_dict"]

    calls = {"n": 0}
    original = stage2.Trainer.train_step

    def dies_after_four(self):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(stage2.Trainer, "train_step", dies_after_four)
    with pytest.raises(KeyboardInterrupt):
        stage2.run(config)
    assert stage2.CHECKPOINT.exists() and not Path("models/stage2.pt").exists()
    monkeypatch.setattr(stage2.Trainer, "train_step", original)
    restored_steps = []
    restore = stage2.Trainer.restore
    monkeypatch.setattr(
        stage2.Trainer,
        "restore",
        lambda self, state: (restored_steps.append(state["step"]), restore(self, state)),
    )
    stage2.run(config)
    assert restored_steps == [3]  # resumed from the step-3 checkpoint, not from scratch
    resumed = torch.load("models/stage2.pt", weights_only=True)["state_dict"]
    for key, value in uninterrupted.items():
        torch.testing.assert_close(resumed[key], value, msg=key)


def test_typo_in_stage2_params_is_a_config_error():
    params = _tiny_params()
    params["stage2"]["stpes"] = 3
    with pytest.raises(stage2.ConfigError, match="stpes"):
        stage2.load_config(params)
