"""Hugging Face Hub downloads: one file or one model's files of one commit into the standard cache.

Files are fetched with huggingface_hub's ``hf_hub_download`` (a branch or tag resolved to one commit, as timm's
``hf-hub:`` names are). ``huggingface_hub`` reads ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_HOME`` /
``HF_HUB_CACHE`` and the token location once, when it is imported. This module reads them itself on every call
and passes ``endpoint``, ``local_files_only``, ``cache_dir`` and ``token`` explicitly to every
``huggingface_hub`` call; its HTTP layer's own offline switch (``huggingface_hub.constants.HF_HUB_OFFLINE``,
which refuses every request whatever ``local_files_only`` says) is set from the environment for the duration
of each call (:func:`hub_call`). Which files a model name means is :mod:`zoo.weights.sources`; uploads are
:mod:`zoo.publish.push`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from zoo.errors import TRANSPORT_ERRORS, HubError, optional_exceptions
from zoo.names import SHA_RE, check_revision
from zoo.version import __version__
from zoo.weights.files import CONFIG_NAME, WEIGHTS_NAME, read_config

LIBRARY_NAME = "emotion-zoo"
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
def hub_call() -> Iterator[None]:
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

def transport_errors() -> tuple[type[BaseException], ...]:
    """The network error classes huggingface_hub may let through, as installed here
    (:data:`zoo.errors.TRANSPORT_ERRORS`)."""
    return optional_exceptions(*TRANSPORT_ERRORS)


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


    check_revision(revision, f"Hub repo {repo_id!r}")
    where = f"{filename!r} of Hub repo {repo_id!r} at revision {revision or 'main'!r}"
    offline = hub_offline()
    try:
        with hub_call():
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
    if snapshot.parent.name != "snapshots" or not SHA_RE.match(snapshot.name):
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
