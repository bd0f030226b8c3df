"""The one grammar of names: every string that names a model, a weights source or a data source is parsed here.

=============================  ==========================================================================
``preset[.tag]``               a registered preset, optionally one of its pretrained tags (timm's rule:
                               split on the first dot): ``glamor_net``, ``fer_cnn.expw``
``hf-hub:ORG/NAME[@REV]``      a Hugging Face Hub repo, optionally pinned to a branch, tag or commit
                               (timm's ``hf-hub:`` names; ``hf_hub:`` is accepted too)
``local-dir:DIR``              a directory written by ``zoo.save_pretrained`` (``local_dir:`` too)
``FAMILY:NAME``                a component of a prefix family, e.g. the backbone ``timm:convnext_atto``
``NAME:PATH``                  a dataset spec, e.g. ``caer_s:/data/CAER-S`` (``NAME`` alone: no path)
``teacher:SPEC``               an LDL-VA auxiliary space: pseudo-VA from the model ``SPEC`` (any model
``embedding:SPEC``             name above), or its feature vectors; ``dataset``: the dataset's own VA
=============================  ==========================================================================

Parsing is pure: nothing here reads a file, the network or a registry. A Hub repo id and revision are checked
when parsed (a revision becomes a file name in the Hub cache), so a malformed name fails before any request.
Resolving a parsed name to files is :func:`zoo.weights.sources.resolve`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from zoo.errors import HubError, ZooError

#: the prefixes of model names that are not presets
MODEL_SOURCES = ("hf-hub", "local-dir")
#: the kinds of an LDL-VA ``auxiliary`` setting
AUXILIARY_KINDS = ("dataset", "teacher", "embedding")
#: a commit sha as the Hub writes it
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
#: the longest branch or tag name accepted in a revision (a commit sha is 40 hex digits)
MAX_REVISION_LENGTH = 200
_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+/-]*$")


class ModelNameError(ZooError, ValueError):
    """A string that does not follow the name grammar of :mod:`zoo.names`."""


@dataclass(frozen=True)
class ModelName:
    """A parsed model name. ``source`` is ``"preset"``, ``"hf-hub"`` or ``"local-dir"``; the other fields are
    those of that source (``arch``/``tag``; ``repo_id``/``revision``; ``path``), the rest None."""

    text: str
    source: str
    rest: str
    arch: str | None = None
    tag: str | None = None
    repo_id: str | None = None
    revision: str | None = None
    path: str | None = None

    @property
    def is_preset(self) -> bool:
        return self.source == "preset"


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"HEAD:REST"`` -> ``("HEAD", "REST")``, split on the first colon; no colon -> ``(spec, None)``."""
    head, sep, rest = spec.partition(":")
    return head, (rest if sep else None)


def split_model_name_tag(name: str) -> tuple[str, str | None]:
    """``"fer_cnn.expw"`` -> ``("fer_cnn", "expw")`` (timm's rule: split on the first dot)."""
    arch, _, tag = name.partition(".")
    return arch, (tag or None)


def check_revision(revision: str | None, where: str = "revision") -> str | None:
    """A Hub revision, checked before any request: a 40-hex commit, or a git-safe branch / tag name.

    The Hub cache stores a branch or tag as the file ``refs/<revision>``, so a revision such as
    ``../../../x`` or ``/abs/path`` would write outside the cache: only letters, digits and ``. _ - + /`` are
    accepted, starting with a letter or digit, with no ``..``, ``//``, component starting with ``.`` or
    ending in ``.lock``, no trailing ``/`` or ``.``, at most :data:`MAX_REVISION_LENGTH` characters.
    """
    if revision is None:
        return None
    if isinstance(revision, str) and SHA_RE.match(revision):
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


def parse_model_name(name: str) -> tuple[str | None, str]:
    """Split ``"hf-hub:org/x"`` / ``"local-dir:/p"`` into source and rest; reject bare paths and repo ids.

    A preset name gives ``(None, name)``. The tuple form of :func:`parse` (``zoo.parse_model_name``).
    """
    head, rest = split_spec(name)
    if rest is not None and head.replace("_", "-") in MODEL_SOURCES:
        return head.replace("_", "-"), rest
    if any(sep in name for sep in ("/", "\\", ":")):
        raise ModelNameError(
            f"{name!r} is not a model name. For a Hugging Face Hub repo write 'hf-hub:{name}', "
            f"for a local directory written by zoo.save_pretrained write 'local-dir:{name}'."
        )
    return None, name


def parse(name: str) -> ModelName:
    """Parse a model name into its parts; a Hub repo id and revision are checked (:func:`split_repo_revision`).

    >>> parse("fer_cnn.expw").tag
    'expw'
    """
    if not isinstance(name, str) or not name:
        raise ModelNameError(f"A model name must be a non-empty string, got {name!r}.")
    source, rest = parse_model_name(name)
    if source == "hf-hub":
        repo_id, revision = split_repo_revision(rest)
        return ModelName(name, source, rest, repo_id=repo_id, revision=revision)
    if source == "local-dir":
        if rest.startswith("~") and os.path.expanduser(rest) == rest:  # Path.expanduser would raise RuntimeError
            raise ModelNameError(f"{name!r}: {rest.split('/')[0]!r} names no user's home directory here; give the "
                                 f"directory's full path.")
        return ModelName(name, source, rest, path=rest)
    arch, tag = split_model_name_tag(rest)
    return ModelName(name, "preset", rest, arch=arch, tag=tag)


def parse_auxiliary(source: str) -> tuple[str, str | None]:
    """An LDL-VA ``auxiliary`` setting: ``"dataset"`` -> ``("dataset", None)``; ``"teacher:SPEC"`` /
    ``"embedding:SPEC"`` -> ``("teacher", SPEC)`` / ``("embedding", SPEC)``, SPEC a model name."""
    if source == "dataset":
        return "dataset", None
    kind, spec = split_spec(source)
    if kind in ("teacher", "embedding") and spec:
        return kind, spec
    raise ModelNameError(
        f"auxiliary={source!r} is not understood; use 'dataset', 'teacher:MODEL' (pseudo-VA from a zoo model, "
        f"e.g. 'teacher:local-dir:runs/fer'), 'embedding:MODEL', or pass an N×D tensor."
    )
