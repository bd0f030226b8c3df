"""IR-18/34/50/100: the "improved residual" face-recognition networks of ArcFace.

Written from the published architecture (Deng, Guo, Xue, Zafeiriou, *ArcFace: Additive Angular Margin Loss for
Deep Face Recognition*, CVPR 2019; arXiv:1801.07698, "Network Settings": input setting "L", output setting
"Option-E", the improved residual unit; depths of the LResNet50E-IR / LResNet100E-IR family):

* input block: 3×3 conv (stride 1, no bias) -> BN -> PReLU; a 112×112 face stays 112×112;
* improved residual unit ``BN -> 3×3 conv -> BN -> PReLU -> 3×3 conv (stride s) -> BN``, plus the shortcut
  (identity, or 1×1 conv with stride s -> BN where the size or width changes); no activation after the sum;
* four stages of 64/128/256/512 channels, each starting with a stride-2 unit: 112² -> 7×7;
  units per stage: IR-18 (2, 2, 2, 2), IR-34 (3, 4, 6, 3), IR-50 (3, 4, 14, 3), IR-100 (3, 13, 30, 3);
* output block "E": ``BN -> Dropout -> FC(512·7·7 -> 512) -> BN`` gives the 512-d embedding.

Parameter and buffer names follow the InsightFace PyTorch port (deepinsight/insightface
@04a433f154de30ff8604d78f73f2b6af5822f71c:recognition/arcface_torch/backbones/iresnet.py: ``conv1``, ``bn1``,
``prelu``, ``layer1..4.N.{bn1,conv1,bn2,prelu,conv2,bn3,downsample}``, ``bn2``, ``fc``, ``features``), so an
arcface_torch checkpoint saved as safetensors loads as ``backbone_pretrained="local-dir:DIR"``. As there, the
final BN's scale is fixed at 1 (not trained).

As a backbone it returns ``B×512×1×1`` (the embedding; the model's global pooling is then the identity) with
``embedding=True``, or the last stage's ``B×512×h×w`` map with ``embedding=False`` (any input size; a trunk
for attention over cells or for global pooling). This is the trunk LDLVA's ``resnet50.h5`` is consistent with:
112² input, 512-d feature (minhnhatvt/label-distribution-learning-fer-tf
@a741b363d328d7cb9156dc5b94927bdd7f391c57:cfg_files/config_resnet50_raf.py, src/models.py).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from zoo.builtin.backbones import IR_DEPTHS

STAGE_CHANNELS = (64, 128, 256, 512)
#: total stride of the four stages (the input block keeps the resolution)
IR_STRIDE = 16


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class IRBlock(nn.Module):
    """Improved residual unit ``BN -> conv3×3 -> BN -> PReLU -> conv3×3(stride) -> BN`` + shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = _conv3x3(cin, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.prelu = nn.PReLU(cout)
        self.conv2 = _conv3x3(cout, cout, stride)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class IResNet(nn.Module):
    """IR-N trunk with the optional "E" embedding block; see the module docstring."""

    def __init__(
        self,
        depth: int = 50,
        embedding: bool = True,
        embedding_dim: int = 512,
        dropout: float = 0.0,
        input_size: int = 112,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        if depth not in IR_DEPTHS:
            raise ValueError(f"iresnet depth must be one of {sorted(IR_DEPTHS)}, got {depth!r}.")
        if embedding and input_size % IR_STRIDE:
            raise ValueError(f"iresnet input_size must be a multiple of {IR_STRIDE} with embedding=True, got "
                             f"{input_size}.")
        self.depth, self.embedding, self.input_size = depth, bool(embedding), int(input_size)
        self.conv1 = _conv3x3(in_chans, STAGE_CHANNELS[0])
        self.bn1 = nn.BatchNorm2d(STAGE_CHANNELS[0])
        self.prelu = nn.PReLU(STAGE_CHANNELS[0])
        cin = STAGE_CHANNELS[0]
        for i, (units, cout) in enumerate(zip(IR_DEPTHS[depth], STAGE_CHANNELS, strict=True)):
            blocks = [IRBlock(cin, cout, 2)] + [IRBlock(cout, cout, 1) for _ in range(units - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            cin = cout
        if self.embedding:
            side = self.input_size // IR_STRIDE
            self.bn2 = nn.BatchNorm2d(cin)
            self.dropout = nn.Dropout(dropout)
            self.fc = nn.Linear(cin * side * side, embedding_dim)
            self.features = nn.BatchNorm1d(embedding_dim)
            nn.init.ones_(self.features.weight)
            self.features.weight.requires_grad_(False)
            self.out_channels = int(embedding_dim)
        else:
            self.out_channels = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        if not self.embedding:
            return x
        side = self.input_size // IR_STRIDE
        if x.shape[-2:] != (side, side):
            raise ValueError(
                f"iresnet{self.depth} with embedding=True was built for {self.input_size}×{self.input_size} input "
                f"(a {side}×{side} last map) but got a {tuple(x.shape[-2:])} map; resize the faces to "
                f"{self.input_size}² (data.face_size), set backbone_args.input_size, or use embedding=False."
            )
        x = self.fc(self.dropout(torch.flatten(self.bn2(x), 1)))
        return self.features(x)[:, :, None, None]


def iresnet(depth: int, **kwargs: Any) -> IResNet:
    """The ``iresnet<depth>`` backbones' factory (registered per depth in :mod:`zoo.builtin.backbones`)."""
    return IResNet(depth, **kwargs)
