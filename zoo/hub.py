"""Model files on disk: ``config.json`` (timm layout) + ``model.safetensors``; no pickle anywhere.

``config.json``::

    {"architecture": "glamor_net", "num_classes": 7, "label_names": [...],
     "model_args": {...every other ModelConfig field...},
     "pretrained_cfg": {"face_size": [96, 96], ..., "mean": [...], "std": [...], "tag": ...},
     "zoo_version": "0.1.0"}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from zoo.config import ModelConfig
from zoo.registry import ZooError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


class WeightsError(ZooError):
    """A weights file that cannot be loaded into the model; the message names the file and the keys."""


def config_to_json_dict(config: ModelConfig, pretrained_cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    from zoo import __version__

    model_args = config.to_dict()
    data = model_args.pop("data")
    architecture = model_args.pop("architecture")
    label_names = model_args.pop("label_names")
    return {
        "architecture": architecture,
        "num_classes": config.num_classes,
        "label_names": label_names,
        "model_args": model_args,
        "pretrained_cfg": {**data, **(pretrained_cfg or {})},
        "zoo_version": __version__,
    }


def config_from_json_dict(d: dict[str, Any], source: str = CONFIG_NAME) -> tuple[ModelConfig, dict[str, Any]]:
    """Parse a ``config.json`` dict into the model config and the extra (non-data) pretrained_cfg keys."""
    if not isinstance(d, dict) or "model_args" not in d:
        raise ZooError(
            f"{source}: not an emotion-zoo config (no 'model_args' key). Files written by "
            f"zoo.save_pretrained have architecture, num_classes, label_names, model_args and pretrained_cfg."
        )
    from zoo.config import DataConfig

    data_keys = set(DataConfig.__dataclass_fields__)
    pretrained_cfg = dict(d.get("pretrained_cfg") or {})
    data = {k: pretrained_cfg.pop(k) for k in list(pretrained_cfg) if k in data_keys}
    args = dict(d["model_args"])
    args.setdefault("num_classes", d.get("num_classes", 7))
    if d.get("num_classes") is not None and args["num_classes"] != d["num_classes"]:
        raise ZooError(
            f"{source}: num_classes is {d['num_classes']} at the top level but {args['num_classes']} in "
            f"model_args; fix one of them."
        )
    args["label_names"] = d.get("label_names")
    args["architecture"] = d.get("architecture")
    args["data"] = data
    return ModelConfig.from_dict(args, source=source), pretrained_cfg


def save_pretrained(model: torch.nn.Module, directory: str | os.PathLike, pretrained_cfg: dict | None = None) -> Path:
    """Write ``config.json`` and ``model.safetensors`` for ``model`` into ``directory``; returns the path."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config_json = config_to_json_dict(model.config, pretrained_cfg)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    _atomic_write(directory / WEIGHTS_NAME, lambda p: save_file(state, str(p), metadata={"format": "pt"}))
    _atomic_write(
        directory / CONFIG_NAME, lambda p: p.write_text(json.dumps(config_json, indent=2, sort_keys=False) + "\n")
    )
    return directory


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def read_config(path: str | os.PathLike) -> tuple[ModelConfig, dict[str, Any]]:
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise ZooError(f"{path}: no such file; a model directory needs {CONFIG_NAME} and {WEIGHTS_NAME}.") from None
    except json.JSONDecodeError as exc:
        raise ZooError(f"{path}: not valid JSON ({exc}).") from exc
    return config_from_json_dict(d, source=str(path))


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a weights file: safetensors, or a ``torch.save`` file loaded with ``weights_only=True``."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"{path}: no such weights file.")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(
                f"{path}: not a readable safetensors file ({exc}). It may be truncated or corrupt; "
                f"download or save it again."
            ) from exc
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad files
        raise WeightsError(f"{path}: cannot be read as weights with weights_only=True ({exc}).") from exc
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: expected a state dict of tensors.")
    return obj


def load_weights(model: torch.nn.Module, path: str | os.PathLike) -> None:
    """Load a weights file into ``model`` strictly; any missing, unexpected or mis-shaped key is an error."""
    state = load_state_dict(path)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        parts = []
        for title, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", mismatched)):
            if keys:
                shown = ", ".join(keys[:8]) + (f", … ({len(keys)} in all)" if len(keys) > 8 else "")
                parts.append(f"{title}: {shown}")
        raise WeightsError(
            f"{path} does not fit this model ({'; '.join(parts)}). Check that the weights belong to this "
            f"architecture and configuration (config.json next to them)."
        )
    model.load_state_dict(state, strict=True)


def load_local_dir(directory: str | os.PathLike) -> tuple[ModelConfig, dict[str, Any], Path]:
    """Config, extra pretrained_cfg and weights path of a directory written by :func:`save_pretrained`."""
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise ZooError(f"local-dir:{directory}: not a directory.")
    config, extra = read_config(directory / CONFIG_NAME)
    weights = directory / WEIGHTS_NAME
    if not weights.exists():
        raise WeightsError(f"{weights}: missing; a model directory needs {CONFIG_NAME} and {WEIGHTS_NAME}.")
    return config, extra, weights
