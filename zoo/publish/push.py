"""Uploads to the Hugging Face Hub, as timm's ``push_to_hf_hub``: config.json, weights and model card in one commit.

``zoo-cli push`` takes a model directory or a training run directory (:mod:`zoo.training.rundir`): the run's
``best/`` model is uploaded with a card whose model-index comes from its ``eval.json``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zoo.config import ModelConfig
from zoo.errors import HubError
from zoo.models.info import count_parameters
from zoo.models.model import EmotionModel
from zoo.names import check_revision, split_repo_revision
from zoo.publish.cards import render_card, weights_file_summary
from zoo.training.rundir import BEST_DIR, EVAL_JSON, RUN_CONFIG
from zoo.version import __version__
from zoo.weights.files import CONFIG_NAME, WEIGHTS_NAME, load_weights, read_config
from zoo.weights.hub import LIBRARY_NAME, HubSettings, transport_errors

README_NAME = "README.md"


def resolve_push_source(
    path: str | os.PathLike, evaluations: Sequence[str | os.PathLike] | None = None
) -> tuple[Path, dict[str, Any] | None, dict[str, Any] | list[dict[str, Any]] | None]:
    """A model dir (config.json + model.safetensors) or a training run dir (``best/``, ``run_config.json``,
    ``eval.json``) -> ``(model_dir, run_config or None, evaluation or None)``; ``evaluations`` (``--eval``
    files) replace the run's ``eval.json``."""
    source = _find_push_source(path)
    return (source[0], source[1], read_evaluations(evaluations)) if evaluations else source


def _find_push_source(path: str | os.PathLike) -> tuple[Path, dict[str, Any] | None, dict[str, Any] | None]:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise HubError(f"{path}: not a directory; push a model directory or a training run directory.")
    if (path / CONFIG_NAME).is_file() and (path / WEIGHTS_NAME).is_file():
        return path, None, None
    best = path / BEST_DIR
    if (best / CONFIG_NAME).is_file() and (best / WEIGHTS_NAME).is_file():
        extras = []
        for name in (RUN_CONFIG, EVAL_JSON):
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
        f"({BEST_DIR}/{CONFIG_NAME} + {BEST_DIR}/{WEIGHTS_NAME}, with {RUN_CONFIG} and {EVAL_JSON})."
    )


def read_evaluations(paths: Sequence[str | os.PathLike]) -> list[dict[str, Any]]:
    """``zoo-cli eval --json`` outputs (or ``eval.json`` files) for the card, in the order given: the first is
    the headline (single crop), later ones add columns (e.g. ``--tta flip``)."""
    evaluations = []
    for path in paths:
        path = Path(path).expanduser()
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise HubError(f"--eval {path}: cannot read it ({exc}); pass the JSON that `zoo-cli eval --json` "
                           f"prints.") from exc
        except json.JSONDecodeError as exc:
            raise HubError(f"--eval {path}: not valid JSON ({exc}); pass the output of `zoo-cli eval --json`.") from exc
        if not isinstance(value, dict) or not isinstance(value.get("accuracy"), (int, float)):
            raise HubError(f"--eval {path}: not an evaluation (a JSON object with 'accuracy'); pass the output of "
                           f"`zoo-cli eval MODEL --data DATA --json`.")
        evaluations.append(value)
    return evaluations


def checked_model_dir(model_dir: Path) -> tuple[ModelConfig, int]:
    """Read ``config.json`` and load the weights strictly into the model it describes, once, so bad weights are
    refused before anything is written or sent; returns the config and the trainable parameter count."""
    config, _ = read_config(model_dir / CONFIG_NAME)
    model = EmotionModel(config)
    load_weights(model, model_dir / WEIGHTS_NAME)
    return config, count_parameters(model)


def stage_push_folder(
    path: str | os.PathLike,
    repo_id: str,
    out: str | os.PathLike,
    *,
    license: str = "apache-2.0",
    card_template: str | os.PathLike | None = None,
    write_card: bool = True,
    evaluations: Sequence[str | os.PathLike] | None = None,
) -> dict[str, Any]:
    """Write exactly the files :func:`push_to_hub` uploads (config.json, model.safetensors and the README.md
    card, whose model-index comes from the run's ``eval.json``, or from ``evaluations``: files written by
    ``zoo-cli eval --json``) into ``out``: ``zoo-cli push --dry-run``.

    The weights are checked to load into the model their config.json describes first.
    """
    split_repo_revision(repo_id)
    source = resolve_push_source(path, evaluations)
    return _write_push_folder(source, checked_model_dir(source[0]), repo_id, out, license=license,
                              card_template=card_template, write_card=write_card)


def _write_push_folder(
    source: tuple[Path, dict[str, Any] | None, dict[str, Any] | list[dict[str, Any]] | None],
    checked: tuple[ModelConfig, int],
    repo_id: str,
    out: str | os.PathLike,
    *,
    license: str,
    card_template: str | os.PathLike | None,
    write_card: bool,
) -> dict[str, Any]:
    model_dir, run_config, evaluation = source
    config, parameters = checked
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_dir / CONFIG_NAME, out / CONFIG_NAME)
    shutil.copyfile(model_dir / WEIGHTS_NAME, out / WEIGHTS_NAME)
    files = [CONFIG_NAME, WEIGHTS_NAME]
    if write_card:
        card = render_card(config, repo_id, license=license, run_config=run_config, evaluation=evaluation,
                           parameters=parameters, template=card_template,
                           weights=weights_file_summary(out / WEIGHTS_NAME))
        (out / README_NAME).write_text(card, encoding="utf-8")
        files.append(README_NAME)
    return {"source": str(model_dir), "out": str(out), "files": files, "parameters": parameters}


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
    evaluations: Sequence[str | os.PathLike] | None = None,
) -> dict[str, Any]:
    """Upload config.json, model.safetensors and a README.md model card in one commit.

    The weights are checked to load into the model their config.json describes before anything is sent. An
    existing README.md on the target revision is kept unless ``overwrite_card``. Returns the commit id (to
    pin: ``hf-hub:REPO@COMMIT``), its URL, the PR URL with ``create_pr`` and whether a card was written.
    ``evaluations``: ``zoo-cli eval --json`` files for the card instead of the run's ``eval.json``.
    """
    import tempfile

    from huggingface_hub import HfApi
    from huggingface_hub import errors as hf_errors


    split_repo_revision(repo_id)
    check_revision(revision, "--revision")
    check_revision(tag, "--tag")
    if create_pr and revision not in (None, "main"):
        raise HubError(f"--create-pr opens a pull request against the default branch; drop --revision {revision}.")
    source = resolve_push_source(path, evaluations)
    model_dir = source[0]
    settings = HubSettings.from_env(token=token)
    if settings.offline:
        raise HubError(f"HF_HUB_OFFLINE is set: pushing {model_dir} to {repo_id!r} needs the network; unset it.")
    checked = checked_model_dir(model_dir)  # refuse bad weights before any request; staged from this load below

    api = HfApi(endpoint=settings.endpoint, token=settings.token, library_name=LIBRARY_NAME,
                library_version=__version__)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision not in (None, "main"):
            api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
        has_card = api.file_exists(repo_id, README_NAME, revision=revision, repo_type="model")
        write_card = overwrite_card or not has_card
        with tempfile.TemporaryDirectory(prefix="zoo-push-") as tmp:
            staging = Path(tmp)
            _write_push_folder(source, checked, repo_id, staging, license=license, card_template=card_template,
                               write_card=write_card)
            info = api.upload_folder(
                repo_id=repo_id,
                folder_path=staging,
                revision=revision,
                create_pr=create_pr,
                commit_message=commit_message or f"Add {checked[0].architecture or 'emotion-zoo'} weights",
            )
        if tag:
            api.create_tag(repo_id, tag=tag, revision=info.oid, repo_type="model")
    except (hf_errors.HfHubHTTPError, *transport_errors()) as exc:
        raise HubError(f"Pushing {model_dir} to {repo_id!r} at {settings.endpoint} failed: {exc}. "
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
