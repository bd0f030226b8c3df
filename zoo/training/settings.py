"""Run settings (``zoo.train``'s run config) as one typed, validated structure: :class:`RunSettings`.

Recipes, ``KEY=VALUE`` overrides and ``run_config.json`` are plain dicts; :meth:`RunSettings.from_dict` is the one
place that checks them, before anything is built. An unknown key, or a value of the wrong type or range, raises
one :class:`RecipeError` naming the key, the value and what it must be (``epochs=abc`` -> ``setting
epochs='abc': must be an integer >= 1.``). :meth:`RunSettings.to_dict` gives the dict back (``run_config.json``),
and ``RunSettings.from_dict(s.to_dict()) == s``.

Two things are called ``data``: the run setting ``data`` (which datasets to read: ``data.train``,
``data.train_subset``, ...; the attribute :attr:`RunSettings.dataset`) and the model's
:class:`zoo.config.DataConfig` (image sizes and normalisation: ``model_args.data.face_size``). Their field names
do not overlap, so an override ``data.face_size=[64,64]`` is routed to ``model_args.data.face_size``
(:func:`zoo.training.recipes.apply_overrides`).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from zoo.config import DataConfig, ModelConfig, is_int, is_real
from zoo.data.transforms import parse_augment
from zoo.errors import DataError, ZooError
from zoo.runtime import AMP_MODES, DeviceError, cpu_threads, resolve_device


class RecipeError(ZooError, ValueError):
    """An unknown recipe, or a run setting that is unknown or has a bad value."""


SCHEDULES = ("constant", "step", "multistep", "cosine")
#: optimizer.name -> torch optimiser (the other optimizer.* settings are its keyword arguments)
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def _int(low: int | None = None, high: int | None = None, optional: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None and optional:
            return None
        if not is_int(value) or (low is not None and value < low) or (high is not None and value > high):
            rng = f" >= {low}" if high is None and low is not None else (f" in {low}..{high}" if low is not None else "")
            return f"an integer{rng}" + (" or null" if optional else "")
        return None

    return check


def _number(positive: bool = False, low: float | None = None, high: float | None = None,
            optional: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None and optional:
            return None
        ok = is_real(value) and (not positive or value > 0) and (low is None or value >= low) and (
            high is None or value <= high)
        if not ok:
            what = "a positive number" if positive else "a finite number"
            if low is not None or high is not None:
                what += f" in [{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
            return what + (" or null" if optional else "")
        return None

    return check


def _bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "true or false"


def _str(optional: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if (value is None and optional) or (isinstance(value, str) and value):
            return None
        return "a non-empty string" + (" or null" if optional else "")

    return check


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else f"one of {', '.join(choices)}"

    return check


def _dict(optional: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if (value is None and optional) or isinstance(value, dict):
            return None
        return "a dict" + (" or null" if optional else "")

    return check


def _any(value: Any) -> str | None:
    return None


def _pretrained(value: Any) -> str | None:
    return None if isinstance(value, (bool, str)) else "true, false, 'preset.tag', 'hf-hub:ORG/NAME' or 'local-dir:DIR'"


MIX_KEYS = ("spec", "split", "options", "repeat")


def _mix(value: Any) -> str | None:
    what = ('a list of {"spec": "NAME:PATH", "split": "train", "options": {...}, "repeat": N} (split, options and '
            'repeat optional)')
    if not isinstance(value, list):
        return what
    for part in value:
        if (not isinstance(part, dict) or set(part) - set(MIX_KEYS) or not isinstance(part.get("spec"), str)
                or not part["spec"] or not isinstance(part.get("split", "train"), str)
                or not isinstance(part.get("options", {}), dict)
                or not (is_int(part.get("repeat", 1)) and 1 <= part.get("repeat", 1) <= 1000)):
            return what
    return None


def _milestones(value: Any) -> str | None:
    if isinstance(value, list) and all(is_int(m) and m >= 0 for m in value):
        return None
    return "a list of epoch numbers (integers >= 0)"


def _betas(value: Any) -> str | None:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(is_real(b) and 0 <= b < 1 for b in value):
        return None
    return "two numbers in [0, 1)"


def _bool_or_none(value: Any) -> str | None:
    return None if value is None or isinstance(value, bool) else "true or false"


def _betas_or_none(value: Any) -> str | None:
    return None if value is None else _betas(value)


def _threads(value: Any) -> str | None:
    if value is None:
        return None
    try:
        cpu_threads(value)
    except ValueError as exc:
        raise RecipeError(f"{exc} (setting threads=...; e.g. threads=1 or threads=auto)") from None
    return None


def _device(value: Any) -> str | None:
    try:
        resolve_device(value)
    except DeviceError as exc:
        raise RecipeError(str(exc)) from None
    return None


def _optimizer_name(value: Any) -> str | None:
    if str(value).lower() not in OPTIMIZERS:
        raise RecipeError(f"Unknown optimizer {value!r} (optimizer.name); use one of {', '.join(OPTIMIZERS)}.")
    return None


def setting(default: Any, check: Callable[[Any], str | None], key: str | None = None) -> Any:
    """A dataclass field with its check (returns what the value must be, or None) and, when it differs from
    the attribute name, its key in the dict form."""
    metadata = {"check": check, "key": key}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def section(cls: type, key: str | None = None) -> Any:
    """A nested settings section (a dataclass of its own, a dict in the dict form)."""
    return field(default_factory=cls, metadata={"section": cls, "key": key})


def _key(f: dataclasses.Field) -> str:
    return f.metadata.get("key") or f.name


class _Section:
    """from_dict / to_dict for a settings dataclass; ``extra_keys`` lets a section accept more keys."""

    def extra_keys(self, values: dict[str, Any]) -> tuple[str, ...]:
        return ()

    def check(self, prefix: str) -> None:
        """Checks across fields, after each field's own check."""

    @classmethod
    def keys(cls) -> list[str]:
        return [_key(f) for f in dataclasses.fields(cls) if f.name != "extra"]

    @classmethod
    def from_dict(cls, values: Any, prefix: str = "") -> Any:
        if not isinstance(values, dict):
            raise RecipeError(f"setting {prefix[:-1]}={values!r}: must be a dict.")
        fields = {_key(f): f for f in dataclasses.fields(cls) if f.name != "extra"}
        extra_ok = cls.extra_keys(cls, values)  # type: ignore[arg-type]
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in values.items():
            f = fields.get(key)
            if f is None:
                if key not in extra_ok:
                    raise RecipeError(unknown_setting(prefix + key))
                extra[key] = copy.deepcopy(value)
            elif "section" in f.metadata:
                kwargs[f.name] = f.metadata["section"].from_dict(value, f"{prefix}{key}.")
            else:
                problem = f.metadata["check"](value)
                if problem is not None:
                    raise RecipeError(f"setting {prefix}{key}={value!r}: must be {problem}.")
                kwargs[f.name] = copy.deepcopy(value)
        if extra:
            kwargs["extra"] = extra
        settings = cls(**kwargs)
        settings.check(prefix)
        return settings

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "extra":
                out.update(copy.deepcopy(value))
            elif "section" in f.metadata:
                out[_key(f)] = value.to_dict()
            elif not (value is None and f.metadata.get("omit_none")):
                out[_key(f)] = copy.deepcopy(value)
        return out


@dataclass
class DatasetSettings(_Section):
    """``data.*``: which datasets the run reads (the model's image sizes are ``model_args.data.*``)."""

    #: dataset specs (``caer_s:/data/CAER-S``, ``synth_caer``); ``val`` defaults to ``train`` at ``val_split``
    train: str | None = setting(None, _str(optional=True))
    val: str | None = setting(None, _str(optional=True))
    train_split: str = setting("train", _str())
    val_split: str = setting("val", _str())
    #: any other reader option (``cache``, ``votes``, ``n``, ...), checked by the reader
    options: dict[str, Any] | None = setting({}, _dict(optional=True))
    #: training split only (:mod:`zoo.training.train_data`): ``{"size"|"fraction", "seed"}``
    train_subset: dict[str, Any] | None = setting(None, _dict(optional=True))
    #: training split only: ``{"fraction", "seed", "mode"}``
    label_noise: dict[str, Any] | None = setting(None, _dict(optional=True))
    #: the training split is seen this many times per epoch (weights it against ``mix``)
    repeat: int = setting(1, _int(1, 1000))
    #: more training data, appended to the training split: ``[{"spec": "fer2013:/data/fer2013", "split":
    #: "train", "options": {...}, "repeat": 1}]``; every part must have the training split's classes
    mix: list[dict[str, Any]] = setting([], _mix)

    def check(self, prefix: str) -> None:
        options = self.options or {}
        if not all(isinstance(k, str) for k in options):
            raise RecipeError(f"{prefix}options: option names must be strings, got {list(options)!r}.")
        moved = sorted({"face_augment", "context_augment"} & set(options))
        if moved:
            raise RecipeError(f"{prefix}options.{moved[0]} is not a run setting: set augmentation.face / "
                              f"augmentation.context (applied to the training split only, and recorded in "
                              f"run_config.json).")


@dataclass
class OptimizerSettings(_Section):
    """``optimizer.*``: the torch optimiser and its keyword arguments (unset ones keep torch's defaults)."""

    name: str = setting("adam", _optimizer_name)
    lr: float = setting(1e-3, _number(low=0.0))
    momentum: float | None = setting(None, _number(low=0.0, optional=True))
    nesterov: bool | None = setting(None, _bool_or_none)
    weight_decay: float | None = setting(None, _number(low=0.0, optional=True))
    eps: float | None = setting(None, _number(positive=True, optional=True))
    betas: list[float] | None = setting(None, _betas_or_none)
    #: other keyword arguments of the optimiser (e.g. ``optimizer.amsgrad=true`` for adam)
    extra: dict[str, Any] = field(default_factory=dict)

    def extra_keys(self, values: dict[str, Any]) -> tuple[str, ...]:
        cls = OPTIMIZERS.get(str(values.get("name", "adam")).lower())
        if cls is None:
            return ()
        return tuple(p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "params"))

    def check(self, prefix: str) -> None:
        accepted = OptimizerSettings.extra_keys(self, {"name": self.name})
        for key, value in self.kwargs().items():
            if key not in accepted:
                raise RecipeError(f"setting {prefix}{key}={value!r}: optimizer {self.name!r} takes no {key!r}; "
                                  f"its settings: {', '.join(accepted)}.")

    def kwargs(self) -> dict[str, Any]:
        """The optimiser's keyword arguments: every setting but ``name`` that is set."""
        return {k: v for k, v in self.to_dict().items() if k != "name"}

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        return {k: v for k, v in out.items() if v is not None or k in self.extra}


@dataclass
class ScheduleSettings(_Section):
    """``schedule.*``: lr(epoch) = lr · factor(epoch), then max(., min_lr) (:func:`zoo.training.recipes.lr_factor`)."""

    name: str = setting("constant", _choice(SCHEDULES))
    step_size: int | None = setting(None, _int(1, optional=True))
    milestones: list[int] = setting([], _milestones)
    gamma: float = setting(0.1, _number(positive=True))
    min_lr: float = setting(0.0, _number(low=0.0))
    warmup_epochs: int = setting(0, _int(0))

    def check(self, prefix: str) -> None:
        if self.name == "step" and not self.step_size:
            raise RecipeError(f"schedule 'step' needs {prefix}step_size (epochs between decays).")


@dataclass
class AugmentationSettings(_Section):
    """``augmentation.*``: applied to the training split only; names or sets from
    :data:`zoo.data.transforms.AUGMENT_PRESETS` (the context's random crop is part of every training pipeline)."""

    face: Any = setting(None, _any)
    context: Any = setting(None, _any)

    @classmethod
    def from_dict(cls, values: Any, prefix: str = "") -> AugmentationSettings:
        if values is None:
            return cls()
        if not isinstance(values, dict) or set(values) - {"face", "context"}:
            raise RecipeError(f"augmentation must be {{'face': NAMES, 'context': NAMES}} (e.g. "
                              f"augmentation.face=ldlva), got {values!r}.")
        return super().from_dict(values, prefix)

    def check(self, prefix: str) -> None:
        for stream in ("face", "context"):
            try:
                parse_augment(getattr(self, stream))
            except DataError as exc:
                raise RecipeError(f"{prefix}{stream}: {exc}") from None


@dataclass
class RunSettings(_Section):
    """Every setting of a training run; the dict form is ``run_config.json``."""

    #: the recipe the run started from (:data:`zoo.training.recipes.RECIPES`), ``default`` for none
    recipe: str = setting("default", _str())
    #: preset, ``local-dir:DIR`` or ``hf-hub:ORG/NAME``
    model: str | None = setting(None, _str(optional=True))
    #: ``zoo.create`` arguments (ModelConfig fields), checked by the model config when the model is built
    model_args: dict[str, Any] = setting({}, _dict())
    dataset: DatasetSettings = section(DatasetSettings, key="data")
    optimizer: OptimizerSettings = section(OptimizerSettings)
    schedule: ScheduleSettings = section(ScheduleSettings)
    #: the global batch (each of N DDP ranks takes batch_size / N)
    batch_size: int = setting(32, _int(1))
    eval_batch_size: int | None = setting(None, _int(1, optional=True))
    epochs: int = setting(10, _int(1))
    max_steps_per_epoch: int | None = setting(None, _int(1, optional=True))
    drop_last: bool = setting(False, _bool)
    #: patience in epochs without improvement of ``monitor``
    early_stopping: int | None = setting(None, _int(1, optional=True))
    monitor: str = setting("accuracy", _str())
    #: max global L2 norm
    grad_clip: float | None = setting(None, _number(positive=True, optional=True))
    seed: int = setting(0, _int(0, 2**63 - 1))
    deterministic: bool = setting(False, _bool)
    #: none | bf16 | fp16 (fp16 needs CUDA)
    amp: str = setting("none", _choice(AMP_MODES))
    channels_last: bool = setting(False, _bool)
    compile: bool = setting(False, _bool)
    #: torch CPU threads: None = torch's default, N, or "auto" (cores not busy with other load)
    threads: int | str | None = setting(None, _threads)
    device: str = setting("auto", _device)
    num_workers: int = setting(0, _int(0, 256))
    #: also checkpoint every N optimiser steps (always at each epoch end)
    checkpoint_every: int | None = setting(None, _int(1, optional=True))
    progress: bool = setting(True, _bool)
    tensorboard: bool = setting(False, _bool)
    augmentation: AugmentationSettings = section(AugmentationSettings)
    #: which epoch's weights OUT/best holds: "best" on the validation monitor, or "last" (a fixed schedule
    #: whose final weights are released, so the validation split never picks the model)
    keep: str = setting("best", _choice(("best", "last")))
    #: initial backbone weights (zoo.create's backbone_pretrained): false = from scratch; true = timm's
    #: published ImageNet weights; "hf-hub:ORG/NAME" / "local-dir:DIR" = a face-recognition trunk
    backbone_pretrained: bool | str = setting(False, _pretrained)
    #: the whole model starts from these trained weights (a preset's tag such as ``fer_cnn.fer2013``,
    #: ``local-dir:DIR``, ``hf-hub:ORG/NAME``), loaded strictly: fine-tuning; null = as built
    init_weights: str | None = setting(None, _str(optional=True))
    #: the classifier starts from this face-only model's (a tag such as ``fer_cnn.fer2013_expw``): a two-stream
    #: model then begins at the face model's predictions, its context half at zero; null = as built
    head_init: str | None = setting(None, _str(optional=True))
    #: what the paper started from, for the record (the run uses backbone_pretrained)
    paper_backbone_init: str = setting("from scratch", _str())

    #: settings that may change when a run is resumed
    RESUMABLE: ClassVar[tuple[str, ...]] = (
        "epochs", "progress", "tensorboard", "num_workers", "early_stopping", "device", "threads")

    def changed_on_resume(self, stored: dict[str, Any]) -> list[str]:
        """The settings other than :attr:`RESUMABLE` in which this run differs from the stored run config."""
        mine = self.to_dict()
        theirs = RunSettings.from_dict({**stored, **{k: mine[k] for k in self.RESUMABLE}}).to_dict()
        return sorted(k for k in mine.keys() | theirs.keys() if k not in self.RESUMABLE and mine.get(k) != theirs.get(k))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


def unknown_setting(key: str) -> str:
    """The one message for a key that names no setting."""

    parts = key.split(".")
    sections = {_key(f): f.metadata["section"] for f in dataclasses.fields(RunSettings) if "section" in f.metadata}
    if len(parts) == 1:
        model_fields = sorted(f.name for f in dataclasses.fields(ModelConfig))
        return (f"Unknown setting {key!r}. Run settings: {', '.join(sorted(RunSettings.keys()))}; model fields "
                f"(set directly, e.g. attention=ca): {', '.join(model_fields)}.")
    owner = sections.get(parts[0])
    valid = ", ".join(owner.keys()) if owner is not None else ""
    hint = " and the optimiser's other keyword arguments (e.g. amsgrad for adam)" if parts[0] == "optimizer" else ""
    if parts[0] == "data" and parts[1] in {f.name for f in dataclasses.fields(DataConfig)}:
        hint = (f" (image sizes and normalisation are model settings: data.{parts[1]} -> "
                f"model_args.data.{parts[1]})")
    return f"Unknown setting {key!r}; valid {parts[0]} settings: {valid}{hint}."


def check_eval_settings(batch_size: Any, amp: Any) -> None:
    """``zoo.evaluate``'s batch size (an integer >= 1) and AMP mode (none, bf16, fp16)."""
    if not is_int(batch_size) or batch_size < 1:
        raise RecipeError(f"batch_size must be an integer >= 1, got {batch_size!r}.")
    if amp not in AMP_MODES:
        raise RecipeError(f"amp must be one of {', '.join(AMP_MODES)}, got {amp!r}.")


def parse_value(text: str) -> Any:
    """JSON when it parses (numbers, true/false/null, lists, objects), the plain string otherwise."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_key_values(items: list[str], what: str) -> dict[str, Any]:
    """``["a=1", "b.c=x"]`` -> ``{"a": 1, "b.c": "x"}`` (values through :func:`parse_value`): the one parser of
    ``KEY=VALUE`` arguments (run overrides, ablation overrides, reader options)."""
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RecipeError(f"{what} {item!r} is not KEY=VALUE (e.g. epochs=5, optimizer.lr=0.01).")
        pairs[key.strip()] = parse_value(value)
    return pairs
