"""The declared schema of run settings (``zoo.train``'s run config): each setting's type and range, checked
before anything is built, so that ``epochs=abc`` or ``batch_size=0`` is an error naming the setting and the
value instead of a traceback minutes into the run.

Only the settings listed here are checked (``threads`` is checked by
:func:`zoo.training.engine.resolve_run_config` itself, ``augmentation`` by :func:`check_augmentation`); a
setting a recipe adds later is accepted as it is (the recipe's :func:`zoo.training.recipes.apply_overrides`
already refuses names it does not know).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zoo.config import is_int, is_real
from zoo.runtime import AMP_MODES, DeviceError, resolve_device
from zoo.training.recipes import RecipeError

SCHEDULES = ("constant", "step", "multistep", "cosine")


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


def _pretrained(value: Any) -> str | None:
    return None if isinstance(value, (bool, str)) else "true, false, 'hf-hub:ORG/NAME' or 'local-dir:DIR'"


def _milestones(value: Any) -> str | None:
    if isinstance(value, list) and all(is_int(m) and m >= 0 for m in value):
        return None
    return "a list of epoch numbers (integers >= 0)"


def _betas(value: Any) -> str | None:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(is_real(b) and 0 <= b < 1 for b in value):
        return None
    return "two numbers in [0, 1)"


#: setting -> check returning what the value must be (None when it is fine)
RUN_SCHEMA: dict[str, Callable[[Any], str | None]] = {
    "recipe": _str(),
    "model": _str(optional=True),
    "model_args": _dict(),
    "data": _dict(),
    "optimizer": _dict(),
    "schedule": _dict(),
    "batch_size": _int(1),
    "eval_batch_size": _int(1, optional=True),
    "epochs": _int(1),
    "max_steps_per_epoch": _int(1, optional=True),
    "drop_last": _bool,
    "early_stopping": _int(1, optional=True),
    "monitor": _str(),
    "grad_clip": _number(positive=True, optional=True),
    "seed": _int(0, 2**63 - 1),
    "deterministic": _bool,
    "amp": _choice(AMP_MODES),
    "keep": _choice(("best", "last")),
    "channels_last": _bool,
    "compile": _bool,
    "num_workers": _int(0, 256),
    "checkpoint_every": _int(1, optional=True),
    "progress": _bool,
    "tensorboard": _bool,
    "backbone_pretrained": _pretrained,
}
DATA_SCHEMA: dict[str, Callable[[Any], str | None]] = {
    "train": _str(optional=True),
    "val": _str(optional=True),
    "train_split": _str(),
    "val_split": _str(),
    "options": _dict(optional=True),
    "train_subset": _dict(optional=True),
    "label_noise": _dict(optional=True),
}
OPTIMIZER_SCHEMA: dict[str, Callable[[Any], str | None]] = {
    "name": _str(),
    "lr": _number(low=0.0),
    "momentum": _number(low=0.0),
    "weight_decay": _number(low=0.0),
    "eps": _number(positive=True),
    "nesterov": _bool,
    "betas": _betas,
}
SCHEDULE_SCHEMA: dict[str, Callable[[Any], str | None]] = {
    "name": _choice(SCHEDULES),
    "step_size": _int(1, optional=True),
    "milestones": _milestones,
    "gamma": _number(positive=True),
    "min_lr": _number(low=0.0),
    "warmup_epochs": _int(0),
}


def check_run_config(config: dict[str, Any]) -> None:
    """Check every setting :data:`RUN_SCHEMA` (and the ``data``, ``optimizer``, ``schedule`` sections) declares;
    the first bad value raises a :class:`RecipeError` naming the setting, the value and what it must be."""
    _check(config, RUN_SCHEMA, "")
    if "device" in config:
        try:
            resolve_device(config["device"])
        except DeviceError as exc:
            raise RecipeError(str(exc)) from None
    for section, schema in (("data", DATA_SCHEMA), ("optimizer", OPTIMIZER_SCHEMA), ("schedule", SCHEDULE_SCHEMA)):
        if isinstance(config.get(section), dict):
            _check(config[section], schema, f"{section}.")
    options = (config.get("data") or {}).get("options") or {}
    if not all(isinstance(k, str) for k in options):
        raise RecipeError(f"data.options: option names must be strings, got {list(options)!r}.")
    check_augmentation(config)


def check_augmentation(config: dict[str, Any]) -> None:
    """``augmentation`` is ``{"face": NAMES, "context": NAMES}``; augmentation lives nowhere else."""
    from zoo.data.transforms import parse_augment
    from zoo.errors import DataError

    aug = config.get("augmentation")
    if aug is None:
        config["augmentation"] = aug = {"face": None, "context": None}
    if not isinstance(aug, dict) or set(aug) - {"face", "context"}:
        raise RecipeError(f"augmentation must be {{'face': NAMES, 'context': NAMES}} (e.g. augmentation.face=ldlva), "
                          f"got {aug!r}.")
    for stream in ("face", "context"):
        try:
            parse_augment(aug.get(stream))
        except DataError as exc:
            raise RecipeError(f"augmentation.{stream}: {exc}") from None
    moved = sorted({"face_augment", "context_augment"} & set(config["data"].get("options") or {}))
    if moved:
        raise RecipeError(f"data.options.{moved[0]} is not a run setting: set augmentation.face / augmentation.context "
                          f"(applied to the training split only, and recorded in run_config.json).")


def _check(section: dict[str, Any], schema: dict[str, Callable[[Any], str | None]], prefix: str) -> None:
    for key, check in schema.items():
        if key not in section:
            continue
        problem = check(section[key])
        if problem is not None:
            raise RecipeError(f"setting {prefix}{key}={section[key]!r}: must be {problem}.")


def check_eval_settings(batch_size: Any, amp: Any) -> None:
    """``zoo.evaluate``'s batch size (an integer >= 1) and AMP mode (none, bf16, fp16)."""
    if not is_int(batch_size) or batch_size < 1:
        raise RecipeError(f"batch_size must be an integer >= 1, got {batch_size!r}.")
    if amp not in AMP_MODES:
        raise RecipeError(f"amp must be one of {', '.join(AMP_MODES)}, got {amp!r}.")
