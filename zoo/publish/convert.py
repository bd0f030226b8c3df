"""Import weights from the reference implementations (ndkhanh360/CAER@93d2582, minhnhatvt/glamor-net@c12e1b9).

* ``caer-port``: a checkpoint of the PyTorch CAER-Net-S port (ndkhanh360/CAER, class ``CAERSNet``), a
  pytorch-template dict ``{arch, epoch, state_dict, optimizer, monitor_best, config}`` read with
  ``torch.load(weights_only=True)``, into ``caer_net_s_port``.
* ``glamor-tf``: the official GLAMOR-Net TF2 checkpoint (``model.save_weights``; variables by object path,
  e.g. ``FaceEncodingNet/blocks/0/conv/kernel/.ATTRIBUTES/VARIABLE_VALUE``) into ``glamor_net``. Conv kernels
  go HWIO -> OIHW and Dense kernels (in, out) -> (out, in). Reading the checkpoint needs TensorFlow (extra
  ``tf``); the name mapping itself works on any ``{name: numpy array}``.

Both write a model directory (``config.json`` + ``model.safetensors``) that ``local-dir:`` and ``zoo-cli
push`` accept.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from zoo.errors import ZooError
from zoo.factory import create
from zoo.weights.files import list_keys, load_weights_from_state, save_pretrained

CAER_PORT_REPO = "ndkhanh360/CAER"
GLAMOR_TF_REPO = "minhnhatvt/glamor-net"
_DEFAULT_CHANNELS = [32, 64, 128, 256, 256]


class ConversionError(ZooError):
    """A source checkpoint that cannot be mapped onto the target model; the message names the keys."""


# ------------------------------------------------------------------------------------------ CAER port

#: ``CAERSNet`` key prefix -> EmotionModel key prefix (``caer_net_s_port``; ndkhanh360/CAER@93d2582:CAER/model/model.py)
CAER_PORT_PREFIXES: tuple[tuple[str, str], ...] = (
    (r"two_stream_net\.face_encoding_module\.convs\.(\d+)\.", r"face_encoder.blocks.\1.0."),
    (r"two_stream_net\.face_encoding_module\.bn\.(\d+)\.", r"face_encoder.blocks.\1.1."),
    (r"two_stream_net\.context_encoding_module\.convs\.(\d+)\.", r"context_encoder.blocks.\1.0."),
    (r"two_stream_net\.context_encoding_module\.bn\.(\d+)\.", r"context_encoder.blocks.\1.1."),
    # attention Encoder([256, 128, 1]): conv, BN, ReLU, conv, BN(1), ReLU
    (r"two_stream_net\.attention_inference_module\.convs\.0\.", "attention.scorer.0."),
    (r"two_stream_net\.attention_inference_module\.bn\.0\.", "attention.scorer.1."),
    (r"two_stream_net\.attention_inference_module\.convs\.1\.", "attention.scorer.3."),
    (r"two_stream_net\.attention_inference_module\.bn\.1\.", "attention.scorer.4."),
    (r"fusion_net\.face_bn\.", "face_norm."),
    (r"fusion_net\.context_bn\.", "context_norm."),
    (r"fusion_net\.face_1\.", "fusion.face_score.0."),
    (r"fusion_net\.face_2\.", "fusion.face_score.2."),
    (r"fusion_net\.context_1\.", "fusion.context_score.0."),
    (r"fusion_net\.context_2\.", "fusion.context_score.2."),
    (r"fusion_net\.fc1\.", "classifier.0."),
    (r"fusion_net\.fc2\.", "classifier.3."),
)


class _Opaque:
    """Stands in for the non-tensor objects of a pytorch-template checkpoint (its ``ConfigParser``, paths).

    Allowed in ``weights_only`` loading under those objects' names only, so the checkpoint's own code never
    runs; its state is kept as plain data and otherwise ignored.
    """

    def __init__(self, *args: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


#: globals a pytorch-template checkpoint pickles besides tensors and containers
_TEMPLATE_GLOBALS = ("parse_config.ConfigParser", "pathlib.PosixPath", "pathlib.WindowsPath", "pathlib.Path")


def load_torch_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` of a pytorch-template checkpoint (its config object made inert)."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such checkpoint file.")
    try:
        with torch.serialization.safe_globals([(_Opaque, name) for name in _TEMPLATE_GLOBALS]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        raise ConversionError(
            f"{path}: cannot be read with torch.load(weights_only=True) ({exc}). Only tensors, containers and "
            f"the pytorch-template config object are accepted; re-save the checkpoint as "
            f"{{'state_dict': model.state_dict()}} if it holds other objects."
        ) from exc
    if not isinstance(obj, dict):
        raise ConversionError(f"{path}: expected a checkpoint dict, got {type(obj).__name__}.")
    return obj


def _strip_data_parallel(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def caer_port_state_dict(source: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a ``CAERSNet`` state dict to ``caer_net_s_port`` keys; an unmapped key is an error."""
    renamed, unmapped = {}, []
    for key, value in _strip_data_parallel(source).items():
        for pattern, replacement in CAER_PORT_PREFIXES:
            new, n = re.subn("^" + pattern, replacement, key)
            if n:
                renamed[new] = value
                break
        else:
            unmapped.append(key)
    if unmapped:
        raise ConversionError(
            f"Keys that are not part of the CAER-Net-S port (CAERSNet): {list_keys(unmapped)}"
            ". Is this a checkpoint of CAER/model/model.py's CAERSNet (not orig_model.py)?"
        )
    return renamed


def _caer_port_overrides(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Model arguments read off the tensor shapes (the port's defaults give none)."""
    try:
        channels = [int(state[f"face_encoder.blocks.{i}.0.weight"].shape[0]) for i in range(5)]
        overrides: dict[str, Any] = {}
        if channels != _DEFAULT_CHANNELS:
            overrides["backbone_args"] = {"channels": channels}
        attention_hidden = int(state["attention.scorer.0.weight"].shape[0])
        if attention_hidden != 128:
            overrides["attention_args"] = {"hidden": attention_hidden}
        fusion_hidden = int(state["fusion.face_score.0.weight"].shape[0])
        if fusion_hidden != 128:
            overrides["fusion_args"] = {"hidden": fusion_hidden}
        overrides["head_hidden"] = int(state["classifier.0.weight"].shape[0])
        num_classes = int(state["classifier.3.weight"].shape[0])
    except KeyError as exc:
        raise ConversionError(f"The checkpoint lacks {exc.args[0]!r} (after renaming); not a complete CAERSNet.") from exc
    if num_classes != 7:
        overrides.update(num_classes=num_classes, label_names=[f"class_{i}" for i in range(num_classes)])
    return overrides


def convert_caer_port(checkpoint: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """ndkhanh360/CAER checkpoint -> ``caer_net_s_port`` model directory (strict: every tensor must map)."""
    ckpt = load_torch_checkpoint(checkpoint)
    source = ckpt.get("state_dict", ckpt)
    if not isinstance(source, dict) or not all(isinstance(v, torch.Tensor) for v in source.values()):
        raise ConversionError(f"{checkpoint}: its 'state_dict' is not a dict of tensors.")
    state = caer_port_state_dict(source)
    model = create("caer_net_s_port", **_caer_port_overrides(state))
    load_weights_from_state(model, state, source=str(checkpoint))
    record = {"converted_from": CAER_PORT_REPO, "source_file": Path(checkpoint).name}
    if isinstance(ckpt.get("epoch"), int):
        record["source_epoch"] = ckpt["epoch"]
    return save_pretrained(model, out_dir, pretrained_cfg=record)


# ------------------------------------------------------------------------------------------ GLAMOR TF2

_TF_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_TF_BN = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
_TF_DENSE = {
    "attention_fc1": "attention.fc1",
    "attention_fc2": "attention.fc2",
    "face_weight1": "fusion.face_score.0",
    "face_weight2": "fusion.face_score.2",
    "context_weight1": "fusion.context_score.0",
    "context_weight2": "fusion.context_score.2",
    "final_fc1": "classifier.0",
    "final_classify": "classifier.3",
}
_TF_ENCODERS = {"FaceEncodingNet": "face_encoder", "ContextEncodingNet": "context_encoder"}


def glamor_tf_key(name: str) -> tuple[str, str] | None:
    """TF variable path -> (EmotionModel key, layout) with layout ``conv``/``dense``/``vector``; None for
    non-model entries (optimizer slots, save counter, object graph)."""
    if not name.endswith(_TF_SUFFIX) or ".OPTIMIZER_SLOT" in name:
        return None
    parts = name[: -len(_TF_SUFFIX)].split("/")
    if len(parts) == 5 and parts[0] in _TF_ENCODERS and parts[1] == "blocks":
        prefix = f"{_TF_ENCODERS[parts[0]]}.blocks.{int(parts[2])}"
        layer, var = parts[3], parts[4]
        if layer == "conv" and var in ("kernel", "bias"):
            return f"{prefix}.0.{'weight' if var == 'kernel' else 'bias'}", "conv" if var == "kernel" else "vector"
        if layer == "bn" and var in _TF_BN:
            return f"{prefix}.1.{_TF_BN[var]}", "vector"
    if len(parts) == 2 and parts[0] in _TF_DENSE and parts[1] in ("kernel", "bias"):
        return f"{_TF_DENSE[parts[0]]}.{'weight' if parts[1] == 'kernel' else 'bias'}", \
            "dense" if parts[1] == "kernel" else "vector"
    if len(parts) == 2 and parts[0] == "attention_fc1_bn" and parts[1] in _TF_BN:
        return f"attention.bn.{_TF_BN[parts[1]]}", "vector"
    if parts[0] in ("save_counter", "_CHECKPOINTABLE_OBJECT_GRAPH", "optimizer"):
        return None
    return f"?{name}", "unknown"


def glamor_tf_state_dict(variables: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Map ``{TF variable name: numpy array}`` onto ``glamor_net`` keys, HWIO -> OIHW, (in,out) -> (out,in)."""
    import numpy as np

    state, unknown = {}, []
    for name, value in variables.items():
        mapped = glamor_tf_key(name)
        if mapped is None:
            continue
        key, layout = mapped
        if layout == "unknown":
            unknown.append(name)
            continue
        array = np.asarray(value, dtype=np.float32)
        if layout == "conv":
            array = array.transpose(3, 2, 0, 1)  # H, W, in, out -> out, in, H, W
        elif layout == "dense":
            array = array.T
        state[key] = torch.from_numpy(np.ascontiguousarray(array))
    if unknown:
        raise ConversionError(
            f"TF variables that are not part of GLAMOR-Net's model.py: {list_keys(unknown)}."
        )
    return state


def _glamor_overrides(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    channels = [int(state[f"face_encoder.blocks.{i}.0.weight"].shape[0]) for i in range(5)
                if f"face_encoder.blocks.{i}.0.weight" in state]
    overrides: dict[str, Any] = {}
    if channels and channels != _DEFAULT_CHANNELS:
        overrides["backbone_args"] = {"channels": channels}
    num_classes = int(state["classifier.3.weight"].shape[0]) if "classifier.3.weight" in state else 7
    if num_classes != 7:
        overrides.update(num_classes=num_classes, label_names=[f"class_{i}" for i in range(num_classes)])
    return overrides


def glamor_tf_model(variables: Mapping[str, Any]):
    """Build ``glamor_net`` and load the mapped TF variables into it; BN batch counters start at 0."""
    state = glamor_tf_state_dict(variables)
    model = create("glamor_net", **_glamor_overrides(state))
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state.setdefault(key, torch.zeros_like(value))
    load_weights_from_state(model, state, source="TF checkpoint")
    return model


def read_tf_checkpoint(prefix: str | os.PathLike) -> dict[str, Any]:
    """Every variable of a TF2 checkpoint (``.../Model`` for ``Model.index`` + ``Model.data-*``)."""
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise ConversionError(
            "Converting the GLAMOR-Net TF2 checkpoint needs TensorFlow, which is not installed: "
            "pip install 'emotion-zoo[tf]' (or pip install tensorflow)."
        ) from exc
    try:
        reader = tf.train.load_checkpoint(str(prefix))
    except Exception as exc:  # noqa: BLE001 - TF raises its own error types
        raise ConversionError(f"{prefix}: not a readable TF checkpoint prefix ({exc}); pass the path without "
                              f"the .index / .data-* suffix, e.g. weights/glamor-net/Model.") from exc
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def convert_glamor_tf(checkpoint: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """minhnhatvt/glamor-net TF2 checkpoint -> ``glamor_net`` model directory."""
    model = glamor_tf_model(read_tf_checkpoint(checkpoint))
    record = {"converted_from": GLAMOR_TF_REPO, "source_file": Path(checkpoint).name}
    return save_pretrained(model, out_dir, pretrained_cfg=record)


CONVERTERS = {"caer-port": convert_caer_port, "glamor-tf": convert_glamor_tf}
