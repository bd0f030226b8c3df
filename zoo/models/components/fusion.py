"""Fusion of the face vector v_f and the context vector v_c.

``forward(v_f, v_c)`` returns ``(fused B×out_dim, weights B×2 or None)``.

* ``concat`` — ``[v_f; v_c]``; no weights.
* ``adaptive`` — GLAMOR-Net / CAER-Net-S adaptive fusion (GLAMOR-Net paper, "Face and Context Fusion"):
  ``s_f = F(v_f; φ_f)``, ``s_c = F(v_c; φ_c)``, ``[w_f, w_c] = softmax([s_f, s_c])``,
  output ``[w_f·v_f; w_c·v_c]``. F is Linear(d, hidden) -> ReLU -> Linear(hidden, 1) (minhnhatvt/glamor-net@c12e1b9:model.py).

A fusion may offer ``start_from_face() -> float``: put itself in a state where the face half of its output is
that factor times ``v_f`` whatever the context, so ``head_init`` can start a classifier at a face-only model's.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.models.components.backbones import check_width


class ConcatFusion(nn.Module):
    def __init__(self, face_dim: int, context_dim: int) -> None:
        super().__init__()
        self.out_dim = face_dim + context_dim

    def forward(self, v_f: torch.Tensor, v_c: torch.Tensor):
        return torch.cat([v_f, v_c], dim=1), None

    def start_from_face(self) -> float:
        """The face half is ``v_f`` itself."""
        return 1.0


def _score_net(dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1))


class AdaptiveFusion(nn.Module):
    """Adaptive fusion: two score nets, a softmax over the pair, each vector scaled by its weight."""

    def __init__(self, face_dim: int, context_dim: int, hidden: int = 128) -> None:
        super().__init__()

        hidden = check_width(hidden, "hidden", "fusion 'adaptive'")
        self.face_score = _score_net(face_dim, hidden)
        self.context_score = _score_net(context_dim, hidden)
        self.out_dim = face_dim + context_dim

    def forward(self, v_f: torch.Tensor, v_c: torch.Tensor):
        scores = torch.cat([self.face_score(v_f), self.context_score(v_c)], dim=1)
        weights = torch.softmax(scores, dim=1)
        return torch.cat([v_f * weights[:, :1], v_c * weights[:, 1:]], dim=1), weights

    def start_from_face(self) -> float:
        """Zero both score nets' output layers: equal scores, so w_f = w_c = 1/2 and the face half is v_f / 2."""
        for score in (self.face_score, self.context_score):
            nn.init.zeros_(score[-1].weight)
            nn.init.zeros_(score[-1].bias)
        return 0.5
