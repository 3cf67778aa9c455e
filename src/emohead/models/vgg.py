"""VGG-19 feature extractor with torchvision's parameter names, and the perceptual loss of eq. (6).

torchvision does not work beside the CPU torch here, so the network is defined in code; its `features.*`
parameters are named as in torchvision's vgg19-dcbb9e9d.pth so that file loads as it is. The classifier is
not built (it holds ~120 M parameters the loss never uses): its keys are recognised and skipped.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from emohead.errors import InputError

log = logging.getLogger(__name__)

WEIGHTS_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's cfg "E": conv widths, "M" = 2x2 max-pool.
VGG19_CONFIG: tuple[int | str, ...] = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    512,
    "M",
)
CLASSIFIER_KEYS = frozenset(f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias"))


def _layer_table() -> tuple[dict[str, int], dict[str, tuple[int, ...]]]:
    """relu{block}_{conv} -> index in `features`, and every features.* parameter name -> shape."""
    relu_index: dict[str, int] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    index, block, conv, in_channels = 0, 1, 0, 3
    for item in VGG19_CONFIG:
        if item == "M":
            index, block, conv = index + 1, block + 1, 0
            continue
        conv += 1
        shapes[f"features.{index}.weight"] = (int(item), in_channels, 3, 3)
        shapes[f"features.{index}.bias"] = (int(item),)
        relu_index[f"relu{block}_{conv}"] = index + 1
        index, in_channels = index + 2, int(item)
    return relu_index, shapes


RELU_INDEX, FEATURE_SHAPES = _layer_table()


def _build_features(stop: int) -> nn.Sequential:
    """torchvision's `features` up to index `stop` (inclusive); deeper layers are never computed."""
    layers: list[nn.Module] = []
    in_channels = 3
    for item in VGG19_CONFIG:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(in_channels, int(item), 3, padding=1), nn.ReLU(inplace=False)]
            in_channels = int(item)
    return nn.Sequential(*layers[: stop + 1])


class VGG19Features(nn.Module):
    """ImageNet-normalised VGG-19 feature maps at the named ReLU layers (relu1_1 ... relu5_4)."""

    def __init__(self, layers: tuple[str, ...]):
        super().__init__()
        unknown = [name for name in layers if name not in RELU_INDEX]
        if unknown or not layers:
            raise InputError(
                f"perceptual.layers: unknown layer {unknown or layers}; valid: {', '.join(RELU_INDEX)}"
            )
        self.layers = tuple(layers)
        self.indices = {RELU_INDEX[name]: name for name in layers}
        self.features = _build_features(max(self.indices))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 3, H, W) RGB in [0, 1] -> {layer name: feature map}."""
        x = (images - self.mean) / self.std
        out = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.indices:
                out[self.indices[index]] = x
        return out

    def random_init(self, seed: int = 0) -> None:
        """torchvision's VGG init (Kaiming normal, fan_out) from a fixed seed; the global RNG is untouched."""
        generator = torch.Generator().manual_seed(seed)
        for module in self.features:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(
                    module.weight, mode="fan_out", nonlinearity="relu", generator=generator
                )
                nn.init.zeros_(module.bias)

    def load_torchvision(self, path: Path) -> None:
        """Load torchvision's vgg19 state dict (features.*, classifier.*); bad keys/shapes -> InputError."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # corrupt zip, pickle, truncated download
            raise InputError(
                f"{path}: cannot read the VGG-19 state dict ({type(exc).__name__}: {exc})"
            ) from None
        if not isinstance(state, dict):
            raise InputError(
                f"{path}: expected a state dict (mapping of parameter names), got {type(state).__name__}"
            )
        check_vgg19_state(state, path)
        own = self.features.state_dict()
        self.features.load_state_dict({k: state[f"features.{k}"] for k in own}, strict=True)


def check_vgg19_state(state: dict[str, torch.Tensor], path: Path) -> None:
    """Every features.* key of VGG-19 with its shape; classifier.* keys allowed and ignored; nothing else."""
    for key, shape in FEATURE_SHAPES.items():
        if key not in state:
            raise InputError(f"{path}: not a torchvision VGG-19 state dict: missing key {key!r}")
        if tuple(state[key].shape) != shape:
            raise InputError(
                f"{path}: not a torchvision VGG-19 state dict: {key!r} has shape {tuple(state[key].shape)}, "
                f"expected {shape}"
            )
    unexpected = [k for k in state if k not in FEATURE_SHAPES and k not in CLASSIFIER_KEYS]
    if unexpected:
        raise InputError(f"{path}: not a torchvision VGG-19 state dict: unexpected key {unexpected[0]!r}")


def load_vgg19(
    layers: tuple[str, ...], weights_path: Path, missing: str, seed: int = 0
) -> tuple[VGG19Features, str]:
    """Frozen VGG-19 features and where its weights came from: "imagenet" or "random-init"."""
    network = VGG19Features(layers)
    weights_path = Path(weights_path)
    if weights_path.is_file():
        network.load_torchvision(weights_path)
        source = "imagenet"
    elif missing == "error":
        raise InputError(
            f"{weights_path}: VGG-19 ImageNet weights not found; on a machine with internet download "
            f"{WEIGHTS_URL} "
            f"(torchvision's file) and copy it to {weights_path}, or set perceptual.missing: random"
        )
    else:
        log.warning(
            "%s not found: the perceptual loss uses a randomly initialised VGG-19 (seed %d); "
            "download %s to %s for the paper's ImageNet features",
            weights_path,
            seed,
            WEIGHTS_URL,
            weights_path,
        )
        network.random_init(seed)
        source = "random-init"
    network.eval().requires_grad_(False)
    return network, source


class PerceptualLoss(nn.Module):
    """Eq. (6): sum over the chosen layers of the mean L1 distance between VGG-19 features."""

    def __init__(self, vgg: VGG19Features):
        super().__init__()
        self.vgg = vgg

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.vgg.eval()  # a frozen feature extractor: never in training mode
        return self

    def forward(self, generated: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.vgg(real)
        produced = self.vgg(generated)
        return sum(F.l1_loss(produced[name], target[name]) for name in self.vgg.layers)
