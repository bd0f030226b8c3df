"""Auxiliary spaces for the LDL-VA neighbours (LDLVA paper "Adaptive Similarity"; Le et al., WACV 2023).

Providers return one point per training sample (N×D, dataset order):

* ``"dataset"`` — valence-arousal the dataset carries (AffectNet): attribute ``va`` (N×2), the one name
  every reader uses (:data:`zoo.data.VA_ATTRIBUTE`);
* ``"teacher:SPEC"`` — pseudo-VA from a teacher classifier: any zoo model name, ``local-dir:DIR``, or a
  model object, optionally with ``teacher_checkpoint``. Its class probabilities p are mapped through
  per-class VA prototypes: ``a = Σ_c p_c · prototype_c`` (:data:`VA_PROTOTYPES`);
* ``"embedding:SPEC"`` — the teacher's feature vector (its ``EmotionOutput.features``) as the space.

The official code's pseudo-VA came from another group's VA regressor (the official repository's issue #2);
no such model ships here, hence the prototype route, which works with any classifier.

**Prototype values and their source.** Russell, J. A. (1980), *A circumplex model of affect*, Journal of
Personality and Social Psychology 39(6), 1161-1178, places emotion words on a circle around the neutral
centre: angle 0° = pleasure, 90° = arousal. The abstract gives the eight anchors (pleasure 0°, excitement 45°,
arousal 90°, distress 135°, displeasure 180°, depression 225°, sleepiness 270°, relaxation 315°). The angles of
individual words below are the paper's circular scaling of its 28 adjectives as we recall them (happy 7.8°,
astonished 69.8°, angry 99.0°, afraid 116.9°, sad 207.5°): they were **not re-checked against the PDF here**.
Disgust and contempt are not among Russell's 28 words: we place them ourselves on the displeasure anchor
(180°), contempt at half radius so the two stay distinct. Neutral is the centre. A prototype is
``radius · (cos θ, sin θ)`` with radius 1, matching AffectNet's [-1, 1] VA range. Pass ``va_prototypes`` to use
other values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.data import VA_ATTRIBUTE
from zoo.errors import ZooError
from zoo.inference.loading import create_for_inference
from zoo.names import ModelNameError, parse_auxiliary

#: class -> (source word in Russell 1980, angle in degrees, radius); see the module docstring
RUSSELL_ANGLES: dict[str, tuple[str, float, float]] = {
    "neutral": ("(centre)", 0.0, 0.0),
    "happy": ("happy", 7.8, 1.0),
    "surprise": ("astonished", 69.8, 1.0),
    "anger": ("angry", 99.0, 1.0),
    "fear": ("afraid", 116.9, 1.0),
    "sad": ("sad", 207.5, 1.0),
    "disgust": ("displeasure anchor (our choice)", 180.0, 1.0),
    "contempt": ("displeasure anchor, half radius (our choice)", 180.0, 0.5),
}

#: class -> (valence, arousal)
VA_PROTOTYPES: dict[str, tuple[float, float]] = {
    name: (round(r * math.cos(math.radians(a)), 4), round(r * math.sin(math.radians(a)), 4))
    for name, (_, a, r) in RUSSELL_ANGLES.items()
}

_ALIASES = {
    "angry": "anger", "happiness": "happy", "joy": "happy", "sadness": "sad", "afraid": "fear",
    "fearful": "fear", "surprised": "surprise", "disgusted": "disgust", "neutrality": "neutral",
}


class AuxiliarySpaceError(ZooError, ValueError):
    """The auxiliary space for LDL-VA cannot be obtained from what was given."""


def canonical_class(name: str) -> str:
    key = name.strip().lower()
    return _ALIASES.get(key, key)


def prototypes_for(label_names: Sequence[str], overrides: Mapping[str, Sequence[float]] | None = None) -> torch.Tensor:
    """C×2 VA prototypes for a classifier's classes, in its class order."""
    table = {**VA_PROTOTYPES, **{canonical_class(k): tuple(v) for k, v in (overrides or {}).items()}}
    missing = [n for n in label_names if canonical_class(n) not in table]
    if missing:
        raise AuxiliarySpaceError(
            f"No valence-arousal prototype for class(es) {missing}; known classes: {sorted(table)}. "
            f"Pass target_args={{'va_prototypes': {{'{missing[0]}': [valence, arousal], ...}}}}."
        )
    return torch.tensor([table[canonical_class(n)] for n in label_names], dtype=torch.float32)


def dataset_va(dataset: Any) -> torch.Tensor:
    """The dataset's own VA annotations (N×2), from its ``va`` attribute (:data:`zoo.data.VA_ATTRIBUTE`)."""

    va = getattr(dataset, VA_ATTRIBUTE, None)
    if va is None:
        raise AuxiliarySpaceError(
            f"auxiliary='dataset' needs valence-arousal labels, but {type(dataset).__name__} has no "
            f"{VA_ATTRIBUTE!r} attribute (N×2; the affectnet: reader sets it). Use auxiliary='teacher:MODEL' for "
            f"pseudo-VA from a classifier."
        )
    va = torch.as_tensor(va, dtype=torch.float32)
    if va.shape != (len(dataset), 2):
        raise AuxiliarySpaceError(f"dataset VA must have shape ({len(dataset)}, 2), got {tuple(va.shape)}.")
    return va


class InputAdapter:
    """Maps images prepared for one model (size, mean/std) to what another model expects."""

    def __init__(self, source: Any | None, target: Any) -> None:
        self.size = tuple(target.face_size)
        if source is None:
            self.scale = self.shift = None
        else:
            s_mean, s_std = torch.tensor(source.mean), torch.tensor(source.std)
            t_mean, t_std = torch.tensor(target.mean), torch.tensor(target.std)
            # x_t = (x_s * std_s + mean_s - mean_t) / std_t
            self.scale = (s_std / t_std).view(1, 3, 1, 1)
            self.shift = ((s_mean - t_mean) / t_std).view(1, 3, 1, 1)

    def __call__(self, face: torch.Tensor) -> torch.Tensor:
        if self.scale is not None:
            face = face * self.scale.to(face) + self.shift.to(face)
        if tuple(face.shape[-2:]) != self.size:
            face = F.interpolate(face, size=self.size, mode="bilinear", align_corners=False)
        return face


@torch.no_grad()
def predict_dataset(
    model: nn.Module,
    dataset: Any,
    batch_size: int = 256,
    num_workers: int = 0,
    indices: Sequence[int] | torch.Tensor | None = None,
    adapter: InputAdapter | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One no-grad pass in eval mode: ``(indices, probs, features)`` of the selected samples (CPU float32)."""
    from torch.utils.data import DataLoader, Subset

    idx = torch.arange(len(dataset)) if indices is None else torch.as_tensor(indices, dtype=torch.long)
    loader = DataLoader(Subset(dataset, idx.tolist()), batch_size=batch_size, shuffle=False, num_workers=num_workers)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    probs, feats, seen = [], [], []
    try:
        for batch in loader:
            out = model(**_model_inputs(batch, adapter, device))
            probs.append(out.probs.float().cpu())
            feats.append(out.features.float().cpu())
            seen.append(torch.as_tensor(batch["index"]))
    finally:
        model.train(was_training)
    got = torch.cat(seen)
    if not torch.equal(got, idx):
        raise AuxiliarySpaceError(
            "dataset[i]['index'] must equal i (the dataset contract in zoo/data/__init__.py); "
            f"{type(dataset).__name__} returned other indices."
        )
    return idx, torch.cat(probs), torch.cat(feats)


def _model_inputs(batch: Mapping[str, Any], adapter: InputAdapter | None, device: torch.device) -> dict[str, torch.Tensor]:
    inputs = {}
    if "face" in batch:
        face = batch["face"].to(device)
        inputs["face"] = adapter(face) if adapter is not None else face
    if "context" in batch:
        inputs["context"] = batch["context"].to(device)
    return inputs


def load_teacher(teacher: str | nn.Module, checkpoint: str | None = None) -> nn.Module:
    """A teacher with trained weights, loaded as ``predict`` loads a model: a preset's published weights (its
    default tag unless the name gives one), ``local-dir:`` / ``hf-hub:`` weights, or ``checkpoint``. A teacher
    without trained weights is refused: its pseudo-VA would be noise and the run would still train."""
    if isinstance(teacher, nn.Module):
        return teacher
    return create_for_inference(teacher, checkpoint=checkpoint)


def teacher_space(
    teacher: str | nn.Module,
    dataset: Any,
    kind: str = "va",
    checkpoint: str | None = None,
    source_data: Any | None = None,
    va_prototypes: Mapping[str, Sequence[float]] | None = None,
    batch_size: int = 256,
    num_workers: int = 0,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Pseudo-VA (``kind="va"``, N×2) or embeddings (``kind="embedding"``, N×V) from a teacher model.

    ``source_data`` is the :class:`zoo.config.DataConfig` the dataset's images were prepared for; images are
    re-normalised and resized to the teacher's own ``DataConfig``. A teacher loaded by name runs on ``device``.
    """
    model = load_teacher(teacher, checkpoint)
    if device is not None and not isinstance(teacher, nn.Module):
        model = model.to(device)
    cfg = getattr(model, "config", None)
    if cfg is not None and cfg.uses_context and not cfg.uses_face:
        raise AuxiliarySpaceError("A teacher for LDL-VA must read faces; this teacher is context-only.")
    adapter = InputAdapter(source_data, cfg.data) if cfg is not None else None
    _, probs, feats = predict_dataset(model, dataset, batch_size, num_workers, adapter=adapter)
    if kind == "embedding":
        return feats
    if kind != "va":
        raise AuxiliarySpaceError(f"teacher space kind must be 'va' or 'embedding', got {kind!r}.")
    names = cfg.resolved_label_names if cfg is not None else getattr(model, "label_names", None)
    if names is None:
        raise AuxiliarySpaceError("The teacher has no label names, so its classes cannot be mapped to VA prototypes.")
    return probs @ prototypes_for(names, va_prototypes)


def auxiliary_points(
    source: str | torch.Tensor,
    dataset: Any,
    model: nn.Module | None = None,
    teacher_checkpoint: str | None = None,
    va_prototypes: Mapping[str, Sequence[float]] | None = None,
    batch_size: int = 256,
    num_workers: int = 0,
) -> torch.Tensor:
    """Resolve an ``auxiliary`` setting of the ``ldl_va`` target into N×D points."""
    if isinstance(source, torch.Tensor):
        return source.float()
    source_data = getattr(getattr(model, "config", None), "data", None)
    try:
        kind, spec = parse_auxiliary(source)
    except ModelNameError as exc:
        raise AuxiliarySpaceError(str(exc)) from None
    if kind == "dataset":
        return dataset_va(dataset)
    return teacher_space(
        spec,
        dataset,
        kind="va" if kind == "teacher" else "embedding",
        checkpoint=teacher_checkpoint,
        source_data=source_data,
        va_prototypes=va_prototypes,
        batch_size=batch_size,
        num_workers=num_workers,
        device=next(model.parameters()).device if model is not None else None,
    )
