"""save_pretrained -> local-dir: round trips, config.json alone rebuilds, bad files give clear errors."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
import torch
from hub_double import AnyRevisionHub
from tiny_face import SMALL_DATA, nan_weights_dir, timm_face_config, tiny_face_model

import zoo
from zoo.config import ModelConfig
from zoo.errors import ConfigError, UntrainedModelError, WeightsError, ZooError
from zoo.inference.loading import create_for_inference, has_trained_weights
from zoo.models.model import EmotionModel
from zoo.weights.files import load_state_dict


class _NotATensor:
    """An arbitrary Python object: a weights-only loader must refuse to unpickle it."""


TINY = {"face_size": (32, 32), "context_size": (48, 48), "context_resize": (56, 72)}


def _trained_a_little(name="glamor_net", **kw):
    torch.manual_seed(0)
    model = zoo.create(name, data=TINY, **kw)
    # one step so BN running stats and weights differ from a fresh init
    out = model(face=torch.randn(4, 3, 32, 32), context=torch.randn(4, 3, 48, 48))
    out.logits.sum().backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.01 * p.grad
    return model.eval()


@pytest.mark.parametrize("name", ["glamor_net", "caer_net_s_port", "glamor_resnet18"])
def test_save_then_load_reproduces_outputs_exactly(tmp_path, name):
    model = _trained_a_little(name)
    zoo.save_pretrained(model, tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    loaded = zoo.create(f"local-dir:{tmp_path / 'm'}").eval()
    face, context = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        a, b = model(face, context), loaded(face, context)
    assert torch.equal(a.logits, b.logits)
    assert torch.equal(a.attention, b.attention)
    assert loaded.config == model.config


def test_config_json_layout_and_rebuild_from_json_alone(tmp_path):
    model = _trained_a_little("glamor_net", attention_args={"hidden": 32})
    zoo.save_pretrained(model, tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["architecture"] == "glamor_net"
    assert cfg["num_classes"] == 7 and cfg["label_names"][0] == "Anger"
    assert cfg["model_args"]["attention"] == "gla" and cfg["model_args"]["attention_args"]["hidden"] == 32
    assert cfg["pretrained_cfg"]["face_size"] == [32, 32] and cfg["pretrained_cfg"]["std"] == [1.0, 1.0, 1.0]
    # the JSON alone (no registry preset, no weights) rebuilds the same architecture
    from zoo.weights.files import config_from_json_dict

    config, _ = config_from_json_dict(cfg)
    rebuilt = EmotionModel(config)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    assert rebuilt.config == model.config
    assert ModelConfig.from_dict(config.to_dict()) == config


def test_no_pickle_in_the_saved_files(tmp_path):
    zoo.save_pretrained(_trained_a_little(), tmp_path)
    raw = (tmp_path / "model.safetensors").read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    assert "face_encoder.blocks.0.0.weight" in header
    assert b"\x80\x04" not in raw[:2]  # not a pickle stream


def test_truncated_weights_file_names_the_file(tmp_path):
    zoo.save_pretrained(_trained_a_little(), tmp_path)
    path = tmp_path / "model.safetensors"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="model.safetensors.*truncated or corrupt"):
        zoo.create(f"local-dir:{tmp_path}")


def test_missing_key_and_shape_mismatch_are_named(tmp_path):
    from safetensors.torch import save_file

    model = _trained_a_little()
    zoo.save_pretrained(model, tmp_path)
    state = load_state_dict(tmp_path / "model.safetensors")
    del state["classifier.3.bias"]
    state["classifier.0.weight"] = torch.zeros(5, 5)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(WeightsError) as info:
        zoo.create(f"local-dir:{tmp_path}")
    message = str(info.value)
    assert "model.safetensors" in message
    assert "missing keys: classifier.3.bias" in message
    assert "classifier.0.weight: file (5, 5) vs model (128, 512)" in message


def test_bad_config_json_is_named(tmp_path):
    zoo.save_pretrained(_trained_a_little(), tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["model_args"]["attenton"] = "gla"
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ZooError, match=r"config.json: unknown model argument\(s\) attenton"):
        zoo.create(f"local-dir:{tmp_path}")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ZooError, match="config.json: not valid JSON"):
        zoo.create(f"local-dir:{tmp_path}")


def test_missing_directory_and_weights(tmp_path):
    with pytest.raises(ZooError, match="not a directory"):
        zoo.create(f"local-dir:{tmp_path / 'nope'}")
    zoo.save_pretrained(_trained_a_little(), tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(WeightsError, match="model.safetensors: missing"):
        zoo.create(f"local-dir:{tmp_path}")


def test_checkpoint_argument_loads_weights(tmp_path):
    model = _trained_a_little()
    zoo.save_pretrained(model, tmp_path)
    again = zoo.create("glamor_net", data=TINY, checkpoint=tmp_path / "model.safetensors").eval()
    x = (torch.randn(1, 3, 32, 32), torch.randn(1, 3, 48, 48))
    assert torch.equal(model(*x).logits, again(*x).logits)
    # a weights-only torch file works too; a pickled object does not
    torch.save(model.state_dict(), tmp_path / "w.pth")
    zoo.create("glamor_net", data=TINY, checkpoint=tmp_path / "w.pth")
    torch.save({"state_dict": model.state_dict(), "obj": _NotATensor()}, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match="weights_only=True"):
        zoo.create("glamor_net", data=TINY, checkpoint=tmp_path / "bad.pth")


def test_overrides_apply_to_local_dir(tmp_path):
    zoo.save_pretrained(_trained_a_little(), tmp_path)
    model = zoo.create(f"local-dir:{tmp_path}", head_dropout=0.2)
    assert model.config.head_dropout == 0.2


def test_an_extra_tensor_is_refused_and_named(tmp_path):
    """Strict loading: a weights file with one tensor the model does not have is an error naming it."""
    from safetensors.torch import save_file

    model = _trained_a_little()
    zoo.save_pretrained(model, tmp_path)
    state = load_state_dict(tmp_path / "model.safetensors")
    state["classifier.9.weight"] = torch.zeros(3)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(WeightsError, match=r"model.safetensors does not fit .*unexpected keys: classifier\.9\.weight\)"):
        zoo.create(f"local-dir:{tmp_path}")
    with pytest.raises(WeightsError, match=r"unexpected keys: classifier\.9\.weight"):
        zoo.create("glamor_net", data=TINY, checkpoint=tmp_path / "model.safetensors")


EIGHT = ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt")


@pytest.mark.parametrize(("name", "head"), [("fer_cnn.fer2013", "classifier.1"), ("glamor_fer_cnn.expw", "classifier.3")])
def test_pretrained_weights_with_other_classes_load_all_but_a_fresh_classifier_output(caplog, name, head):
    """timm's ``load_pretrained``: another ``num_classes`` keeps every pretrained tensor except the classifier's
    output layer, which starts fresh; the log names the keys and shapes, and the model counts as untrained."""
    pretrained = zoo.create(name, pretrained=True).state_dict()
    with caplog.at_level(logging.INFO, logger="zoo"):
        model = zoo.create(name, pretrained=True, num_classes=8, label_names=EIGHT)
    state = model.state_dict()
    assert model.head_keys == (f"{head}.weight", f"{head}.bias") and model.label_names == EIGHT
    assert state[f"{head}.weight"].shape == (8, pretrained[f"{head}.weight"].shape[1])
    assert state[f"{head}.bias"].shape == (8,)
    kept = [k for k in pretrained if k not in model.head_keys]
    assert len(kept) == len(pretrained) - 2 and all(torch.equal(state[k], pretrained[k]) for k in kept)
    assert torch.equal(state["face_encoder.blocks.0.weight"], pretrained["face_encoder.blocks.0.weight"])
    [record] = [r for r in caplog.records if r.name == "zoo.factory"]
    width = pretrained[f"{head}.weight"].shape[1]
    assert record.levelno == logging.INFO and "has 7 classes, the model 8" in record.getMessage()
    assert f"{head}.weight: (7, {width}) -> (8, {width}); {head}.bias: (7,) -> (8,)" in record.getMessage()
    assert model.pretrained_cfg["new_head"] == {"keys": [f"{head}.weight", f"{head}.bias"], "num_classes": [7, 8]}
    assert not has_trained_weights(model)
    with pytest.raises(UntrainedModelError, match="no trained weights"):
        create_for_inference(name, num_classes=8, label_names=EIGHT)


def test_other_classes_without_label_names_is_the_fresh_models_error():
    with pytest.raises(ZooError, match=r"label_names has 7 entries but num_classes is 8.*label_names=None"):
        zoo.create("fer_cnn.fer2013", pretrained=True, num_classes=8)
    generic = zoo.create("fer_cnn.fer2013", pretrained=True, num_classes=8, label_names=None)
    assert generic.label_names == tuple(f"class_{i}" for i in range(8))


def test_other_names_for_the_same_trained_head_are_refused(tmp_path):
    """A pretrained model's class names are its own: new names for the same count would rename trained outputs."""
    renamed = ["Happy", "Anger", "Disgust", "Fear", "Neutral", "Sad", "Surprise"]
    with pytest.raises(ConfigError, match=r"the trained classifier's outputs are \['Angry', 'Disgust'.*--class-map"):
        zoo.create("fer_cnn.expw", pretrained=True, label_names=renamed)
    own = zoo.create("fer_cnn.expw", pretrained=True)
    assert zoo.create("fer_cnn.expw", pretrained=True, label_names=list(own.label_names)).label_names == own.label_names
    zoo.save_pretrained(own, tmp_path / "m")
    with pytest.raises(ConfigError, match="new names would rename them"):
        zoo.create(f"local-dir:{tmp_path / 'm'}", label_names=renamed)
    assert zoo.create("fer_cnn", label_names=renamed).label_names == tuple(renamed)  # no weights: free to name


def test_only_the_classifier_output_may_differ_from_the_weights(tmp_path):
    """A mismatch outside the output layer still raises the strict load's report, with or without new classes;
    so does a mis-shaped output layer when the classes did not change."""
    from safetensors.torch import save_file

    with pytest.raises(WeightsError, match=r"missing keys: classifier\.0\.bias.*unexpected keys: classifier\.1\.bias"):
        zoo.create("fer_cnn.fer2013", pretrained=True, num_classes=8, label_names=EIGHT, head_hidden=64)
    zoo.save_pretrained(zoo.create("fer_cnn"), tmp_path)
    state = load_state_dict(tmp_path / "model.safetensors")
    state["face_encoder.blocks.1.weight"] = torch.ones(5)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(WeightsError) as info:
        zoo.create(f"local-dir:{tmp_path}", num_classes=8, label_names=EIGHT)
    assert "shape mismatches: face_encoder.blocks.1.weight: file (5,) vs model (32,))" in str(info.value)
    state = load_state_dict(tmp_path / "model.safetensors")
    state["face_encoder.blocks.1.weight"] = torch.ones(32)
    state["classifier.1.bias"] = torch.zeros(6)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(WeightsError, match=r"shape mismatches: classifier\.1\.bias: file \(6,\) vs model \(7,\)"):
        zoo.create(f"local-dir:{tmp_path}")


def _model_dir(path: Path, config: dict) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config))
    (path / "model.safetensors").write_bytes(b"never read")
    return path


def test_a_model_file_cannot_make_timm_fetch_a_url_even_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with AnyRevisionHub({"w.pth": b"weights"}) as server:
        overlay = {"url": f"{server.url}/org/x/resolve/main/w.pth", "hf_hub_id": "", "source": ""}
        directory = _model_dir(tmp_path / "evil", timm_face_config({"pretrained": True,
                                                                     "pretrained_cfg_overlay": overlay}))
        with pytest.raises(ConfigError, match=r"backbone_args\.pretrained is a loading option"):
            zoo.create(f"local-dir:{directory}")
        assert server.requests == []


@pytest.mark.parametrize("args, match", [
    ({"checkpoint_path": "/etc/hostname"}, r"backbone_args\.checkpoint_path is a loading option"),
    ({"pretrained_cfg_overlay": {"file": "/etc/hostname"}}, r"pretrained_cfg_overlay is a loading option"),
    ({"cache_dir": "/tmp/x"}, r"backbone_args\.cache_dir is a loading option"),
    ({"drop_rate": 0.1, "some_option": "https://example.invalid/x"}, r"names a file or URL"),
    ({"some_option": {"nested": "/etc/hostname"}}, r"names a file or URL"),
    # values are compared stripped and lower-cased: no leading space or capital gets a path or URL through
    ({"some_option": " /etc/hostname"}, r"some_option = ' /etc/hostname' names a file or URL"),
    ({"some_option": "HTTPS://example.invalid/x"}, r"some_option = 'HTTPS://example\.invalid/x' names a file"),
    ({"some_option": "File:/etc/hostname"}, r"some_option = 'File:/etc/hostname' names a file or URL"),
    # key patterns beyond the exact names: pretrained*, *_path, *_file, *_dir, *_url, *_filename
    ({"model_file": "w.pth"}, r"backbone_args\.model_file is a loading option"),
    ({"weights_url": "w.pth"}, r"backbone_args\.weights_url is a loading option"),
    ({"pretrained_source": "hub"}, r"backbone_args\.pretrained_source is a loading option"),
    ({"some_option": {"Cache_Filename": "w.pth"}}, r"some_option\.Cache_Filename is a loading option"),
])
def test_loading_options_and_paths_in_a_model_file_are_refused(tmp_path, args, match):
    directory = _model_dir(tmp_path / "evil", timm_face_config(args))
    with pytest.raises(ConfigError, match=match):
        zoo.create(f"local-dir:{directory}")


def test_component_arguments_are_checked_against_what_the_component_declares(tmp_path):
    config = zoo.weights.files.config_to_json_dict(tiny_face_model().config)
    config["model_args"]["backbone_args"]["widths"] = [8, 8]
    directory = _model_dir(tmp_path / "caer", config)
    with pytest.raises(ConfigError, match=r"backbone_args 'widths' not accepted by backbone 'caer_cnn'.*"
                                          r"takes bn_eps, bn_momentum, channels, in_chans"):
        zoo.create(f"local-dir:{directory}")


def test_explicit_loading_options_in_code_still_work_and_are_not_saved(tmp_path):
    model = zoo.create(backbone="timm:test_resnet", streams="face", backbone_args={"pretrained": False},
                       data=SMALL_DATA)
    directory = zoo.save_pretrained(model, tmp_path / "m")
    saved = json.loads((directory / "config.json").read_text())
    assert "pretrained" not in saved["model_args"]["backbone_args"]
    zoo.create(f"local-dir:{directory}")  # the saved file loads


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_at_load_naming_the_tensor(tmp_path, value):
    directory = nan_weights_dir(tmp_path, value=value)
    with pytest.raises(WeightsError, match=r"NaN or infinite values in classifier\.weight"):
        zoo.create(f"local-dir:{directory}")
    clean = zoo.save_pretrained(tiny_face_model(), tmp_path / "clean")
    with pytest.raises(WeightsError, match=r"classifier\.weight"):
        zoo.create(f"local-dir:{clean}", checkpoint=directory / "model.safetensors")


def test_zero_std_is_refused_at_load_naming_the_key(tmp_path):
    directory = zoo.save_pretrained(tiny_face_model(), tmp_path / "m")
    config = json.loads((directory / "config.json").read_text())
    config["pretrained_cfg"]["std"] = [0, 0, 0]
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"config\.json: data\.std must be three positive numbers"):
        zoo.create(f"local-dir:{directory}")


def test_bool_or_int_weight_tensors_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    directory = zoo.save_pretrained(tiny_face_model(), tmp_path / "m")
    state = load_file(str(directory / "model.safetensors"))
    state["classifier.bias"] = torch.ones_like(state["classifier.bias"], dtype=torch.bool)
    state["classifier.weight"] = state["classifier.weight"].to(torch.int32)
    save_file(state, str(directory / "model.safetensors"))
    with pytest.raises(WeightsError, match=r"wrong type \(classifier\.weight: file torch\.int32 vs model torch\.float32; "
                                           r"classifier\.bias: file torch\.bool"):
        zoo.create(f"local-dir:{directory}")


def test_a_bool_tensor_for_an_integer_buffer_is_refused(tmp_path):
    """Neither is floating point, so only the bool-versus-integer rule catches it (it would load as 0/1)."""
    from safetensors.torch import load_file, save_file

    directory = zoo.save_pretrained(tiny_face_model(), tmp_path / "m")
    state = load_file(str(directory / "model.safetensors"))
    key = "face_encoder.blocks.0.1.num_batches_tracked"
    assert state[key].dtype == torch.int64
    state[key] = torch.ones_like(state[key], dtype=torch.bool)
    save_file(state, str(directory / "model.safetensors"))
    with pytest.raises(WeightsError, match=rf"wrong type \({re.escape(key)}: file torch\.bool vs model torch\.int64\)"):
        zoo.create(f"local-dir:{directory}")


def test_an_unknown_target_in_config_json_is_reported_at_load(tmp_path):
    directory = zoo.save_pretrained(tiny_face_model(), tmp_path / "m")
    config = json.loads((directory / "config.json").read_text())
    config["model_args"]["target"] = "no_such_target"
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(ZooError, match="Unknown target 'no_such_target'"):
        zoo.create(f"local-dir:{directory}")
