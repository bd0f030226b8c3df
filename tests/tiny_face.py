"""A tiny untrained 7-class face-only model and files made with it: small PNGs, its saved directory with a
non-finite weight, and the config.json of a face-only timm model. Shared by the loading, Hub, predict, data
and CLI-error tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

import zoo
from zoo.config import ModelConfig

TINY_CNN = {"channels": [4, 4, 4, 4, 4]}
SMALL_DATA = {"face_size": [32, 32], "context_size": [32, 32], "context_resize": [40, 40]}


def tiny_face_config() -> ModelConfig:
    return ModelConfig(streams="face", backbone_args=TINY_CNN, data=SMALL_DATA, head_hidden=None, head_dropout=0.0,
                       label_names=zoo.labels.CAER, architecture="caer_net_s")


def tiny_face_model() -> zoo.EmotionModel:
    """A 7-class face-only caer_cnn with 4 channels and one Linear classifier (``classifier.weight``)."""
    torch.manual_seed(0)
    return zoo.EmotionModel(tiny_face_config()).eval()


def png(path: Path, size=(40, 40), value=None, seed=0) -> Path:
    """An RGB PNG of ``size`` (height, width): seeded noise, or every pixel ``value``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8) if value is None else np.full((*size, 3), value, np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def timm_face_config(backbone_args: dict) -> dict:
    """The config.json of a face-only ``timm:test_resnet`` model with these backbone arguments."""
    return {"architecture": None, "num_classes": 7, "label_names": None,
            "model_args": {"streams": "face", "backbone": "timm:test_resnet", "backbone_args": backbone_args,
                           "head_hidden": None, "head_dropout": 0.0},
            "pretrained_cfg": {"face_size": [32, 32]}}


def nan_weights_dir(tmp_path: Path, key: str = "classifier.weight", value=float("nan")) -> Path:
    """``tmp_path/nan``: the tiny face model saved with ``value`` (NaN by default) in one entry of ``key``."""
    from safetensors.torch import load_file, save_file

    directory = zoo.save_pretrained(tiny_face_model(), tmp_path / "nan")
    state = load_file(str(directory / "model.safetensors"))
    state[key][0, 0] = value
    save_file(state, str(directory / "model.safetensors"))
    return directory
