"""Attention heads: pool the context feature map into a vector, given the face vector.

Each head's ``forward(context_map B×C×h×w, face_vector B×D or None)`` returns ``(v_c B×C, a B×h×w)``.

* ``none`` — global average pooling (a uniform map).
* ``ca`` — CAER-Net-S context attention (Lee et al., ICCV 2019; ndkhanh360/CAER@93d2582:CAER/model/model.py): a conv net on the context map alone gives one
  logit per cell; spatial softmax; ``v_c = Σ a_ij v_ij``.
* ``gla`` — GLAMOR-Net global-local attention (GLAMOR-Net paper, "Global-Local Attention"; minhnhatvt/glamor-net@c12e1b9:model.py):
  ``s_ij = MLP([v_f; v_ij])``, ``a = softmax_ij(s)``, ``v_c = Σ_ij a_ij v_ij``.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.models.components.backbones import check_bn_args, check_width


def attention_pool(context_map: torch.Tensor, logits: torch.Tensor, scale: float = 1.0):
    """Spatial softmax of ``logits`` (B×h×w) and the weighted sum of the cells of ``context_map``."""
    b, c, h, w = context_map.shape
    attention = torch.softmax(logits.reshape(b, h * w).float(), dim=1).to(context_map.dtype)
    vector = torch.bmm(context_map.reshape(b, c, h * w), attention.unsqueeze(2)).squeeze(2)
    return vector * scale if scale != 1.0 else vector, attention.reshape(b, h, w)


class AveragePool(nn.Module):
    """``attention='none'``: v_c is the mean over cells; the map is uniform."""

    def forward(self, context_map: torch.Tensor, face_vector: torch.Tensor | None = None):
        b, _, h, w = context_map.shape
        attention = context_map.new_full((b, h, w), 1.0 / (h * w))
        return context_map.mean(dim=(2, 3)), attention


def average_pool(context_channels: int, face_channels: int | None = None) -> AveragePool:
    """The ``none`` attention's factory (it has no parameters)."""
    return AveragePool()


class ContextAttention(nn.Module):
    """CAER-Net-S context attention: conv3×3 C→hidden, BN, ReLU, conv3×3 hidden→1, spatial softmax.

    Paper form (default): the softmax acts on the raw conv logits and ``v_c = Σ a_ij v_ij``.
    Port form (ndkhanh360 ``CAERSNet``): ``logit_bn_relu=True`` puts BN(1)+ReLU on the logits and
    ``pool='mean'`` averages ``a·v`` over the cells, i.e. scales v_c by 1/(h·w).
    """

    def __init__(
        self,
        context_channels: int,
        face_channels: int | None = None,
        hidden: int = 128,
        logit_bn_relu: bool = False,
        pool: str = "sum",
        bn_momentum: float = 0.1,
        bn_eps: float = 1e-5,
    ) -> None:
        super().__init__()

        hidden = check_width(hidden, "hidden", "attention 'ca'")
        check_bn_args(bn_momentum, bn_eps, "attention 'ca'")
        if not isinstance(logit_bn_relu, bool):
            raise ValueError(f"attention 'ca': logit_bn_relu must be true or false, got {logit_bn_relu!r}.")
        if pool not in ("sum", "mean"):
            raise ValueError(f"ContextAttention pool must be 'sum' or 'mean', got {pool!r}.")
        layers: list[nn.Module] = [
            nn.Conv2d(context_channels, hidden, 3, padding=1),
            nn.BatchNorm2d(hidden, eps=bn_eps, momentum=bn_momentum),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 1, 3, padding=1),
        ]
        if logit_bn_relu:
            layers += [nn.BatchNorm2d(1, eps=bn_eps, momentum=bn_momentum), nn.ReLU(inplace=True)]
        self.scorer = nn.Sequential(*layers)
        self.pool = pool

    def forward(self, context_map: torch.Tensor, face_vector: torch.Tensor | None = None):
        logits = self.scorer(context_map).squeeze(1)
        h, w = context_map.shape[2:]
        return attention_pool(context_map, logits, 1.0 / (h * w) if self.pool == "mean" else 1.0)


class GlobalLocalAttention(nn.Module):
    """GLAMOR-Net GLA: score each cell from ``[v_f; v_ij]`` with a feed-forward net, softmax over cells.

    Official code (default, ``scorer_bn=True``): Dense(hidden, relu) -> BatchNorm -> ReLU -> Dense(1).
    Paper form (``scorer_bn=False``): Dense(hidden) -> ReLU -> Dense(1).
    The first Dense is split as ``W [v_f; v_ij] = W_f v_f + W_c v_ij`` so the face term is computed once
    per image rather than once per cell; the result is the same linear map.
    """

    def __init__(
        self,
        context_channels: int,
        face_channels: int,
        hidden: int = 128,
        scorer_bn: bool = True,
        bn_momentum: float = 0.1,
        bn_eps: float = 1e-5,
    ) -> None:
        super().__init__()

        if not face_channels:
            raise ValueError("attention='gla' needs a face stream (face_channels > 0).")
        hidden = check_width(hidden, "hidden", "attention 'gla'")
        check_bn_args(bn_momentum, bn_eps, "attention 'gla'")
        if not isinstance(scorer_bn, bool):
            raise ValueError(f"attention 'gla': scorer_bn must be true or false, got {scorer_bn!r}.")
        self.face_channels = face_channels
        self.fc1 = nn.Linear(face_channels + context_channels, hidden)
        self.bn = nn.BatchNorm1d(hidden, eps=bn_eps, momentum=bn_momentum) if scorer_bn else None
        self.fc2 = nn.Linear(hidden, 1)

    def scores(self, context_map: torch.Tensor, face_vector: torch.Tensor) -> torch.Tensor:
        b, c, h, w = context_map.shape
        cells = context_map.flatten(2).transpose(1, 2)  # B×hw×C
        w_face, w_cell = self.fc1.weight.split([self.face_channels, c], dim=1)
        hidden = cells @ w_cell.t() + (face_vector @ w_face.t() + self.fc1.bias).unsqueeze(1)
        hidden = torch.relu(hidden)
        if self.bn is not None:
            hidden = torch.relu(self.bn(hidden.reshape(b * h * w, -1)).reshape(b, h * w, -1))
        return self.fc2(hidden).reshape(b, h, w)

    def forward(self, context_map: torch.Tensor, face_vector: torch.Tensor | None = None):
        if face_vector is None:
            raise ValueError("GlobalLocalAttention needs the face vector.")
        return attention_pool(context_map, self.scores(context_map, face_vector))
