"""Weight conversion: the CAER-Net-S PyTorch port (checked numerically against a re-statement of its
module tree) and the GLAMOR-Net TF2 name mapping / HWIO->OIHW transposition (on numpy arrays, no TF)."""

from __future__ import annotations

import pathlib
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from typer.testing import CliRunner

import zoo
import zoo.cli
import zoo.publish.convert
from zoo.publish.convert import (
    ConversionError,
    caer_port_state_dict,
    glamor_tf_key,
    glamor_tf_model,
    glamor_tf_state_dict,
    read_tf_checkpoint,
)

# ---- a restatement of ndkhanh360/CAER@93d2582:CAER/model/model.py: same module names and maths ----


class PortEncoder(nn.Module):
    def __init__(self, widths, max_pool=True):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.bn = nn.ModuleList(nn.BatchNorm2d(b) for b in widths[1:])
        self.max_pool = nn.MaxPool2d(2) if max_pool else None

    def forward(self, x):
        last = len(self.convs) - 1
        for i, (conv, bn) in enumerate(zip(self.convs, self.bn, strict=True)):
            x = F.relu(bn(conv(x)))
            if self.max_pool is not None and i < last:
                x = self.max_pool(x)
        return x


class PortTwoStream(nn.Module):
    def __init__(self):
        super().__init__()
        widths = [3, 32, 64, 128, 256, 256]
        self.face_encoding_module = PortEncoder(widths)
        self.context_encoding_module = PortEncoder(widths)
        self.attention_inference_module = PortEncoder([256, 128, 1], max_pool=False)

    def forward(self, face, context):
        face = self.face_encoding_module(face)
        context = self.context_encoding_module(context)
        a = self.attention_inference_module(context)
        n, c, h, w = a.shape
        a = F.softmax(a.reshape(n, -1), dim=-1).reshape(n, c, h, w)
        return face, context * a


class PortFusion(nn.Module):
    def __init__(self, num_class=7):
        super().__init__()
        self.face_bn, self.context_bn = nn.BatchNorm1d(256), nn.BatchNorm1d(256)
        self.face_1, self.face_2 = nn.Linear(256, 128), nn.Linear(128, 1)
        self.context_1, self.context_2 = nn.Linear(256, 128), nn.Linear(128, 1)
        self.fc1, self.fc2 = nn.Linear(512, 128), nn.Linear(128, num_class)
        self.dropout = nn.Dropout()

    def forward(self, face, context):
        face = F.avg_pool2d(face, face.shape[2]).flatten(1)
        context = F.avg_pool2d(context, context.shape[2]).flatten(1)
        face, context = self.face_bn(face), self.context_bn(context)
        lf = self.face_2(F.relu(self.face_1(face)))
        lc = self.context_2(F.relu(self.context_1(context)))
        w = F.softmax(torch.cat([lf, lc], dim=-1), dim=-1)
        features = torch.cat([face * w[:, :1], context * w[:, 1:]], dim=-1)
        return self.fc2(self.dropout(F.relu(self.fc1(features))))


class PortCAERSNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.two_stream_net = PortTwoStream()
        self.fusion_net = PortFusion()

    def forward(self, face, context):
        return self.fusion_net(*self.two_stream_net(face, context))


def randomise_bn(model: nn.Module) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.num_batches_tracked.fill_(17)


@pytest.fixture
def template_module(monkeypatch):
    """A stand-in for pytorch-template's ``parse_config`` module, present only while saving."""
    module = types.ModuleType("parse_config")

    class ConfigParser:
        def __init__(self):
            self._config = {"name": "CAERS", "arch": {"type": "CAERSNet"}}
            self._save_dir = pathlib.PosixPath("/runs/models/CAERS")
            self.run_id = "0101_000000"

    ConfigParser.__module__, ConfigParser.__qualname__ = "parse_config", "ConfigParser"
    module.ConfigParser = ConfigParser
    monkeypatch.setitem(sys.modules, "parse_config", module)
    return module


def test_caer_port_checkpoint_converts_and_matches(tmp_path, template_module, monkeypatch):
    torch.manual_seed(0)
    port = PortCAERSNet()
    randomise_bn(port)
    port.eval()
    state = port.state_dict()
    optimizer = torch.optim.SGD(port.parameters(), lr=0.1, momentum=0.9)
    ckpt = {"arch": "CAERSNet", "epoch": 12, "state_dict": state, "optimizer": optimizer.state_dict(),
            "monitor_best": 0.7, "config": template_module.ConfigParser()}
    path = tmp_path / "model_best.pth"
    torch.save(ckpt, path)
    monkeypatch.delitem(sys.modules, "parse_config")  # the user does not have the port's code

    result = CliRunner().invoke(zoo.cli.app, ["convert", "caer-port", str(path), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    model = zoo.create(f"local-dir:{tmp_path / 'out'}").eval()
    assert model.config.architecture == "caer_net_s_port"
    assert sum(p.numel() for p in model.parameters()) == 2_390_028
    g = torch.Generator().manual_seed(1)
    face, context = torch.randn(2, 3, 96, 96, generator=g), torch.randn(2, 3, 112, 112, generator=g)
    with torch.no_grad():
        expected = port(face, context)
        got = model(face, context).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert model.pretrained_cfg["converted_from"] == "ndkhanh360/CAER"
    assert model.pretrained_cfg["source_epoch"] == 12


def test_caer_port_data_parallel_prefix_is_stripped():
    state = {"module.fusion_net.fc2.bias": torch.zeros(7), "module.two_stream_net.face_encoding_module.bn.3.running_var":
             torch.ones(256)}
    assert sorted(caer_port_state_dict(state)) == ["classifier.3.bias", "face_encoder.blocks.3.1.running_var"]


def test_caer_port_unknown_keys_are_named():
    with pytest.raises(ConversionError, match=r"fusion_net\.extra\.weight.*CAERSNet"):
        caer_port_state_dict({"fusion_net.extra.weight": torch.zeros(1)})


def test_caer_port_refuses_arbitrary_pickled_objects(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "hook": types.SimpleNamespace(a=1)}, path)
    with pytest.raises(ConversionError, match="weights_only=True"):
        zoo.publish.convert.convert_caer_port(path, tmp_path / "out")


# ---- GLAMOR-Net TF2: names and layouts, on numpy arrays ----

SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def tf_variables_from(model) -> dict[str, np.ndarray]:
    """Write a glamor_net state dict the way Keras stores it (names of model.py, HWIO / (in, out) kernels)."""
    inverse = {}
    for enc_tf, enc in (("FaceEncodingNet", "face_encoder"), ("ContextEncodingNet", "context_encoder")):
        for i in range(5):
            inverse[f"{enc_tf}/blocks/{i}/conv/kernel"] = (f"{enc}.blocks.{i}.0.weight", (2, 3, 1, 0))
            inverse[f"{enc_tf}/blocks/{i}/conv/bias"] = (f"{enc}.blocks.{i}.0.bias", None)
            for tf_name, name in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
                                  ("moving_variance", "running_var")):
                inverse[f"{enc_tf}/blocks/{i}/bn/{tf_name}"] = (f"{enc}.blocks.{i}.1.{name}", None)
    dense = {"attention_fc1": "attention.fc1", "attention_fc2": "attention.fc2", "face_weight1": "fusion.face_score.0",
             "face_weight2": "fusion.face_score.2", "context_weight1": "fusion.context_score.0",
             "context_weight2": "fusion.context_score.2", "final_fc1": "classifier.0",
             "final_classify": "classifier.3"}
    for tf_name, name in dense.items():
        inverse[f"{tf_name}/kernel"] = (f"{name}.weight", (1, 0))
        inverse[f"{tf_name}/bias"] = (f"{name}.bias", None)
    for tf_name, name in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
                          ("moving_variance", "running_var")):
        inverse[f"attention_fc1_bn/{tf_name}"] = (f"attention.bn.{name}", None)
    state = model.state_dict()
    out = {}
    for tf_name, (key, perm) in inverse.items():
        value = state[key].numpy()
        out[tf_name + SUFFIX] = value.transpose(perm) if perm else value
    # entries a real checkpoint also holds, which must be ignored
    out["FaceEncodingNet/blocks/0/conv/kernel/.OPTIMIZER_SLOT/optimizer/momentum" + SUFFIX] = np.zeros(1)
    out["save_counter" + SUFFIX] = np.array(3)
    out["optimizer/iter" + SUFFIX] = np.array(100)
    return out


def test_glamor_tf_variables_map_onto_every_glamor_net_tensor():
    torch.manual_seed(0)
    source = zoo.create("glamor_net", backbone_args={"channels": [8, 8, 8, 8, 16]})
    randomise_bn(source)
    variables = tf_variables_from(source)
    model = glamor_tf_model(variables)
    for key, value in source.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0)
    assert model.config.backbone_args["channels"] == [8, 8, 8, 8, 16]
    # converted weights keep the official preprocessing: TF resizing (no antialiasing), the context's JPEG trip
    assert model.config.data.antialias is False and model.config.data.context_jpeg_quality == 95
    face, context = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(face, context).logits, source.eval()(face, context).logits)


def test_hwio_kernel_becomes_oihw_conv_with_tf_semantics():
    """A 'same' 3×3 convolution computed the TF way (NHWC input, HWIO kernel) by hand in numpy equals
    PyTorch's conv2d with the converted kernel."""
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((3, 3, 2, 4)).astype(np.float32)  # H, W, in, out
    bias = rng.standard_normal(4).astype(np.float32)
    x = rng.standard_normal((1, 5, 6, 2)).astype(np.float32)  # N, H, W, C
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    expected = np.zeros((1, 5, 6, 4), np.float32)
    for dy in range(3):
        for dx in range(3):
            expected += padded[:, dy:dy + 5, dx:dx + 6, :] @ kernel[dy, dx]
    expected += bias
    state = glamor_tf_state_dict({"FaceEncodingNet/blocks/0/conv/kernel" + SUFFIX: kernel,
                                  "FaceEncodingNet/blocks/0/conv/bias" + SUFFIX: bias})
    weight = state["face_encoder.blocks.0.0.weight"]
    assert weight.shape == (4, 2, 3, 3)
    got = F.conv2d(torch.from_numpy(x).permute(0, 3, 1, 2), weight, state["face_encoder.blocks.0.0.bias"], padding=1)
    np.testing.assert_allclose(got.permute(0, 2, 3, 1).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_dense_kernel_is_transposed():
    kernel = np.arange(6, dtype=np.float32).reshape(3, 2)  # Keras Dense: (in, out), y = x @ K + b
    state = glamor_tf_state_dict({"final_fc1/kernel" + SUFFIX: kernel})
    x = np.array([[1.0, 2.0, 3.0]], np.float32)
    got = F.linear(torch.from_numpy(x), state["classifier.0.weight"])
    np.testing.assert_allclose(got.numpy(), x @ kernel)


def test_glamor_tf_key_names_and_unknown_variables():
    assert glamor_tf_key("attention_fc1_bn/moving_variance" + SUFFIX) == ("attention.bn.running_var", "vector")
    assert glamor_tf_key("ContextEncodingNet/blocks/4/bn/beta" + SUFFIX) == ("context_encoder.blocks.4.1.bias", "vector")
    assert glamor_tf_key("_CHECKPOINTABLE_OBJECT_GRAPH") is None
    with pytest.raises(ConversionError, match="extra_dense/kernel"):
        glamor_tf_state_dict({"extra_dense/kernel" + SUFFIX: np.zeros((2, 2))})


def test_glamor_tf_without_tensorflow_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # import tensorflow -> ImportError
    with pytest.raises(ConversionError, match=r"pip install 'emotion-zoo\[tf\]'"):
        read_tf_checkpoint(tmp_path / "Model")
