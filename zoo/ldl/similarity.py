"""Adaptive similarity c = ζ · s of a sample and its neighbours (LDLVA paper, "Adaptive Similarity"; official
src/models.py ``AdaptiveSimNet``, src/data_utils.py).

* local similarity in the auxiliary space: paper ``s = exp(-‖a_i - a_k‖₂² / δ²)`` (``kind="gaussian"``), or the
  official code's ``exp(-‖a_i - a_k‖₁ / 0.5)`` (``kind="l1"``); ``scale`` is δ² (resp. the 0.5);
* calibration ``ζ = sigmoid(g([v_i, v_k]))`` with the official ``AdaptiveSimNet`` sizes
  ``2D → 512 → BN → ReLU → 256 → BN → ReLU → 1`` (He-normal kernels); the official code clamps the logit at
  -1.3 before the sigmoid (ζ ∈ [0.214, 1]): ``clamp_min=-1.3``; the paper has no clamp (default None).
  Under torch.distributed its BatchNorm statistics span all ranks' pairs, so DDP matches one process.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo.runtime import GlobalBatchNorm1d

SIMILARITY_KINDS = ("gaussian", "l1")


def local_similarity(
    anchor: torch.Tensor, neighbors: torch.Tensor, kind: str = "gaussian", scale: float = 0.5, log: bool = False
) -> torch.Tensor:
    """``anchor`` N×D, ``neighbors`` N×K×D -> N×K similarities in (0, 1] (their logarithms with ``log=True``)."""
    diff = anchor[:, None, :] - neighbors
    if kind == "gaussian":
        log_sim = -(diff * diff).sum(dim=-1) / scale
    elif kind == "l1":
        log_sim = -diff.abs().sum(dim=-1) / scale
    else:
        raise ValueError(f"similarity must be one of {SIMILARITY_KINDS}, got {kind!r}.")
    return log_sim if log else torch.exp(log_sim)


def relative_similarity(log_sim: torch.Tensor) -> torch.Tensor:
    """Similarities divided by each row's largest: d̃ = Σ c p / Σ c does not change under a per-row scale, and
    rows whose neighbours are all far (embedding spaces) no longer underflow to 0/0."""
    return torch.exp(log_sim - log_sim.max(dim=1, keepdim=True).values)


class CalibrationNet(nn.Module):
    """g: the calibration MLP on concatenated backbone features ``[v_i, v_k]`` -> ζ ∈ (0, 1)."""

    def __init__(self, feature_dim: int, hidden: tuple[int, int] = (512, 256), clamp_min: float | None = None) -> None:
        super().__init__()
        h1, h2 = hidden
        self.net = nn.Sequential(
            nn.Linear(2 * feature_dim, h1),
            GlobalBatchNorm1d(h1),
            nn.ReLU(inplace=True),
            nn.Linear(h1, h2),
            GlobalBatchNorm1d(h2),
            nn.ReLU(inplace=True),
            nn.Linear(h2, 1),
        )
        self.clamp_min = clamp_min
        for layer in self.net:
            if isinstance(layer, nn.Linear) and layer.out_features != 1:
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")  # Keras HeNormal
                nn.init.zeros_(layer.bias)

    def logits(self, anchor: torch.Tensor, neighbors: torch.Tensor) -> torch.Tensor:
        """``anchor`` B×V, ``neighbors`` B×K×V -> g([v_i, v_k]) B×K (clamped when ``clamp_min`` is set)."""
        b, k, v = neighbors.shape
        pairs = torch.cat([anchor[:, None, :].expand(b, k, v), neighbors], dim=-1).reshape(b * k, 2 * v)
        logits = self.net(pairs).reshape(b, k)
        if self.clamp_min is not None:
            logits = logits.clamp_min(self.clamp_min)
        return logits

    def forward(self, anchor: torch.Tensor, neighbors: torch.Tensor) -> torch.Tensor:
        """ζ = sigmoid(g([v_i, v_k])), B×K."""
        return torch.sigmoid(self.logits(anchor, neighbors))

    def log_forward(self, anchor: torch.Tensor, neighbors: torch.Tensor) -> torch.Tensor:
        """log ζ, computed as logsigmoid (finite where ζ itself underflows to 0)."""
        return F.logsigmoid(self.logits(anchor, neighbors))
