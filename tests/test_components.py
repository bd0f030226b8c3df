"""Attention and fusion against hand computations on small tensors (GLAMOR-Net paper: GLA and adaptive fusion)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from zoo.models.components.attention import AveragePool, ContextAttention, GlobalLocalAttention
from zoo.models.components.backbones import CaerCNN
from zoo.models.components.fusion import AdaptiveFusion, ConcatFusion


def _gla_reference(gla: GlobalLocalAttention, context_map, face_vector):
    """Per-cell loop exactly as the paper writes it: s_ij = MLP([v_f; v_ij])."""
    b, c, h, w = context_map.shape
    scores = torch.empty(b, h, w)
    for n in range(b):
        for i in range(h):
            for j in range(w):
                cat = torch.cat([face_vector[n], context_map[n, :, i, j]])
                hidden = torch.relu(gla.fc1(cat))
                if gla.bn is not None:  # eval-mode BatchNorm1d, written out
                    bn = gla.bn
                    hidden = (hidden - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
                    hidden = torch.relu(hidden)
                scores[n, i, j] = gla.fc2(hidden)[0]
    attention = torch.softmax(scores.reshape(b, -1), dim=1).reshape(b, h, w)
    v_c = (context_map * attention.unsqueeze(1)).sum(dim=(2, 3))
    return v_c, attention


@pytest.mark.parametrize("scorer_bn", [False, True])
def test_gla_matches_per_cell_concatenation(scorer_bn):
    torch.manual_seed(0)
    gla = GlobalLocalAttention(context_channels=3, face_channels=2, hidden=4, scorer_bn=scorer_bn)
    if scorer_bn:
        gla.bn.running_mean.uniform_(-0.5, 0.5)
        gla.bn.running_var.uniform_(0.5, 2.0)
        gla.bn.weight.data.uniform_(0.5, 1.5)
        gla.bn.bias.data.uniform_(-0.2, 0.2)
    gla.eval()
    context_map = torch.randn(2, 3, 2, 3)
    face_vector = torch.randn(2, 2)
    v_c, attention = gla(context_map, face_vector)
    ref_v, ref_a = _gla_reference(gla, context_map, face_vector)
    assert attention.shape == (2, 2, 3)
    torch.testing.assert_close(attention.sum(dim=(1, 2)), torch.ones(2))
    torch.testing.assert_close(attention, ref_a, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(v_c, ref_v, rtol=1e-5, atol=1e-6)


def test_gla_by_hand_on_two_cells():
    """One image, two cells, 1-d features, hidden=1, no BN: every number written out."""
    gla = GlobalLocalAttention(context_channels=1, face_channels=1, hidden=1, scorer_bn=False)
    with torch.no_grad():
        gla.fc1.weight.copy_(torch.tensor([[1.0, 2.0]]))  # [w_face, w_cell]
        gla.fc1.bias.fill_(0.0)
        gla.fc2.weight.fill_(1.0)
        gla.fc2.bias.fill_(0.0)
    context_map = torch.tensor([[[[1.0, 3.0]]]])  # cells v = 1 and v = 3
    face_vector = torch.tensor([[0.5]])
    # s_1 = relu(0.5 + 2·1) = 2.5, s_2 = relu(0.5 + 2·3) = 6.5
    a1 = math.exp(2.5) / (math.exp(2.5) + math.exp(6.5))
    v_c, attention = gla(context_map, face_vector)
    torch.testing.assert_close(attention, torch.tensor([[[a1, 1 - a1]]]))
    torch.testing.assert_close(v_c, torch.tensor([[a1 * 1.0 + (1 - a1) * 3.0]]))


def test_gla_depends_on_the_face_vector():
    torch.manual_seed(1)
    gla = GlobalLocalAttention(8, 4, hidden=16, scorer_bn=False).eval()
    context_map = torch.randn(1, 8, 3, 3)
    _, a1 = gla(context_map, torch.randn(1, 4))
    _, a2 = gla(context_map, torch.randn(1, 4))
    assert not torch.allclose(a1, a2)


@pytest.mark.parametrize("logit_bn_relu,pool", [(False, "sum"), (True, "mean")])
def test_context_attention_matches_conv_softmax(logit_bn_relu, pool):
    torch.manual_seed(0)
    ca = ContextAttention(context_channels=2, hidden=3, logit_bn_relu=logit_bn_relu, pool=pool).eval()
    context_map = torch.randn(2, 2, 3, 3)
    v_c, attention = ca(context_map)
    conv1, bn1, _, conv2 = list(ca.scorer)[:4]
    hidden = torch.relu(F.batch_norm(conv1(context_map), bn1.running_mean, bn1.running_var, bn1.weight, bn1.bias,
                                     eps=bn1.eps))
    logits = conv2(hidden)
    if logit_bn_relu:
        bn2 = ca.scorer[4]
        logits = torch.relu(F.batch_norm(logits, bn2.running_mean, bn2.running_var, bn2.weight, bn2.bias, eps=bn2.eps))
    ref_a = torch.softmax(logits.reshape(2, -1), dim=1).reshape(2, 3, 3)
    ref_v = (context_map * ref_a.unsqueeze(1)).sum(dim=(2, 3))
    if pool == "mean":
        ref_v = ref_v / 9  # the port's avg_pool2d after weighting: ×1/(h·w)
    torch.testing.assert_close(attention.sum(dim=(1, 2)), torch.ones(2))
    torch.testing.assert_close(attention, ref_a, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(v_c, ref_v, rtol=1e-5, atol=1e-6)


def test_average_pool_is_uniform_attention():
    context_map = torch.randn(2, 4, 3, 5)
    v_c, attention = AveragePool()(context_map)
    torch.testing.assert_close(attention, torch.full((2, 3, 5), 1 / 15))
    torch.testing.assert_close(v_c, context_map.mean(dim=(2, 3)))


def test_adaptive_fusion_by_hand():
    fusion = AdaptiveFusion(face_dim=2, context_dim=2, hidden=1)
    with torch.no_grad():
        for net, bias in ((fusion.face_score, 1.0), (fusion.context_score, 0.0)):
            net[0].weight.fill_(1.0)
            net[0].bias.fill_(0.0)
            net[2].weight.fill_(1.0)
            net[2].bias.fill_(bias)
    v_f = torch.tensor([[1.0, 2.0]])  # s_f = relu(3) + 1 = 4
    v_c = torch.tensor([[0.5, -1.5]])  # s_c = relu(-1) + 0 = 0
    fused, weights = fusion(v_f, v_c)
    w_f = math.exp(4) / (math.exp(4) + 1.0)
    torch.testing.assert_close(weights, torch.tensor([[w_f, 1 - w_f]]))
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(1))
    torch.testing.assert_close(fused, torch.tensor([[w_f * 1.0, w_f * 2.0, (1 - w_f) * 0.5, (1 - w_f) * -1.5]]))


def test_concat_fusion_has_no_weights():
    fused, weights = ConcatFusion(2, 3)(torch.ones(4, 2), torch.zeros(4, 3))
    assert fused.shape == (4, 5) and weights is None


@pytest.mark.parametrize("size,cells", [(96, 6), (112, 7)])
def test_caer_cnn_output_sizes(size, cells):
    encoder = CaerCNN()
    assert encoder(torch.randn(1, 3, size, size)).shape == (1, 256, cells, cells)
    assert encoder.out_channels == 256
