"""Synthetic label noise for the LDLVA noisy-label experiments (Le et al., WACV 2023; no script in the official code).

The official repo has no noise script. :func:`flip_labels` flips exactly ``round(rate · N)`` labels
(``mode="uniform"``: samples drawn from the whole set) or ``round(rate · n_c)`` labels of every class c
(``mode="per_class"``, the third-party script's protocol with rounding instead of truncation) to *another*
class, drawn uniformly (``transition="uniform"``) or in proportion to the other classes' frequencies
(``transition="proportional"``, as the third-party script). Everything is seeded and recorded
(:meth:`LabelNoise.save`); :class:`NoisyLabels` serves the noisy label and keeps the clean one for analysis.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import torch

from zoo.errors import ZooError

NOISE_MODES = ("uniform", "per_class")
TRANSITIONS = ("uniform", "proportional")


class LabelNoiseError(ZooError, ValueError):
    """Label-noise settings or records that cannot be used."""


@dataclass
class LabelNoise:
    clean_labels: torch.Tensor
    noisy_labels: torch.Tensor
    num_classes: int
    rate: float
    mode: str
    transition: str
    seed: int

    @property
    def flipped(self) -> torch.Tensor:
        return self.noisy_labels != self.clean_labels

    def to_dict(self) -> dict[str, Any]:
        idx = torch.nonzero(self.flipped).flatten()
        return {
            "num_samples": int(self.clean_labels.numel()),
            "num_classes": self.num_classes,
            "rate": self.rate,
            "mode": self.mode,
            "transition": self.transition,
            "seed": self.seed,
            "flipped_index": idx.tolist(),
            "clean_label": self.clean_labels[idx].tolist(),
            "noisy_label": self.noisy_labels[idx].tolist(),
        }

    def save(self, path: str | os.PathLike) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f)

    @classmethod
    def load(cls, path: str | os.PathLike, clean_labels: torch.Tensor) -> LabelNoise:
        """Re-apply a saved record to the clean labels it was made from (checked)."""
        with open(path, encoding="utf-8") as f:
            rec = json.load(f)
        clean = torch.as_tensor(clean_labels, dtype=torch.long)
        idx = torch.tensor(rec["flipped_index"], dtype=torch.long)
        if rec["num_samples"] != clean.numel() or not torch.equal(clean[idx], torch.tensor(rec["clean_label"], dtype=torch.long)):
            raise LabelNoiseError(
                f"{path}: this noise record was made for other labels ({rec['num_samples']} samples); "
                f"apply it to the training set it was made from."
            )
        noisy = clean.clone()
        noisy[idx] = torch.tensor(rec["noisy_label"], dtype=torch.long)
        return cls(clean, noisy, rec["num_classes"], rec["rate"], rec["mode"], rec["transition"], rec["seed"])


def flip_labels(
    labels: torch.Tensor,
    rate: float,
    num_classes: int | None = None,
    seed: int = 0,
    mode: str = "uniform",
    transition: str = "uniform",
) -> LabelNoise:
    """Flip a fraction ``rate`` of ``labels`` to other classes; see the module docstring."""
    clean = torch.as_tensor(labels, dtype=torch.long).flatten().clone()
    c = int(num_classes if num_classes is not None else int(clean.max()) + 1)
    if not 0.0 <= rate <= 1.0:
        raise LabelNoiseError(f"noise rate must be in [0, 1], got {rate}.")
    if mode not in NOISE_MODES or transition not in TRANSITIONS:
        raise LabelNoiseError(f"mode must be one of {NOISE_MODES} and transition one of {TRANSITIONS}.")
    if c < 2 or (clean < 0).any() or (clean >= c).any():
        raise LabelNoiseError(f"labels must lie in [0, {c - 1}] with at least 2 classes.")
    g = torch.Generator().manual_seed(seed)
    if mode == "uniform":
        chosen = torch.randperm(clean.numel(), generator=g)[: round(rate * clean.numel())]
    else:
        parts = []
        for cls in range(c):  # one draw per class (C is small), not per sample
            members = torch.nonzero(clean == cls).flatten()
            parts.append(members[torch.randperm(members.numel(), generator=g)[: round(rate * members.numel())]])
        chosen = torch.cat(parts)
    old = clean[chosen]
    if transition == "uniform":
        new = (old + torch.randint(1, c, (old.numel(),), generator=g)) % c
    else:
        freq = torch.bincount(clean, minlength=c).float()
        weights = freq.expand(old.numel(), c).clone()
        weights[torch.arange(old.numel()), old] = 0.0
        weights[weights.sum(1) == 0] = 1.0  # only one class present: any other class
        weights[torch.arange(old.numel()), old] = 0.0
        new = torch.multinomial(weights, 1, generator=g).flatten() if old.numel() else old
    noisy = clean.clone()
    noisy[chosen] = new
    return LabelNoise(clean, noisy, c, float(rate), mode, transition, int(seed))


class NoisyLabels(torch.utils.data.Dataset):
    """A dataset whose ``"label"`` is the noisy label; ``"clean_label"`` and ``.clean_labels`` keep the truth."""

    def __init__(self, dataset: Any, noise: LabelNoise) -> None:
        if noise.clean_labels.numel() != len(dataset):
            raise LabelNoiseError(f"noise has {noise.clean_labels.numel()} labels for a dataset of {len(dataset)}.")
        self.dataset = dataset
        self.noise = noise
        self.labels = noise.noisy_labels
        self.clean_labels = noise.clean_labels

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:
        if name in ("dataset", "noise"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = dict(self.dataset[i])
        item["clean_label"] = int(self.clean_labels[i])
        item["label"] = int(self.labels[i])
        return item
