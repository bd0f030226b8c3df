"""Model files on disk: ``config.json`` (timm layout) + ``model.safetensors``; no pickle anywhere.

``config.json``::

    {"architecture": "glamor_net", "num_classes": 7, "label_names": [...],
     "model_args": {...every other ModelConfig field...},
     "pretrained_cfg": {"face_size": [96, 96], ..., "mean": [...], "std": [...], "tag": ...},
     "zoo_version": "0.1.0"}

This module writes such directories (:func:`save_pretrained`, atomically), reads and checks them
(:func:`read_config`, :func:`load_local_dir`) and loads weights strictly, with one key-mismatch report
(:func:`key_report`). Downloads are :mod:`zoo.weights.hub`, name resolution :mod:`zoo.weights.sources`,
uploads :mod:`zoo.publish.push`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from zoo.config import COMPONENT_FIELDS, DataConfig, ModelConfig, check_file_config, is_loading_arg
from zoo.errors import ConfigError, WeightsError, ZooError
from zoo.version import __version__

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def config_to_json_dict(config: ModelConfig, pretrained_cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``config.json`` dict of ``config``. Loading options in the arguments of the components built at load
    (``pretrained``, ``checkpoint_path``, ...: :func:`zoo.config.is_loading_arg`) are left out: the weights
    are saved next to the config, and a model file may not carry them (:func:`zoo.config.check_file_config`)."""
    model_args = config.to_dict()
    for field, key in COMPONENT_FIELDS.items():
        if field != "target" and isinstance(model_args.get(key), dict):
            model_args[key] = {k: v for k, v in model_args[key].items() if not is_loading_arg(k)}
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
    """Parse a ``config.json`` dict into the model config and the extra (non-data) pretrained_cfg keys.

    The result passes :meth:`ModelConfig.validate` (types, choices, size bounds) and
    :func:`zoo.config.check_file_config` (registered components, declared arguments, no loading options).
    """
    if not isinstance(d, dict) or "model_args" not in d:
        raise ConfigError(
            f"{source}: not an emotion-zoo config (no 'model_args' key). Files written by "
            f"zoo.save_pretrained have architecture, num_classes, label_names, model_args and pretrained_cfg."
        )
    for key, kinds, what in (("model_args", (dict,), "a dict"), ("pretrained_cfg", (dict, type(None)), "a dict"),
                             ("label_names", (list, type(None)), "a list of names"),
                             ("architecture", (str, type(None)), "a string")):
        if not isinstance(d.get(key), kinds):
            raise ConfigError(f"{source}: {key} must be {what}, got {d.get(key)!r}.")
    data_keys = set(DataConfig.__dataclass_fields__)
    pretrained_cfg = dict(d.get("pretrained_cfg") or {})
    data = {k: pretrained_cfg.pop(k) for k in list(pretrained_cfg) if k in data_keys}
    args = dict(d["model_args"])
    args.setdefault("num_classes", d.get("num_classes", 7))
    if d.get("num_classes") is not None and args["num_classes"] != d["num_classes"]:
        raise ConfigError(
            f"{source}: num_classes is {d['num_classes']!r} at the top level but {args['num_classes']!r} in "
            f"model_args; fix one of them."
        )
    args["label_names"] = d.get("label_names")
    args["architecture"] = d.get("architecture")
    args["data"] = data
    try:
        config = ModelConfig.from_dict(args, source=source)
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(message if message.startswith(source) else f"{source}: {message}") from None
    check_file_config(config, source)
    return config, pretrained_cfg


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
    from safetensors import SafetensorError

    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except (OSError, SafetensorError) as exc:
        tmp.unlink(missing_ok=True)
        raise WeightsError(f"Could not write {path} ({exc}); check free disk space and permissions.") from exc


def read_config(path: str | os.PathLike) -> tuple[ModelConfig, dict[str, Any]]:
    """Read and check a ``config.json`` (see :func:`config_from_json_dict`); every failure names the file."""
    path = Path(path)
    if path.exists() and not path.is_file():  # a folder, FIFO or device: reading it could block forever
        raise ConfigError(f"{path}: not a regular file; {CONFIG_NAME} must be a JSON file.")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ZooError(f"{path}: no such file; a model directory needs {CONFIG_NAME} and {WEIGHTS_NAME}.") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc}); a config.json is UTF-8 JSON.") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}).") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a model config.") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc}); it must be a JSON file.") from None
    return config_from_json_dict(d, source=str(path))


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a weights file: safetensors, or a ``torch.save`` file loaded with ``weights_only=True``."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"{path}: no such weights file.")
    if not path.is_file():  # a folder, FIFO or device: reading it could block forever
        raise WeightsError(f"{path}: not a regular file; a weights file is a .safetensors (or torch) file.")
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
    load_weights_from_state(model, load_state_dict(path), source=str(path))


def list_keys(keys: Sequence[str], limit: int = 8, sep: str = ", ") -> str:
    """The first ``limit`` of ``keys`` and how many there are in all: ``a, b, … (12 in all)``."""
    return sep.join(keys[:limit]) + (f", … ({len(keys)} in all)" if len(keys) > limit else "")


def key_report(
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Tensor],
    *,
    what: str = "model",
    unexpected: bool = True,
    missing_title: str = "missing keys",
    limit: int = 8,
) -> str:
    """The one key-mismatch report of every strict load: ``""`` when ``state`` has the keys and shapes of
    ``expected``, else ``"missing keys: …; unexpected keys: …; shape mismatches: k: file (7, 128) vs model
    (8, 128)"``. ``unexpected=False`` ignores extra keys (an encoder loaded from a whole model's file)."""
    groups = (
        (missing_title, sorted(set(expected) - set(state))),
        ("unexpected keys", sorted(set(state) - set(expected)) if unexpected else []),
        ("shape mismatches", [f"{k}: file {tuple(state[k].shape)} vs {what} {tuple(v.shape)}"
                              for k, v in expected.items() if k in state and state[k].shape != v.shape]),
    )
    return "; ".join(f"{title}: {list_keys(keys, limit)}" for title, keys in groups if keys)


def check_weight_values(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], source: str) -> None:
    """Refuse tensors of another kind than the model's (a bool or integer tensor for float weights, or the
    reverse: they would be cast without a word) and NaN or infinite values, naming them."""
    wrong_kind = [f"{k}: file {state[k].dtype} vs model {v.dtype}" for k, v in expected.items()
                  if k in state and (state[k].is_floating_point() != v.is_floating_point()
                                     or (state[k].dtype == torch.bool) != (v.dtype == torch.bool)
                                     or state[k].is_complex() != v.is_complex())]
    if wrong_kind:
        raise WeightsError(f"{source}: tensors of the wrong type ({list_keys(wrong_kind, sep='; ')}); the file was "
                           f"not written for this model, or was altered.")
    bad = [k for k in expected if k in state and state[k].is_floating_point() and not torch.isfinite(state[k]).all()]
    if bad:
        raise WeightsError(f"{source}: NaN or infinite values in {list_keys(bad)}; such weights give NaN "
                           f"predictions. Use an earlier checkpoint, or retrain.")


def load_weights_from_state(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model`` strictly; ``source`` names where it came from in the error."""
    expected = model.state_dict()
    report = key_report(state, expected)
    if report:
        raise WeightsError(
            f"{source} does not fit this model ({report}). Check that the weights belong to this "
            f"architecture and configuration (config.json next to them)."
        )
    check_weight_values(state, expected, source)
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
