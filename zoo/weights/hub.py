"""Hugging Face Hub downloads: one file or one model's files of one commit into the standard cache.

Files are fetched with huggingface_hub's ``hf_hub_download`` (a branch or tag resolved to one commit, as timm's
``hf-hub:`` names are). The settings come from one frozen :class:`HubSettings`, read from the environment when
a download starts (huggingface_hub reads ``HF_ENDPOINT``, ``HF_HOME`` / ``HF_HUB_CACHE`` and the token once, at
its import; a mirror or cache set later must count) and passed explicitly to every ``huggingface_hub`` call:
``endpoint``, ``cache_dir``, ``local_files_only`` and ``token``. Nothing global is changed: huggingface_hub owns
its own offline mode, and a process that imported it under ``HF_HUB_OFFLINE=1`` stays offline (timm leaves
huggingface_hub its environment the same way). Which files a model name means is :mod:`zoo.weights.sources`;
uploads are :mod:`zoo.publish.push`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import TRANSPORT_ERRORS, HubError, optional_exceptions
from zoo.names import SHA_RE, check_revision
from zoo.version import __version__
from zoo.weights.files import CONFIG_NAME, WEIGHTS_NAME, read_config

LIBRARY_NAME = "emotion-zoo"
DEFAULT_ENDPOINT = "https://huggingface.co"
_TRUE = {"1", "on", "yes", "true"}


def _hf_home(environ: Mapping[str, str]) -> str:
    """``HF_HOME``, else ``$XDG_CACHE_HOME/huggingface`` (default ``~/.cache/huggingface``), as huggingface_hub."""
    home = environ.get("HF_HOME") or os.path.join(environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return os.path.expanduser(home)


def _read_token(environ: Mapping[str, str]) -> str | None:
    """``HF_TOKEN`` (or ``HUGGING_FACE_HUB_TOKEN``), else the token file (``HF_TOKEN_PATH``, default
    ``$HF_HOME/token``, as ``hf auth login`` writes it); None when there is none (huggingface_hub then applies
    its own fallbacks, e.g. a notebook secret)."""
    token = environ.get("HF_TOKEN") or environ.get("HUGGING_FACE_HUB_TOKEN")
    if not token:
        path = os.path.expanduser(environ.get("HF_TOKEN_PATH") or os.path.join(_hf_home(environ), "token"))
        try:
            with open(path, encoding="utf-8") as f:
                token = f.read()
        except OSError:
            token = None
    return (token or "").strip() or None


@dataclass(frozen=True)
class HubSettings:
    """What every ``huggingface_hub`` call of one download or upload is given, read once
    (:meth:`from_env`): the endpoint, the cache folder, whether to stay offline and the token."""

    endpoint: str
    cache_dir: str
    offline: bool
    token: str | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, token: str | None = None) -> HubSettings:
        """The settings ``environ`` (default: ``os.environ`` now) gives, ``token`` (an argument) before the
        configured one. Offline when ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` is set now or was set when
        huggingface_hub was imported (its HTTP layer then refuses every request)."""
        env = os.environ if environ is None else environ
        cache = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
        offline_value = env.get("HF_HUB_OFFLINE") or env.get("TRANSFORMERS_OFFLINE") or ""
        return cls(
            endpoint=(env.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/"),
            cache_dir=os.path.expanduser(cache) if cache else os.path.join(_hf_home(env), "hub"),
            offline=offline_value.strip().lower() in _TRUE or _hub_offline_at_import(),
            token=token or _read_token(env),
        )


def _hub_offline_at_import() -> bool:
    """huggingface_hub's own offline mode (``HF_HUB_OFFLINE`` as it was when huggingface_hub was imported)."""
    import sys

    constants = sys.modules.get("huggingface_hub.constants")
    return bool(constants is not None and constants.is_offline_mode())


def hub_endpoint() -> str:
    """``HF_ENDPOINT`` read now, else ``https://huggingface.co``."""
    return HubSettings.from_env().endpoint


def hub_cache_dir() -> str:
    """The standard Hub cache, from ``HF_HUB_CACHE`` / ``HF_HOME`` read now."""
    return HubSettings.from_env().cache_dir


def hub_offline() -> bool:
    """Offline now (:meth:`HubSettings.from_env`)."""
    return HubSettings.from_env().offline


def hub_token() -> str | None:
    """The Hub token as configured now (:meth:`HubSettings.from_env`)."""
    return HubSettings.from_env().token


def transport_errors() -> tuple[type[BaseException], ...]:
    """The network error classes huggingface_hub may let through, as installed here
    (:data:`zoo.errors.TRANSPORT_ERRORS`)."""
    return optional_exceptions(*TRANSPORT_ERRORS)


def _prefetch_hint(repo_id: str, revision: str | None, settings: HubSettings) -> str:
    pin = f"@{revision}" if revision else ""
    return (
        f"Prefetch it while online with `zoo-cli pull hf-hub:{repo_id}{pin}` (files go to the Hugging Face "
        f"cache, {settings.cache_dir}; set HF_HUB_CACHE/HF_HOME to use another), point HF_ENDPOINT at a "
        f"reachable mirror, or download config.json and model.safetensors yourself and use 'local-dir:DIR'."
    )


def hub_download(repo_id: str, filename: str, revision: str | None = None,
                 settings: HubSettings | None = None) -> Path:
    """Fetch one file of a model repo into the Hub cache (or find it there) and return its local path.

    ``settings`` default to :meth:`HubSettings.from_env` read now. Every failure is a :class:`HubError` naming
    the repo, file and revision.
    """
    from huggingface_hub import errors as hf_errors
    from huggingface_hub import hf_hub_download


    check_revision(revision, f"Hub repo {repo_id!r}")
    where = f"{filename!r} of Hub repo {repo_id!r} at revision {revision or 'main'!r}"
    settings = settings or HubSettings.from_env()
    try:
        path = hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            cache_dir=settings.cache_dir,
            local_files_only=settings.offline,
            endpoint=settings.endpoint,
            token=settings.token,
            library_name=LIBRARY_NAME,
            library_version=__version__,
        )
    except hf_errors.GatedRepoError as exc:
        raise HubError(f"Cannot fetch {where}: the repo is gated; accept its terms on the Hub and log in "
                       f"(`hf auth login` or HF_TOKEN).") from exc
    except hf_errors.RepositoryNotFoundError as exc:
        raise HubError(f"Cannot fetch {where}: no such repo at {settings.endpoint} (or it is "
                       f"private: log in with `hf auth login` or set HF_TOKEN).") from exc
    except hf_errors.RevisionNotFoundError as exc:
        raise HubError(f"Cannot fetch {where}: the repo has no such branch, tag or commit.") from exc
    except hf_errors.LocalEntryNotFoundError as exc:
        reason = "HF_HUB_OFFLINE is set and" if settings.offline else "the Hub could not be reached and"
        raise HubError(f"Cannot fetch {where}: {reason} the file is not in the cache. "
                       f"{_prefetch_hint(repo_id, revision, settings)}") from exc
    except hf_errors.EntryNotFoundError as exc:
        raise HubError(f"Cannot fetch {where}: the repo has no such file at that revision.") from exc
    except (hf_errors.HfHubHTTPError, OSError) as exc:
        raise HubError(f"Cannot fetch {where}: {exc}. {_prefetch_hint(repo_id, revision, settings)}") from exc
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
    path = hub_download(repo_id, filename, revision, HubSettings.from_env())
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
    settings = HubSettings.from_env()  # read once: both files with the same settings
    config_path = hub_download(repo_id, config_filename, revision, settings)
    commit = _snapshot_commit(config_path, config_filename)
    read_config(config_path)  # a config.json that may not be loaded is refused before the weights are fetched
    weights_path = hub_download(repo_id, filename, commit, settings)
    return config_path, weights_path, commit
