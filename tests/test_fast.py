"""Fast paths give the plain path's outputs (fp32 tolerance: 1e-4 relative, 1e-5 absolute)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo
from zoo.fast import fold_batchnorm, optimize_for_inference

TINY = {"face_size": (32, 32), "context_size": (64, 64)}


def _with_random_bn_stats(model):
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    return model.eval()


@pytest.mark.parametrize("name", ["caer_net_s", "caer_net_s_port", "glamor_net", "glamor_resnet18", "fer_resnet18"])
def test_folded_channels_last_model_matches_plain(name):
    model = _with_random_bn_stats(zoo.create(name, data=TINY))
    fast = optimize_for_inference(model)
    inputs = {}
    if model.config.uses_face:
        inputs["face"] = torch.randn(3, 3, 32, 32)
    if model.config.uses_context:
        inputs["context"] = torch.randn(3, 3, 64, 64)
    with torch.inference_mode():
        plain, quick = model(**inputs), fast(**inputs)
    torch.testing.assert_close(quick.logits, plain.logits, rtol=1e-4, atol=1e-5)
    if plain.attention is not None:
        torch.testing.assert_close(quick.attention, plain.attention, rtol=1e-4, atol=1e-5)


def test_every_conv_bn_pair_is_folded():
    model = zoo.create("glamor_net")
    folded, n = fold_batchnorm(model)
    assert n == 10  # five blocks in each of the two encoders
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    resnet, n = fold_batchnorm(zoo.create("fer_resnet18"))
    assert n == 20 and not any(isinstance(m, nn.BatchNorm2d) for m in resnet.modules())
    # the original is untouched
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 10
