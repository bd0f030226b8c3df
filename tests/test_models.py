"""Presets, overrides, composition without a preset, parameter counts of the official models."""

from __future__ import annotations

import time

import pytest
import torch

import zoo
from zoo.config import ModelConfig
from zoo.errors import ConfigError, UnknownComponentError, ZooError
from zoo.models.info import count_parameters

TINY = {"face_size": (32, 32), "context_size": (64, 64), "context_resize": (72, 96)}
#: the IR embedding (BN-Dropout-FC-BN) is built for one input size: the tiny faces' size
FIXED_SIZE = {"ldlva_resnet50": {"backbone_args": {"input_size": TINY["face_size"][0]}}}


def _inputs(model, batch=2):
    d = model.config.data
    inputs = {}
    if model.config.uses_face:
        inputs["face"] = torch.randn(batch, 3, *d.face_size)
    if model.config.uses_context:
        inputs["context"] = torch.randn(batch, 3, *d.context_size)
    return inputs


@pytest.mark.parametrize("name", zoo.list_models())
def test_every_preset_runs_forward_and_backward(name):
    torch.manual_seed(0)
    model = zoo.create(name, data=TINY, **FIXED_SIZE.get(name, {}))
    out = model(**_inputs(model))
    assert out.logits.shape == (2, model.config.num_classes)
    torch.testing.assert_close(out.probs.sum(dim=1), torch.ones(2))
    if model.config.uses_context:
        assert out.attention is not None and out.attention.shape[0] == 2
        torch.testing.assert_close(out.attention.sum(dim=(1, 2)), torch.ones(2))
    loss = torch.nn.functional.cross_entropy(out.logits, torch.tensor([0, 1]))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_glamor_net_has_the_official_parameter_count():
    assert count_parameters(zoo.create("glamor_net")) == 2_158_602


def test_caer_net_s_port_has_the_port_parameter_count():
    assert count_parameters(zoo.create("caer_net_s_port")) == 2_390_028
    # port-compatible options on the paper preset give the same model
    same = zoo.create(
        "caer_net_s", attention_args={"logit_bn_relu": True, "pool": "mean"}, feature_norm=True
    )
    assert count_parameters(same) == 2_390_028


def test_default_sizes_give_the_papers_feature_maps():
    model = zoo.create("glamor_net").eval()
    out = model(face=torch.randn(1, 3, 96, 96), context=torch.randn(1, 3, 112, 112))
    assert out.attention.shape == (1, 7, 7)
    assert out.face_vector.shape == (1, 256) and out.context_vector.shape == (1, 256)
    assert out.fusion_weights.shape == (1, 2)
    torch.testing.assert_close(out.fusion_weights.sum(dim=1), torch.ones(1))
    # the fused features are the weighted vectors
    w = out.fusion_weights
    torch.testing.assert_close(out.features, torch.cat([out.face_vector * w[:, :1], out.context_vector * w[:, 1:]], 1))


def test_glamor_net_uses_keras_batchnorm_settings():
    model = zoo.create("glamor_net")
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert bns and all(bn.momentum == pytest.approx(0.01) and bn.eps == pytest.approx(1e-3) for bn in bns)


def test_override_a_component_of_a_preset():
    model = zoo.create("glamor_resnet18", attention="ca", data=TINY)
    assert model.config.attention == "ca"
    assert type(model.attention).__name__ == "ContextAttention"
    assert model.config.backbone == "resnet18" and model.config.architecture == "glamor_resnet18"
    # glamor_net's GLA arguments do not leak into the replacement head
    glamor_ca = zoo.create("glamor_net", attention="none")
    assert glamor_ca.config.attention_args == {}


def test_compose_without_a_preset():
    model = zoo.create(
        backbone="timm:convnext_atto", attention="gla", fusion="adaptive", num_classes=8,
        data={"face_size": (32, 32), "context_size": (64, 64)},
    )
    assert model.config.architecture is None
    out = model(**_inputs(model))
    assert out.logits.shape == (2, 8)
    assert out.attention.shape == (2, 2, 2)  # convnext stride 32 on 64 px


def test_face_only_and_context_only_streams():
    face_only = zoo.create(backbone="caer_cnn", streams="face", num_classes=3, data=TINY)
    out = face_only(torch.randn(2, 3, 32, 32))
    assert out.logits.shape == (2, 3) and out.attention is None and out.fusion_weights is None
    context_only = zoo.create("glamor_net", streams="context", attention="ca", data=TINY)
    out = context_only(context=torch.randn(2, 3, 64, 64))
    assert out.logits.shape == (2, 7) and out.attention.shape == (2, 4, 4)
    with pytest.raises(ValueError, match="needs the context input"):
        context_only(face=torch.randn(2, 3, 32, 32))


def test_gla_is_rejected_without_a_face_stream():
    with pytest.raises(ConfigError, match="gla"):
        zoo.create("glamor_net", streams="context")


def test_timm_backbone_kwargs_pass_through():
    model = zoo.create(streams="face", backbone="timm:resnet18", backbone_args={"in_chans": 1}, data=TINY)
    assert model(torch.randn(2, 1, 32, 32)).logits.shape == (2, 7)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"name": "glamor_nett"}, UnknownComponentError, "Did you mean 'glamor_net'"),
        ({"name": "glamor_net", "attention": "glaa"}, UnknownComponentError, "Unknown attention 'glaa'"),
        ({"name": "glamor_net", "colour": 3}, ConfigError, "unknown model argument"),
        ({"name": "org/model"}, ZooError, "hf-hub:org/model"),
        ({"name": "glamor_net", "num_classes": 5}, ConfigError, "label_names has 7 entries"),
        ({"backbone": "timm:not_a_model_xyz"}, ValueError, "timm has no model"),
        ({"name": "glamor_net.nosuchtag"}, UnknownComponentError, "no published weights"),
    ],
)
def test_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        zoo.create(**kwargs)


def test_num_classes_override_with_new_labels():
    from zoo.labels import AFFECTNET8

    model = zoo.create("fer_resnet18", num_classes=8, label_names=AFFECTNET8, data=TINY)
    assert model.label_names == AFFECTNET8
    unnamed = zoo.create(backbone="caer_cnn", streams="face", num_classes=3, data=TINY)
    assert unnamed.label_names == ("class_0", "class_1", "class_2")


def test_explicit_none_overrides_are_applied():
    """``None`` is a value, not "not given": the error's own advice ``label_names=None`` works."""
    preset_names = zoo.create("fer_cnn").label_names
    assert preset_names[0] == "Angry"
    generic = zoo.create("fer_cnn", label_names=None)
    assert generic.config.label_names is None and generic.label_names == tuple(f"class_{i}" for i in range(7))
    with pytest.raises(ConfigError, match=r"label_names has 7 entries but num_classes is 8.*label_names=None"):
        zoo.create("fer_cnn", num_classes=8)
    assert zoo.create("fer_cnn", num_classes=8, label_names=None).label_names[-1] == "class_7"
    assert zoo.create("glamor_net", data=TINY).config.head_hidden == 128
    one_linear = zoo.create("glamor_net", data=TINY, head_hidden=None)
    assert one_linear.config.head_hidden is None and one_linear.head_keys == ("classifier.1.weight", "classifier.1.bias")
    assert [type(m).__name__ for m in one_linear.classifier] == ["Dropout", "Linear"]
    with pytest.raises(ConfigError, match="num_classes must be an integer .*got None"):
        zoo.create("fer_cnn", num_classes=None)


def test_list_models_filters_and_sorts():
    assert zoo.list_models("glamor*") == ["glamor_convnext_atto", "glamor_fer_cnn", "glamor_net", "glamor_resnet18"]
    assert "fer_resnet18" in zoo.list_models(["fer*", "ldlva*"])
    assert zoo.list_models("*", exclude="ldlva*") == [n for n in zoo.list_models() if not n.startswith("ldlva")]
    # the bundled models; nothing on the Hub yet
    assert zoo.list_models(pretrained=True) == ["fer_cnn.expw", "fer_cnn.fer2013", "fer_cnn.fer2013_expw",
                                                "glamor_fer_cnn.expw"]
    assert zoo.list_models("glamor*", pretrained=True) == ["glamor_fer_cnn.expw"]
    assert zoo.list_models("*resnet*", pretrained=True) == []


def test_list_components_by_kind():
    comps = zoo.list_components()
    assert {"backbone", "attention", "fusion", "target"} <= set(comps)
    assert comps["attention"] == ["ca", "gla", "none"]
    assert "timm:<name>" in comps["backbone"]
    assert zoo.list_components("fusion") == {"fusion": ["adaptive", "concat"]}


def test_pretrained_is_a_clear_error_without_weights():
    with pytest.raises(ZooError, match="glamor_net"):
        zoo.create("glamor_net", pretrained=True)


def test_import_is_light():
    import subprocess
    import sys

    code = "import sys, zoo; zoo.list_models(); print(sorted(m for m in ('timm','huggingface_hub','typer') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("kwargs, match", [
    ({"num_classes": 10**9}, r"num_classes must be an integer in 2\.\.10000, got 1000000000"),
    ({"head_hidden": 10**9}, r"head_hidden must be .* 1\.\.16384, got 1000000000"),
    ({"data": {"face_size": [30000, 30000]}}, r"face_size must be .* 1\.\.2048, got \[30000, 30000\]"),
    ({"data": {"context_resize": [2049, 10]}}, r"context_resize"),
])
def test_sizes_are_bounded_before_any_allocation(kwargs, match):
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=match):
        ModelConfig(**kwargs)
    assert time.perf_counter() - started < 0.5


def test_backbone_widths_are_bounded():
    with pytest.raises(ConfigError, match=r"caer_cnn: each channels entry must be an integer in 1\.\.2048, got 1000000"):
        zoo.create("caer_net_s", backbone_args={"channels": [4, 1_000_000]})


@pytest.mark.parametrize("kwargs, match", [
    ({"data": {"mask_face_in_context": "no"}}, r"mask_face_in_context must be true or false, got 'no'"),
    ({"label_names": ["a", "b", "a", "c", "d", "e", "f"]}, r"label_names has 'a' and 'a'"),
    ({"label_names": ["a", "B", "b", "c", "d", "e", "f"]}, r"label_names has 'B' and 'b'"),
    ({"head_dropout": 2.0}, r"head_dropout must be a probability in \[0, 1\), got 2.0"),
    ({"data": {"face_size": "96"}}, r"face_size must be .* got '96'"),
    ({"data": {"mean": [0.5, 0.5]}}, r"data.mean must be three finite numbers"),
    ({"backbone_args": ["channels"]}, r"backbone_args must be a dict"),
    ({"backbone": None}, r"backbone must be a component name"),
])
def test_bad_model_values_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ModelConfig(**kwargs)
