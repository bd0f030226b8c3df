"""Training recipes: each paper's training setup as data, overridable key by key.

A recipe is a partial run config merged over :data:`DEFAULTS`. Sources:

* CAER-Net-S — each model with what its source trained it with: ``caer_net_s_port`` with ndkhanh360/CAER
  ``normal_config.json`` (@49761a6, the commit that added the port's BatchNorm1d), the port without it with
  the "CAERS original model" ``config.json`` (@a4d9f75), the paper form with the paper's lr ÷10 every 4
  epochs (Lee et al., ICCV 2019);
* GLAMOR-Net — minhnhatvt/glamor-net ``config.py`` / ``train.py``: SGD 5e-4, momentum 0.9, batch 4, ×0.1 at
  epochs 25 and 40 floored at 1e-5, 60 epochs;
* LDLVA — minhnhatvt/label-distribution-learning-fer-tf ``cfg_files/config_*.py``: Adam (ε 1e-7) with the
  per-config lr, milestones, λ settings and class weights, and the code's loss forms (``_paper`` variants:
  the paper's forms).

``augmentation`` is what the engine applies to the training split, and only to it: ``{"face": NAMES,
"context": NAMES}`` with names or sets from :data:`zoo.data.transforms.AUGMENT_PRESETS` (the context's
random crop to ``context_size`` is part of every training pipeline). ``data.options`` passes any other
reader option.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from zoo.config import DataConfig, ModelConfig
from zoo.errors import UnknownComponentError
from zoo.labels import FER2013 as FER2013_ORDER
from zoo.names import parse
from zoo.registry.plugins import get_preset, list_models
from zoo.training.settings import RecipeError, RunSettings, parse_key_values, parse_value

__all__ = ["DEFAULTS", "RECIPES", "RecipeError", "apply_overrides", "list_recipes", "lr_factor", "parse_key_values",
           "parse_value", "resolve_recipe"]


#: the settings every recipe starts from: :class:`zoo.training.settings.RunSettings`' defaults (documented there)
DEFAULTS: dict[str, Any] = RunSettings().to_dict()

# CAER-Net-S (ndkhanh360/CAER): faces resized only; the context's random 112 crop of 128×171 is all.
_CAER_AUG = {"face": None, "context": None}
# GLAMOR-Net (minhnhatvt/glamor-net, dataset.py): face random flip and ±20° rotation; context random crop.
_GLAMOR_AUG = {"face": "glamor", "context": None}
_CAER_PAPER: dict[str, Any] = {
    "model": "caer_net_s",
    "optimizer": {"name": "sgd", "lr": 5e-3, "momentum": 0.9, "nesterov": True},
    "schedule": {"name": "step", "step_size": 4, "gamma": 0.1},
    "batch_size": 32, "epochs": 20, "seed": 123, "augmentation": _CAER_AUG}
# LDLVA (minhnhatvt/label-distribution-learning-fer-tf, data pipeline): flip, zero-pad side/28 + random
# crop (4 px at 112², 8 at 224²), random erasing p 0.5, area 0.02–0.3.
_LDLVA_AUG = {"face": "ldlva", "context": None}
_LDLVA_INIT = ("MS-Celeb-1M face-recognition trunk (official resnet18.h5 / resnet50.h5, minhnhatvt/label-distribution-learning-fer-tf@a741b36:src/models.py; not "
               "redistributed): pass backbone_pretrained=hf-hub:... or local-dir:... with a converted trunk")
_LDLVA_TARGET = {"num_neighbors": 8, "gamma": 0.01, "lamb_lr": 10.0}
# The loss forms of the official code (minhnhatvt/label-distribution-learning-fer-tf
# @a741b363d328d7cb9156dc5b94927bdd7f391c57): src/data_utils.py get_train_dataset, a = exp(-‖Δ‖₁ / 0.5);
# src/models.py AdaptiveSimNet, max(g, -1.3) before the sigmoid; src/utils.py DiscriminativeLoss.update_centers,
# repulsion 0.1·∇ Σ_{i<j} exp(-‖μ_i-μ_j‖² / V) with V = feature_dim; src/utils.py CELoss, mean(w·l).
_LDLVA_OFFICIAL = {"similarity": "l1", "similarity_scale": 0.5, "calibration_clamp": -1.3, "center_repulsion": 0.1,
                   "repulsion_temperature": "dim", "repulsion_pairs": "unordered", "weight_norm": "mean"}
# The paper's forms (Le et al., WACV 2023, "Adaptive Similarity" and "Discriminative Loss"): a squared-L2
# Gaussian, no clamp, Σ_j Σ_{k≠j} exp(-‖μ_j-μ_k‖² / √V); the code's step factor 0.1 on that sum.
_LDLVA_PAPER = {"similarity": "gaussian", "similarity_scale": 0.5, "calibration_clamp": None, "center_repulsion": 0.1,
                "repulsion_temperature": "sqrt_dim", "repulsion_pairs": "ordered", "weight_norm": "mean"}


def _ldlva(config: str, description: str, settings: dict[str, Any], paper: bool = False) -> tuple[str, dict[str, Any]]:
    """An LDLVA recipe named after an official config: the config's settings with the code's loss forms, or
    (``paper``) the same optimisation with the paper's forms."""
    forms = _LDLVA_PAPER if paper else _LDLVA_OFFICIAL
    what = ("the paper's loss forms (squared-L2 similarity, no clamp, ordered-pair repulsion τ = √V)" if paper else
            "the code's loss forms (L1 similarity, g clamped at -1.3, repulsion Σ_{i<j} exp(-d/V) × 0.1)")
    recipe = copy.deepcopy(settings)
    recipe["model_args"]["target_args"] = {**_LDLVA_TARGET, **recipe["model_args"]["target_args"], **forms}
    return f"LDLVA {config}: {description}; {what}", recipe

_FER_COMMON: dict[str, Any] = {
    "model_args": {"target_args": {"label_smoothing": 0.1}},
    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4},
    "schedule": {"name": "cosine", "warmup_epochs": 2},
    "batch_size": 128, "epochs": 40, "augmentation": {"face": "fer", "context": None},
    "amp": "bf16", "channels_last": True, "threads": "auto", "keep": "last",
    "data": {"options": {"cache": "memory"}},
}

# ExpW: the FER2013 optimisation at a fine-tuning lr, the validation split carved by photo (expw reader defaults)
_EXPW_COMMON: dict[str, Any] = {
    **_FER_COMMON, "optimizer": {**_FER_COMMON["optimizer"], "lr": 0.01},
    "data": {"options": {"cache": "memory", "val_fraction": 0.2, "split_seed": 0}}}
_EXPW_FACE: dict[str, Any] = {**_EXPW_COMMON, "model": "fer_cnn", "init_weights": "fer_cnn.fer2013",
                              "schedule": {"name": "cosine", "warmup_epochs": 0}}

# (recipe name, official config, what it sets, settings) — cfg_files/config_*.py of the official code
_LDLVA_CONFIGS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("ldlva_resnet18_raf", "config_resnet18_raf", "Adam 1e-3 (ε 1e-7), ×0.1 at 10, 20, 40, batch 32, 60 epochs, "
     "λ init 0.5, λ SGD lr 10 momentum 0", {
        "model": "ldlva_resnet18",
        "model_args": {"target_args": {"lamb_init": 0.5, "lamb_momentum": 0.0}},
        "optimizer": {"name": "adam", "lr": 1e-3, "eps": 1e-7},
        "schedule": {"name": "multistep", "milestones": [10, 20, 40], "gamma": 0.1},
        "batch_size": 32, "epochs": 60, "augmentation": _LDLVA_AUG,
        "paper_backbone_init": _LDLVA_INIT}),
    ("ldlva_resnet50_raf", "config_resnet50_raf", "IR-50 at 112², Adam 1e-4 (ε 1e-7), ×0.1 at 10, 30, batch 32, "
     "60 epochs, λ init 0.5", {
        "model": "ldlva_resnet50",
        "model_args": {"target_args": {"lamb_init": 0.5, "lamb_momentum": 0.0}},
        "optimizer": {"name": "adam", "lr": 1e-4, "eps": 1e-7},
        "schedule": {"name": "multistep", "milestones": [10, 30], "gamma": 0.1},
        "batch_size": 32, "epochs": 60, "augmentation": _LDLVA_AUG,
        "paper_backbone_init": _LDLVA_INIT}),
    ("ldlva_resnet18_affectnet", "config_resnet18_affnet", "Adam 3e-4 (ε 1e-7), ×0.2 at 5, 10, 20, 60 epochs, "
     "λ init 0.8, λ momentum 0.9, balanced class weights", {
        "model": "ldlva_resnet18",
        "model_args": {"target_args": {"lamb_init": 0.8, "lamb_momentum": 0.9, "class_weights": "balanced"}},
        "optimizer": {"name": "adam", "lr": 3e-4, "eps": 1e-7},
        "schedule": {"name": "multistep", "milestones": [5, 10, 20], "gamma": 0.2},
        "batch_size": 32, "epochs": 60, "monitor": "balanced_accuracy", "augmentation": _LDLVA_AUG,
        "paper_backbone_init": _LDLVA_INIT}),
]

# Fine-tuning a trained model on a small folder: the from-scratch recipes' lr (0.1 for fer_cnn: 0.033 in its first
# warm-up epoch) takes a trained fer_cnn.fer2013 from 57 % to 14 % validation accuracy in one epoch on 200 photos;
# a hundredth of it, reached after one warm-up epoch, keeps what the model knows (tests/test_finetune.py)
_FINETUNE: dict[str, Any] = {
    "optimizer": {"name": "sgd", "lr": 1e-3, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4},
    "schedule": {"name": "cosine", "warmup_epochs": 1}, "batch_size": 32, "epochs": 5}

RECIPES: dict[str, tuple[str, dict[str, Any]]] = {
    "finetune": ("Fine-tuning a trained model (init_weights=NAME; a preset named with its tag, fer_cnn.fer2013, "
                 "trains with this recipe from that tag's weights): SGD Nesterov 1e-3 (a hundredth of the "
                 "from-scratch lr), weight decay 5e-4, one warm-up epoch then cosine, batch 32, 5 epochs, best epoch "
                 "kept", _FINETUNE),
    # Each CAER-Net-S model trains with what its source trained it with. ndkhanh360/CAER added BatchNorm1d
    # before fusion together with configs/normal_config.json (@49761a661d877a4ebd5f27286681df47e12c52d4:
    # CAER/model/model.py, CAER/configs/normal_config.json); the model without it ("CAERS original model",
    # @a4d9f753582aebd047858d42db3e306925f851b5:CAER/model/model.py) came with CAER/config.json of that commit
    # (renamed configs/debug_config.json in 49761a6). The paper form has no code: the paper's schedule.
    "caer_net_s": ("CAER-Net-S paper form with the paper's schedule (Lee et al., ICCV 2019: lr ÷10 every 4 "
                   "epochs); initial lr 5e-3, Nesterov momentum 0.9 and batch 32 are not in the paper text "
                   "(5e-3: ndkhanh360's original config)", _CAER_PAPER),
    "caer_net_s_paper": ("the same as caer_net_s (the paper's schedule), kept under its earlier name", _CAER_PAPER),
    "caer_net_s_port": ("caer_net_s_port (BatchNorm1d before fusion) with the config it was added with: "
                        "ndkhanh360 @49761a6 CAER/configs/normal_config.json, SGD Nesterov 1e-2, StepLR(15, 0.5), "
                        "batch 128, 150 epochs, early stop 40, seed 123", {
        "model": "caer_net_s_port",
        "optimizer": {"name": "sgd", "lr": 1e-2, "momentum": 0.9, "nesterov": True, "weight_decay": 0.0},
        "schedule": {"name": "step", "step_size": 15, "gamma": 0.5},
        "batch_size": 128, "epochs": 150, "early_stopping": 40, "seed": 123, "augmentation": _CAER_AUG}),
    "caer_net_s_original": ("ndkhanh360's 'CAERS original model' (the port without BatchNorm1d) with its config: "
                            "@a4d9f75 CAER/config.json, SGD Nesterov 5e-3, StepLR(15, 0.5), batch 32, 80 epochs, "
                            "early stop 40, seed 123", {
        "model": "caer_net_s_port",
        "model_args": {"feature_norm": False},
        "optimizer": {"name": "sgd", "lr": 5e-3, "momentum": 0.9, "nesterov": True, "weight_decay": 0.0},
        "schedule": {"name": "step", "step_size": 15, "gamma": 0.5},
        "batch_size": 32, "epochs": 80, "early_stopping": 40, "seed": 123, "augmentation": _CAER_AUG}),
    "glamor_net": ("GLAMOR-Net official code: SGD 5e-4 momentum 0.9, ×0.1 at epochs 25, 40 (floor 1e-5), "
                   "batch 4, 60 epochs, best val accuracy", {
        "model": "glamor_net",
        "optimizer": {"name": "sgd", "lr": 5e-4, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0},
        "schedule": {"name": "multistep", "milestones": [25, 40], "gamma": 0.1, "min_lr": 1e-5},
        "batch_size": 4, "epochs": 60, "augmentation": _GLAMOR_AUG}),
    "glamor_resnet18": ("GLAMOR-Net with ResNet-18 encoders, GLAMOR-Net optimisation (glamor-net config.py) at batch 32 "
                        "(no official recipe)", {
        "model": "glamor_resnet18",
        "optimizer": {"name": "sgd", "lr": 5e-4, "momentum": 0.9},
        "schedule": {"name": "multistep", "milestones": [25, 40], "gamma": 0.1, "min_lr": 1e-5},
        "batch_size": 32, "epochs": 60, "augmentation": _GLAMOR_AUG,
        "paper_backbone_init": "ImageNet-pretrained ResNet-18 (inferred: the paper gives no recipe); "
                               "train with backbone_pretrained=true"}),
    **{name + suffix: _ldlva(config, description, settings, paper=bool(suffix))
       for name, config, description, settings in _LDLVA_CONFIGS for suffix in ("", "_paper")},
    "fer_resnet18": ("Face-only ResNet-18 baseline: the LDLVA R18 optimisation with one-hot targets", {
        "model": "fer_resnet18",
        "optimizer": {"name": "adam", "lr": 1e-3, "eps": 1e-7},
        "schedule": {"name": "multistep", "milestones": [10, 20, 40], "gamma": 0.1},
        "batch_size": 32, "epochs": 60, "augmentation": _LDLVA_AUG,
        "paper_backbone_init": _LDLVA_INIT}),
    # FER2013 family: real 48×48 grey faces, trained within a 2-core CPU budget (docs/trained-models.md)
    "fer2013_cnn": ("Bundled default model: fer_cnn on FER2013 48² grey; SGD Nesterov 0.1, weight decay 5e-4, "
                    "batch 128, 2-epoch warm-up + cosine, label smoothing 0.1, flip/affine/erase, 40 epochs, "
                    "bf16 + channels_last, final epoch kept", {
        "model": "fer_cnn", **_FER_COMMON}),
    "fer2013_resnet18": ("fer_resnet18 (one-hot) on FER2013 with the fer2013_cnn optimisation, 60 epochs "
                         "(~7.5 h on 2 CPU cores, resumable; ~7 min on one GPU with device=cuda num_workers=14)", {
        "model": "fer_resnet18", **_FER_COMMON, "epochs": 60}),
    "fer2013_ldlva_resnet18": ("ldlva_resnet18 (LDL-VA, memory bank) on FER2013 with the fer2013_cnn "
                               "optimisation, 30 epochs; pseudo-VA from the bundled fer_cnn.fer2013 as teacher "
                               "(FER2013 has no valence/arousal labels)", {
        "model": "ldlva_resnet18", **_FER_COMMON, "epochs": 30,
        "model_args": {"label_names": list(FER2013_ORDER), "data": {"face_size": [112, 112], "grayscale": True},
                       "target_args": {"neighbor_mode": "memory_bank", "auxiliary": "teacher:fer_cnn.fer2013"}}}),
    # ExpW family: faces in real web photos (docs/real-photos.md); --data expw:DIR, val carved by photo
    "expw_fer_cnn": ("Face model for real photos: fer_cnn, every weight from the bundled fer_cnn.fer2013, "
                     "fine-tuned on the faces of the ExpW training photos; SGD Nesterov 0.01, cosine, 15 epochs, "
                     "final epoch kept", {**_EXPW_FACE, "epochs": 15}),
    "expw_fer2013_fer_cnn": ("Tried for the face model (docs/real-photos.md): expw_fer_cnn with the "
                             "ExpW faces 3× per epoch mixed with FER2013 train (pass data.mix=[{\"spec\": "
                             "\"fer2013:DIR\"}]), 12 epochs: keeps FER2013, learns ExpW far less", {
        **_EXPW_FACE, "epochs": 12, "data": {**_EXPW_FACE["data"], "repeat": 3}}),
    "expw_glamor_fer_cnn": ("Compact GLAMOR-Net on ExpW photos: glamor_fer_cnn, face encoder from the bundled "
                            "fer_cnn.expw, context encoder from scratch; SGD Nesterov 0.01, cosine with 1 warm-up "
                            "epoch, batch 64, 10 epochs, final epoch kept", {
        **_EXPW_COMMON, "model": "glamor_fer_cnn", "backbone_pretrained": "fer_cnn.expw",
        "schedule": {"name": "cosine", "warmup_epochs": 1}, "batch_size": 64, "epochs": 10}),
}

#: the recipe a bare preset name trains with
PRESET_RECIPES = {
    "caer_net_s": "caer_net_s", "caer_net_s_port": "caer_net_s_port", "glamor_net": "glamor_net",
    "glamor_resnet18": "glamor_resnet18", "glamor_convnext_atto": "glamor_resnet18",
    "glamor_fer_cnn": "expw_glamor_fer_cnn",
    "fer_resnet18": "fer_resnet18", "fer_cnn": "fer2013_cnn", "ldlva_resnet18": "ldlva_resnet18_raf", "ldlva_resnet50": "ldlva_resnet50_raf",
}

SHORTHANDS = {"lr": "optimizer.lr", "optimizer": "optimizer.name", "schedule": "schedule.name",
              "train": "data.train", "val": "data.val"}


def list_recipes() -> dict[str, str]:
    return {name: description for name, (description, _) in RECIPES.items()}


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_recipe(model_or_recipe: str, recipe: str | None = None) -> dict[str, Any]:
    """The run config for a recipe name, a preset name (its default recipe) or ``local-dir:DIR``.

    ``recipe`` pairs a model with another recipe's optimisation (the recipe's own model is replaced).
    """

    if recipe is not None:
        if recipe not in RECIPES:
            raise RecipeError(_unknown_recipe(recipe))
        config = deep_merge(DEFAULTS, {**RECIPES[recipe][1], "recipe": recipe})
        config["model"] = model_or_recipe
        if model_or_recipe != RECIPES[recipe][1].get("model"):
            config["model_args"] = {}
        return config
    if model_or_recipe in RECIPES:
        return deep_merge(DEFAULTS, {**RECIPES[model_or_recipe][1], "recipe": model_or_recipe})
    parsed = parse(model_or_recipe)
    if parsed.is_preset and parsed.tag is not None:
        # a trained model named by its tag: fine-tune it, from its weights, at a fine-tuning lr
        return deep_merge(DEFAULTS, {**_FINETUNE, "recipe": "finetune", "model": model_or_recipe,
                                     "init_weights": model_or_recipe})
    if parsed.is_preset:
        arch = parsed.arch
        try:
            get_preset(arch)
        except UnknownComponentError:
            raise RecipeError(_unknown_recipe(model_or_recipe)) from None
        name = PRESET_RECIPES.get(arch)
        if name is not None:
            config = deep_merge(DEFAULTS, {**RECIPES[name][1], "recipe": name})
            if RECIPES[name][1].get("model") != arch:
                config["model_args"] = {}
            config["model"] = model_or_recipe
            return config
    return deep_merge(DEFAULTS, {"model": model_or_recipe, "recipe": "default"})


def _unknown_recipe(name: str) -> str:
    import difflib


    names = sorted(RECIPES)
    close = difflib.get_close_matches(name, names + list_models(), n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return (f"{name!r} is neither a training recipe nor a model.{hint} Recipes: {', '.join(names)}. "
            f"Models: `zoo-cli list`; a saved model: local-dir:DIR.")


def apply_overrides(config: dict[str, Any], overrides: dict[str, Any] | list[str] | None) -> dict[str, Any]:
    """Set dotted keys (``optimizer.lr=0.01``; ``optimizer=adamw`` switches the optimiser and keeps only
    its lr; a dict replaces a whole section, ``schedule.milestones=[5,10]``); a bare model field
    (``attention=ca``) goes to ``model_args``, and so does an image setting under ``data``
    (``data.face_size=[64,64]`` is ``model_args.data.face_size``, the model's DataConfig). ``"key=value"``
    strings are parsed with :func:`parse_value`. The result is checked by
    :meth:`zoo.training.settings.RunSettings.from_dict` (unknown keys, bad values).
    """

    if not overrides:
        return config
    if isinstance(overrides, list):
        overrides = parse_key_values(overrides, "Override")
    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    image_fields = {f.name for f in dataclasses.fields(DataConfig)}
    run_keys = set(RunSettings.keys())
    config = copy.deepcopy(config)
    for key, value in overrides.items():
        if not (key in ("optimizer", "schedule") and isinstance(value, dict)):
            key = SHORTHANDS.get(key, key)
        if key == "optimizer.name" and value != config["optimizer"].get("name"):
            # another optimiser takes other arguments: keep only the learning rate
            config["optimizer"] = {"lr": config["optimizer"].get("lr", DEFAULTS["optimizer"]["lr"])}
        parts = key.split(".")
        if parts[0] not in run_keys and parts[0] in model_fields:
            parts = ["model_args", *parts]
        elif parts[0] == "data" and len(parts) > 1 and parts[1] in image_fields:
            parts = ["model_args", *parts]
        node = config
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
    RunSettings.from_dict(config)
    return config


def lr_factor(schedule: dict[str, Any], epoch: int, total_epochs: int = 1) -> float:
    """Multiplier of the base lr at (0-based) ``epoch``; ``min_lr`` is applied by the caller."""
    name = schedule.get("name", "constant")
    warmup = int(schedule.get("warmup_epochs") or 0)
    gamma = float(schedule.get("gamma", 0.1))
    if name == "constant":
        factor = 1.0
    elif name == "step":
        step = schedule.get("step_size")
        if not step:
            raise RecipeError("schedule 'step' needs schedule.step_size (epochs between decays).")
        factor = gamma ** (epoch // int(step))
    elif name == "multistep":
        factor = gamma ** sum(epoch >= int(m) for m in schedule.get("milestones") or [])
    elif name == "cosine":
        import math

        total = max(1, total_epochs)
        factor = 0.5 * (1 + math.cos(math.pi * min(epoch, total) / total))
    else:
        raise RecipeError(f"Unknown schedule {name!r}; use constant, step, multistep or cosine.")
    if warmup and epoch < warmup:
        factor *= (epoch + 1) / (warmup + 1)
    return factor
