"""Backbones: image -> feature map ``B×C×h×w``, with ``out_channels``.

* ``caer_cnn`` — the 5-block encoder of CAER-Net-S / GLAMOR-Net (ndkhanh360/CAER@93d2582:CAER/model/model.py ``Encoder``;
  minhnhatvt/glamor-net@c12e1b9:model.py ``EncodingBlock``).
* ``fer_cnn`` — a compact VGG-style CNN for small grey faces (the bundled FER2013 model).
* ``resnet18`` — timm ResNet-18 trunk, last stage (512 channels, stride 32).
* ``iresnet18`` / ``iresnet34`` / ``iresnet50`` / ``iresnet100`` — ArcFace's IR face-recognition networks with
  the 512-d embedding (:mod:`zoo.models.components.iresnet`; LDLVA's ResNet-50 trunk).
* ``timm:<model>`` — any timm model's last feature map (``features_only``); extra kwargs pass through.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from zoo.config import is_int, is_real
from zoo.errors import ConfigError

#: bounds of ``caer_cnn``'s arguments (docs/safety.md): 2048 channels is a 151 MB 3×3 conv, 16 blocks
#: halve any input of up to 2048 pixels to nothing
MAX_CHANNELS = 2048
MAX_BLOCKS = 16


def check_bn_args(momentum: object, eps: object, where: str) -> None:
    """BatchNorm momentum in [0, 1] and eps > 0, as finite numbers."""

    if not is_real(momentum) or not 0.0 <= float(momentum) <= 1.0:
        raise ConfigError(f"{where}: bn_momentum must be a number in [0, 1], got {momentum!r}.")
    if not is_real(eps) or not float(eps) > 0.0:
        raise ConfigError(f"{where}: bn_eps must be a positive number, got {eps!r}.")


def check_width(value: object, name: str, where: str, high: int = MAX_CHANNELS) -> int:
    """A layer width: an integer in 1..high."""

    if not is_int(value) or not 1 <= value <= high:
        raise ConfigError(f"{where}: {name} must be an integer in 1..{high}, got {value!r}.")
    return int(value)


class ConvBlock(nn.Sequential):
    """3×3 conv (bias) -> BatchNorm -> ReLU, optionally followed by 2×2 max-pool."""

    def __init__(self, cin: int, cout: int, pool: bool, bn_momentum: float, bn_eps: float) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, 3, padding=1, bias=True),
            nn.BatchNorm2d(cout, eps=bn_eps, momentum=bn_momentum),
            nn.ReLU(inplace=True),
        ]
        if pool:
            layers.append(nn.MaxPool2d(2))
        super().__init__(*layers)


class CaerCNN(nn.Module):
    """CAER-Net-S / GLAMOR-Net encoder: 5 conv blocks (32/64/128/256/256), max-pool after the first four.

    A 96×96 face gives 256×6×6; a 112×112 context gives 256×7×7 (as ndkhanh360/CAER@93d2582:CAER/model/model.py).
    """

    def __init__(
        self,
        channels: Sequence[int] = (32, 64, 128, 256, 256),
        in_chans: int = 3,
        bn_momentum: float = 0.1,
        bn_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence) or not 1 <= len(channels) <= MAX_BLOCKS:
            from zoo.errors import ConfigError

            raise ConfigError(f"caer_cnn: channels must be a list of 1..{MAX_BLOCKS} block widths, got {channels!r}.")
        channels = [check_width(c, "each channels entry", "caer_cnn") for c in channels]
        in_chans = check_width(in_chans, "in_chans", "caer_cnn", 64)
        check_bn_args(bn_momentum, bn_eps, "caer_cnn")
        widths = [in_chans, *channels]
        n = len(channels)
        self.blocks = nn.Sequential(
            *[ConvBlock(widths[i], widths[i + 1], i < n - 1, bn_momentum, bn_eps) for i in range(n)]
        )
        self.out_channels = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class FerCNN(nn.Module):
    """VGG-style encoder for 48×48 faces (Simonyan & Zisserman, ICLR 2015, with BatchNorm): per stage
    ``depth`` × (3×3 conv, no bias -> BN -> ReLU), then 2×2 max-pool. (32, 64, 128, 256) on 48² gives
    256×3×3 and 1.17 M parameters.
    """

    def __init__(self, channels: Sequence[int] = (32, 64, 128, 256), depth: int = 2, in_chans: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_chans
        for cout in channels:
            for _ in range(depth):
                layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
                cin = cout
            layers.append(nn.MaxPool2d(2))
        self.blocks = nn.Sequential(*layers)
        self.out_channels = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class TimmFeatures(nn.Module):
    """The last feature map of a timm model created with ``features_only=True``."""

    def __init__(self, model_name: str, pretrained: bool = False, **kwargs: Any) -> None:
        super().__init__()
        import timm

        self.model_name = model_name
        try:
            self.body = timm.create_model(model_name, pretrained=pretrained, features_only=True, **kwargs)
        except RuntimeError as exc:
            if "Unknown model" in str(exc):
                raise ValueError(
                    f"timm has no model {model_name!r}; see `timm.list_models('*pattern*')` for the names."
                ) from exc
            raise
        self.out_channels = int(self.body.feature_info.channels()[-1])
        self.reduction = int(self.body.feature_info.reduction()[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feature = self.body(x)[-1]
        if feature.ndim != 4:
            raise RuntimeError(f"timm model {self.model_name!r} returned a {feature.ndim}-d feature, not B×C×h×w.")
        if feature.shape[1] != self.out_channels:  # NHWC feature maps (some ViT/ConvNeXt variants)
            feature = feature.permute(0, 3, 1, 2)
        return feature


def caer_cnn(
    channels: Sequence[int] = (32, 64, 128, 256, 256), in_chans: int = 3, bn_momentum: float = 0.1, bn_eps: float = 1e-5
) -> CaerCNN:
    return CaerCNN(channels, in_chans, bn_momentum, bn_eps)


def fer_cnn(**kwargs: Any) -> FerCNN:
    return FerCNN(**kwargs)


def resnet18(**kwargs: Any) -> TimmFeatures:
    return TimmFeatures("resnet18", **kwargs)


def timm_backbone(model_name: str, **kwargs: Any) -> TimmFeatures:
    return TimmFeatures(model_name, **kwargs)
