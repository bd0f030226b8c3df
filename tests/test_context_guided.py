"""``streams="context_guided"``: context-only models in which GLA still reads the face vector (the context rows
of GLAMOR-Net's Table 2): the face encoder guides attention, the classifier sees v_c alone, nothing is fused."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo.errors import ConfigError

SMALL = {"backbone_args": {"channels": [8, 8, 16, 16, 16]},
         "data": {"face_size": [32, 32], "context_size": [48, 48], "context_resize": [56, 64]}}


def test_face_vector_guides_attention_but_is_not_fused():
    torch.manual_seed(0)
    model = zoo.create("glamor_net", streams="context_guided", **SMALL).eval()
    both = zoo.create("glamor_net", **SMALL)
    assert model.face_encoder is not None and model.fusion is None and model.attention is not None
    assert model.feature_dim == 16 and model.classifier[0].in_features == 16  # v_c only (both: 32 after fusion)
    # the same encoders and attention as the two-stream model; no fusion, a classifier on 16 inputs, not 32
    fused_only = sum(p.numel() for p in both.fusion.parameters()) + (32 - 16) * both.classifier[0].out_features
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in both.parameters()) - fused_only
    face, context = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        out = model(face=face, context=context)
        other = model(face=torch.randn(2, 3, 32, 32), context=context)
    assert out.fusion_weights is None and torch.equal(out.features, out.context_vector)
    assert out.face_vector is not None and out.attention.shape == (2, 3, 3)
    assert not torch.allclose(out.attention, other.attention)  # another face, another attention map
    assert not torch.allclose(out.logits, other.logits)
    with pytest.raises(ValueError, match="needs the face input"):
        model(context=context)
    assert model.config.uses_face and model.config.uses_context and model.config.data_streams == "both"


def test_context_only_gla_points_to_context_guided_and_blind_attentions_are_refused():
    with pytest.raises(ConfigError, match="streams='context_guided'"):
        zoo.create("glamor_net", streams="context", **SMALL)
    for attention in ("none", "ca"):
        with pytest.raises(ConfigError, match="does not read the face vector"):
            zoo.create("glamor_net", streams="context_guided", attention=attention, **SMALL)
    assert zoo.create("glamor_net", streams="context", attention="ca", **SMALL).face_encoder is None
