"""Fast paths give the plain path's outputs (fp32 tolerance: 1e-4 relative, 1e-5 absolute)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo
from zoo.inference.fast import fold_batchnorm, optimize_for_inference

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


# ---------------------------------------------------------------- training fast path (engine settings)


def _train_weights(tmp_path, name, preset, **extra):
    import tiny_training as T
    from safetensors.torch import load_file

    from zoo.training.engine import train

    overrides = T.tiny_overrides(**{"epochs": 1, "max_steps_per_epoch": 3, "threads": 1,
                                    "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
                                    "model_args.backbone_args": T.TINY_CNN, **extra})
    result = train(preset, data="tiny:caer", out=tmp_path / name, overrides=overrides)
    tensors = load_file(str(tmp_path / name / "checkpoints" / "last" / "state.safetensors"))
    return result, {k: v for k, v in tensors.items() if k.startswith("model.")}


@pytest.mark.parametrize("preset", ["caer_net_s", "glamor_net"])
def test_channels_last_training_equals_plain_training(preset, tmp_path, tiny_plugin):
    """channels_last=true (the CPU training fast path) gives the plain run's weights after 3 SGD steps
    and the same epoch loss: fp32 tolerance rtol 1e-4, atol 1e-5 (only the summation order differs)."""
    plain, w_plain = _train_weights(tmp_path, "plain", preset)
    fast, w_fast = _train_weights(tmp_path, "fast", preset, channels_last=True)
    assert w_plain.keys() == w_fast.keys()
    moved = 0
    for key, value in w_plain.items():
        torch.testing.assert_close(w_fast[key].contiguous(), value, rtol=1e-4, atol=1e-5, msg=key)
        moved += int(not torch.equal(value, w_fast[key]))
    assert plain.history[0]["train_loss"] == pytest.approx(fast.history[0]["train_loss"], rel=1e-5)
    # the weights did move in training (the comparison is not between two untouched initialisations)
    _, w_init = _train_weights(tmp_path, "init", preset, **{"optimizer": {"name": "sgd", "lr": 0.0}})
    assert any(not torch.allclose(w_init[k], w_plain[k], atol=1e-4) for k in w_plain if "conv" in k or "blocks" in k)


def test_bf16_channels_last_training_stays_close_to_plain(tmp_path, tiny_plugin):
    """amp=bf16 + channels_last rounds activations to bf16 (8 bits of mantissa): the first epoch's loss is
    within 2% of the fp32 run's and every weight within atol 2e-2 after 3 steps."""
    plain, w_plain = _train_weights(tmp_path, "plain", "glamor_net")
    fast, w_fast = _train_weights(tmp_path, "bf16", "glamor_net", channels_last=True, amp="bf16")
    assert fast.history[0]["train_loss"] == pytest.approx(plain.history[0]["train_loss"], rel=2e-2)
    for key, value in w_plain.items():
        torch.testing.assert_close(w_fast[key].contiguous(), value, rtol=2e-2, atol=2e-2, msg=key)


def test_threads_setting_applies_during_the_run_and_is_restored(tmp_path, tiny_plugin, monkeypatch):
    from zoo.training import engine

    seen = []
    original = engine._Run._fit
    monkeypatch.setattr(engine._Run, "_fit", lambda self: (seen.append(torch.get_num_threads()), original(self))[1])
    torch.set_num_threads(2)
    _train_weights(tmp_path, "t1", "caer_net_s", threads=1)
    assert seen == [1] and torch.get_num_threads() == 2
    from zoo.training.recipes import RecipeError

    with pytest.raises(RecipeError, match="threads must be a positive integer or 'auto'"):
        _train_weights(tmp_path, "bad", "caer_net_s", threads="lots")


def test_cpu_threads_auto_counts_idle_cores(monkeypatch):
    import os

    from zoo.runtime import cpu_threads

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    for load, expected in ((0.0, 4), (1.2, 4), (2.0, 3), (3.6, 1), (9.0, 1)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, load, load))
        assert cpu_threads("auto") == expected, load
    assert cpu_threads(3) == 3 and cpu_threads("2") == 2
    for bad in (0, -1, "many", 1.5, True):
        with pytest.raises(ValueError, match="threads must be"):
            cpu_threads(bad)


def test_compiled_inference_matches_plain():
    """``optimize_for_inference(compile=True)`` (inductor, freezing) keeps the plain outputs (fp32 1e-4)."""
    model = _with_random_bn_stats(zoo.create("glamor_net", data=TINY, backbone_args={"channels": [8, 8, 16, 16, 16]}))
    fast = optimize_for_inference(model, compile=True)
    assert fast.config == model.config and fast.label_names == model.label_names
    face, context = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        plain, quick = model(face, context), fast(face, context)
    torch.testing.assert_close(quick.logits, plain.logits, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(quick.attention, plain.attention, rtol=1e-4, atol=1e-5)
