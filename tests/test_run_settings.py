"""Typed run settings (zoo.training.settings.RunSettings): one place checks every key and value, every recipe
and every README override is accepted, and a stored run_config.json round-trips byte for byte."""

from __future__ import annotations

import json

import pytest

from zoo.training import engine
from zoo.training.recipes import DEFAULTS, RECIPES, apply_overrides, resolve_recipe
from zoo.training.settings import RecipeError, RunSettings, parse_key_values

#: run_config.json as the engine wrote it before the settings were typed (fer2013_cnn recipe, data path shortened)
STORED = """{
  "recipe": "fer2013_cnn",
  "model": "fer_cnn",
  "model_args": {
    "target_args": {
      "label_smoothing": 0.1
    }
  },
  "data": {
    "train": "fer2013:/data/fer2013-dev",
    "val": null,
    "train_split": "train",
    "val_split": "val",
    "options": {
      "cache": "memory"
    },
    "train_subset": null,
    "label_noise": null,
    "repeat": 1,
    "mix": []
  },
  "optimizer": {
    "name": "sgd",
    "lr": 0.1,
    "momentum": 0.9,
    "nesterov": true,
    "weight_decay": 0.0005
  },
  "schedule": {
    "name": "cosine",
    "step_size": null,
    "milestones": [],
    "gamma": 0.1,
    "min_lr": 0.0,
    "warmup_epochs": 2
  },
  "batch_size": 128,
  "eval_batch_size": null,
  "epochs": 40,
  "max_steps_per_epoch": null,
  "drop_last": false,
  "early_stopping": null,
  "monitor": "accuracy",
  "grad_clip": null,
  "seed": 0,
  "deterministic": false,
  "amp": "bf16",
  "channels_last": true,
  "compile": false,
  "threads": "auto",
  "device": "auto",
  "num_workers": 0,
  "checkpoint_every": null,
  "progress": true,
  "tensorboard": false,
  "augmentation": {
    "face": "fer",
    "context": null
  },
  "keep": "last",
  "backbone_pretrained": false,
  "init_weights": null,
  "head_init": null,
  "paper_backbone_init": "from scratch"
}
"""

#: every override README.md shows (Training section, Trained models, label noise)
README_OVERRIDES = [
    "epochs=5", "optimizer.lr=0.01", "optimizer=adamw", "schedule.milestones=[5,10]", "batch_size=64",
    "grad_clip=1.0", "amp=bf16", "channels_last=true", "compile=true", "deterministic=true", "seed=0",
    "early_stopping=10", "monitor=balanced_accuracy", "checkpoint_every=500", "tensorboard=true", "attention=ca",
    "num_classes=8", "model_args.data.face_size=[64,64]", "data.val_split=test", "threads=auto", "threads=1",
    "keep=last", "augmentation.face=fer", "augmentation.face=ldlva", "device=cpu",
    'data.label_noise={"fraction": 0.3, "seed": 0, "mode": "uniform"}', 'data.train_subset={"size": 4000, "seed": 0}',
    'data.train_subset={"fraction": 0.1}', "model_args.target_args.auxiliary=teacher:local-dir:runs/x/best",
    "backbone_pretrained=true", "backbone_pretrained=hf-hub:org/face-trunk@abc",
]


def test_a_stored_run_config_round_trips_byte_for_byte():
    settings = RunSettings.from_dict(json.loads(STORED))
    assert settings.to_json() == STORED
    assert RunSettings.from_dict(settings.to_dict()) == settings
    assert settings.dataset.options == {"cache": "memory"} and settings.optimizer.kwargs() == {
        "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.0005}
    assert settings.changed_on_resume(json.loads(STORED)) == []
    # a run stored before head_init existed resumes unchanged: a missing setting is its default
    older = {k: v for k, v in json.loads(STORED).items() if k != "head_init"}
    assert settings.changed_on_resume(older) == [] and RunSettings.from_dict(older) == settings


def test_defaults_and_every_recipe_round_trip():
    assert RunSettings().to_dict() == DEFAULTS
    for name in RECIPES:
        config = resolve_recipe(name)
        assert RunSettings.from_dict(config).to_dict() == config, name


@pytest.mark.parametrize("override", README_OVERRIDES)
def test_every_documented_override_is_accepted(override):
    config = apply_overrides(resolve_recipe("glamor_net"), [override])
    key, _, _ = override.partition("=")
    settings = RunSettings.from_dict(config)
    assert settings.to_dict() == config
    if key == "model_args.data.face_size":
        assert settings.model_args["data"]["face_size"] == [64, 64]


def test_an_image_setting_under_data_goes_to_the_model():
    """``data`` names the run's datasets; the model's image sizes are ``model_args.data`` and routed there."""
    config = apply_overrides(resolve_recipe("glamor_net"), ["data.face_size=[64,64]", "data.train_subset={\"size\": 9}"])
    assert config["model_args"]["data"] == {"face_size": [64, 64]}
    assert config["data"]["train_subset"] == {"size": 9} and "face_size" not in config["data"]


@pytest.mark.parametrize(("override", "message"), [
    ("epochz=5", "Unknown setting 'epochz'. Run settings: "),
    ("schedule.gama=0.5", "Unknown setting 'schedule.gama'; valid schedule settings: name, step_size, milestones"),
    ("data.trian=x", "Unknown setting 'data.trian'; valid data settings: train, val"),
    ("augmentation.body=fer", "augmentation must be {'face': NAMES, 'context': NAMES}"),
    ("optimizer.momentm=0.9", "Unknown setting 'optimizer.momentm'; valid optimizer settings: name, lr, momentum"),
    ("optimizer.eps=1e-8", "setting optimizer.eps=1e-08: optimizer 'sgd' takes no 'eps'"),
])
def test_an_unknown_key_fails_in_one_place_with_one_message(override, message):
    config = resolve_recipe("glamor_net")
    key, _, value = override.partition("=")
    with pytest.raises(RecipeError) as raised:
        apply_overrides(config, [override])
    assert str(raised.value).startswith(message)
    # the same message from the typed settings themselves, given the dict form directly
    section, _, name = key.rpartition(".")
    broken = json.loads(json.dumps(config))
    (broken[section] if section else broken)[name] = parse_key_values([f"v={value}"], "x")["v"]
    with pytest.raises(RecipeError) as direct:
        RunSettings.from_dict(broken)
    assert str(direct.value) == str(raised.value)


@pytest.mark.parametrize(("override", "message"), [
    ("epochs=abc", "setting epochs='abc': must be an integer >= 1."),
    ("batch_size=2.5", "setting batch_size=2.5: must be an integer >= 1."),
    ("drop_last=1", "setting drop_last=1: must be true or false."),
    ("schedule.gamma=x", "setting schedule.gamma='x': must be a positive number."),
    ("data.val_split=3", "setting data.val_split=3: must be a non-empty string."),
    ("data=[1]", "setting data=[1]: must be a dict."),
    ("optimizer.nesterov=yes", "setting optimizer.nesterov='yes': must be true or false."),
    ("optimizer=bogusopt", "Unknown optimizer 'bogusopt' (optimizer.name); use one of sgd, adam, adamw."),
    ("schedule=step", "schedule 'step' needs schedule.step_size (epochs between decays)."),
    ("threads=lots", "threads must be a positive integer or 'auto', got 'lots'."),
    ("device=bogus", "device 'bogus' is not a device"),
])
def test_a_wrong_type_fails_in_one_place_with_one_message(override, message, tmp_path, monkeypatch):
    with pytest.raises(RecipeError) as raised:
        apply_overrides(resolve_recipe("glamor_net"), [override])
    assert str(raised.value).startswith(message)

    def no_build(*args, **kwargs):
        raise AssertionError("the settings must be refused before anything is built")

    monkeypatch.setattr(engine._Run, "_setup", no_build)
    with pytest.raises(RecipeError) as in_train:
        engine.train("glamor_net", data="synth_caer", out=tmp_path / "run", overrides=[override])
    assert str(in_train.value) == str(raised.value)


def test_resume_compares_settings_but_lets_resumable_ones_change():
    stored = json.loads(STORED)
    settings = RunSettings.from_dict({**stored, "epochs": 60, "device": "cpu", "threads": 1})
    assert settings.changed_on_resume(stored) == []
    changed = RunSettings.from_dict(apply_overrides(stored, ["optimizer.lr=0.2", "seed=3"]))
    assert changed.changed_on_resume(stored) == ["optimizer", "seed"]
