"""emotion-zoo plugin: face-guided scaled dot-product attention (``dot``) and the ``glamor_dot`` preset.

It uses only the public plugin surface: ``zoo.hookimpl``, the ``register`` callbacks the hooks receive, and
``zoo.get_preset`` to start from a built-in preset (built-ins are registered before any plugin's hooks run).
"""

from __future__ import annotations

import math

import torch
from torch import nn

import zoo
from zoo import hookimpl


class DotProductAttention(nn.Module):
    """``s_ij = (W_q v_f) · (W_k v_ij) / √d``, softmax over the cells, ``v_c = Σ a_ij v_ij``."""

    def __init__(self, context_channels: int, face_channels: int, dim: int = 64) -> None:
        super().__init__()
        if not face_channels:
            raise ValueError("attention='dot' needs a face stream.")
        self.query = nn.Linear(face_channels, dim)
        self.key = nn.Conv2d(context_channels, dim, 1)
        self.scale = 1.0 / math.sqrt(dim)

    def forward(self, context_map: torch.Tensor, face_vector: torch.Tensor | None = None):
        if face_vector is None:
            raise ValueError("DotProductAttention needs the face vector.")
        keys = self.key(context_map)  # B×d×h×w
        logits = torch.einsum("bd,bdhw->bhw", self.query(face_vector), keys) * self.scale
        b, c, h, w = context_map.shape
        attention = torch.softmax(logits.reshape(b, h * w), dim=1)  # B×hw
        vector = torch.einsum("bcn,bn->bc", context_map.reshape(b, c, h * w), attention)
        return vector, attention.reshape(b, h, w)  # the attention contract: (v_c B×C, map B×h×w)


@hookimpl
def register_attentions(register):
    register("dot", DotProductAttention, "face-guided scaled dot-product attention (example plugin)")


@hookimpl
def register_presets(register):
    glamor_args = zoo.get_preset("glamor_net").model_args
    args = {**glamor_args, "attention": "dot", "attention_args": {"dim": 64}}
    register("glamor_dot", args, description="GLAMOR-Net CNN with dot-product attention (example plugin)")
