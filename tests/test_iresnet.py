"""The ``iresnet`` backbones (ArcFace IR-18/34/50) against their published architecture: parameter counts
from the layer list, output shapes, the unit's operation order, and the LDLVA ResNet-50 preset built on IR-50."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import zoo
from zoo.models.components.iresnet import IR_DEPTHS, IRBlock, IResNet


def _bn(c):
    return 2 * c  # weight and bias (running statistics are buffers)


def expected_params(depth: int, embedding: bool = True, side: int = 7, dim: int = 512) -> int:
    """Count from the published layer list: input block, improved residual units, output block E."""
    n = 3 * 64 * 9 + _bn(64) + 64  # conv3×3 (no bias), BN, PReLU
    cin = 64
    for units, cout in zip(IR_DEPTHS[depth], (64, 128, 256, 512), strict=True):
        for u in range(units):
            c = cin if u == 0 else cout
            n += _bn(c) + c * cout * 9 + _bn(cout) + cout + cout * cout * 9 + _bn(cout)
            if u == 0:  # stride 2: 1×1 conv + BN shortcut
                n += c * cout + _bn(cout)
        cin = cout
    if embedding:
        n += _bn(512) + 512 * side * side * dim + dim + _bn(dim)  # BN -> Dropout -> FC -> BN
    return n


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_parameter_counts_match_the_layer_list(depth):
    with torch.device("meta"):  # shapes only: no memory, no initialisation time
        model, trunk = IResNet(depth), IResNet(depth, embedding=False)
    assert sum(p.numel() for p in model.parameters()) == expected_params(depth)
    assert sum(p.numel() for p in trunk.parameters()) == expected_params(depth, embedding=False)
    # the published sizes (InsightFace's arcface_torch r18/r34/r50: 24.0 M, 34.1 M, 43.6 M)
    assert expected_params(depth) == {18: 24_025_600, 34: 34_139_328, 50: 43_590_848}[depth]
    assert not model.features.weight.requires_grad


def test_output_block_scale_is_fixed_at_one():
    model = IResNet(18)
    assert torch.equal(model.features.weight, torch.ones(512)) and not model.features.weight.requires_grad
    assert "features.weight" not in {n for n, p in model.named_parameters() if p.requires_grad}


def test_output_shapes_and_input_size_check():
    model = IResNet(50).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 112, 112)).shape == (1, 512, 1, 1)
    assert model.fc.in_features == 512 * 7 * 7 and model.out_channels == 512
    with pytest.raises(ValueError, match=r"built for 112×112 input.*data\.face_size"):
        model(torch.randn(1, 3, 96, 96))
    trunk = IResNet(18, embedding=False).eval()
    with torch.no_grad():
        assert trunk(torch.randn(1, 3, 224, 224)).shape == (1, 512, 14, 14)  # stride 16: input block keeps 224
    with torch.device("meta"):
        assert IResNet(18, input_size=224).fc.in_features == 512 * 14 * 14
    with pytest.raises(ValueError, match="depth must be one of"):
        IResNet(20)


def test_improved_residual_unit_order():
    torch.manual_seed(0)
    block = IRBlock(8, 16, stride=2).eval()
    for bn in (block.bn1, block.bn2, block.bn3, block.downsample[1]):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 8, 10, 10)

    def bn(layer, t):
        return F.batch_norm(t, layer.running_mean, layer.running_var, layer.weight, layer.bias, False, 0.0, layer.eps)

    # BN -> conv3×3 -> BN -> PReLU -> conv3×3 (stride 2) -> BN, + (1×1 conv stride 2 -> BN); no ReLU after the sum
    out = bn(block.bn1, x)
    out = F.conv2d(out, block.conv1.weight, padding=1)
    out = F.prelu(bn(block.bn2, out), block.prelu.weight)
    out = bn(block.bn3, F.conv2d(out, block.conv2.weight, stride=2, padding=1))
    short = bn(block.downsample[1], F.conv2d(x, block.downsample[0].weight, stride=2))
    with torch.no_grad():
        assert torch.allclose(block(x), out + short, atol=1e-5)
        assert (block(x) < 0).any()
    assert IRBlock(16, 16).downsample is None


def test_ldlva_resnet50_preset_is_ir50_at_112_and_timm_resnet50_is_an_override():
    with torch.device("meta"):
        model = zoo.create("ldlva_resnet50")
        target = zoo.build_target(model.config, model.feature_dim, num_samples=16)
        other = zoo.create("ldlva_resnet50", backbone="timm:resnet50")
        out = model.eval()(face=torch.empty(1, 3, 112, 112))
    assert model.config.backbone == "iresnet50" and tuple(model.config.data.face_size) == (112, 112)
    assert model.feature_dim == 512 and isinstance(model.face_encoder, IResNet)
    assert target.calibration.net[0].in_features == 1024  # g on [f_i; f_k], 2 × 512 as the official code
    assert target.centers.shape == (7, 512)
    assert out.features.shape == (1, 512) and out.logits.shape == (1, 7)
    assert other.feature_dim == 2048 and other.config.backbone_args == {}


def test_insightface_named_tensors_load_as_a_trunk(tmp_path):
    source = IResNet(18, embedding=False)
    state = {k: v.clone() for k, v in source.state_dict().items()}
    state["fc.weight"] = torch.zeros(512, 512 * 49)  # the embedding tensors of a full checkpoint are ignored
    assert {"conv1.weight", "layer1.0.bn1.weight", "layer1.0.prelu.weight", "layer1.0.downsample.0.weight",
            "layer4.1.bn3.running_var"} <= set(state)
    save_file(state, str(tmp_path / "model.safetensors"))
    model = zoo.create("ldlva_resnet18", backbone="iresnet18", backbone_args={"embedding": False},
                       backbone_pretrained=f"local-dir:{tmp_path}")
    for key, value in source.state_dict().items():
        assert torch.equal(model.face_encoder.state_dict()[key], value), key
