"""Label-target builders: turn a batch's given labels into the training target and its loss.

A target builder is an ``nn.Module`` chosen by name (``ModelConfig.target``) and built by
:func:`zoo.models.model.build_target`. It may hold learnable and running state (saved with checkpoints).
Call it as ``builder(output, batch, model=None) -> TargetResult`` where ``batch`` is the training batch
dict (``"label"`` B long, ``"index"`` B long dataset indices, and whatever else a builder declares it
needs, e.g. neighbour images) and ``model`` is the model being trained (builders that forward extra
images, such as LDL-VA's ``online`` mode, use it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class TargetResult:
    loss: torch.Tensor
    #: the target distribution each sample was trained towards (B×C)
    target: torch.Tensor
    #: named loss terms for logging
    terms: dict[str, torch.Tensor]


class TargetBuilder(nn.Module):
    """Base class; the training engine calls these hooks in this order.

    1. ``prepare(dataset, model)`` once before training (e.g. KNN in an auxiliary space, a warm-up pass);
    2. ``wrap_dataset(dataset)`` to add batch entries the builder needs (e.g. neighbour images);
    3. per step: ``forward(output, batch, model)`` -> loss; the engine steps its optimiser over the model's
       parameters plus ``shared_parameters()``, then every optimiser from ``make_optimizers()``, then calls
       ``after_step()`` (e.g. class-centre updates);
    4. under DDP, ``sync_state()`` after each step keeps per-sample state equal on every rank.

    ``batch_keys`` lists the batch entries ``forward`` reads.
    """

    batch_keys: tuple[str, ...] = ("label",)

    def prepare(self, dataset: Any, model: nn.Module) -> None:
        return None

    def wrap_dataset(self, dataset: Any) -> Any:
        return dataset

    def shared_parameters(self):
        """Parameters trained by the engine's main optimiser (default: all of the builder's parameters)."""
        return self.parameters()

    def make_optimizers(self) -> list[torch.optim.Optimizer]:
        """Optimisers for parameters the builder trains with its own settings (not in shared_parameters)."""
        return []

    def after_step(self) -> None:
        return None

    def sync_state(self) -> None:
        return None

    def forward(self, output: Any, batch: dict[str, Any], model: nn.Module | None = None) -> TargetResult:
        raise NotImplementedError


#: how per-sample class weights w_i normalise the loss: ``"mean"`` = mean_i(w_i·l_i) (LDLVA's official
#: ``CELoss``), ``"weighted_mean"`` = Σ w_i·l_i / Σ w_i (PyTorch's ``cross_entropy(weight=)``)
WEIGHT_NORMS = ("mean", "weighted_mean")


def weighted_mean(losses: torch.Tensor, weights: torch.Tensor | None, norm: str = "mean") -> torch.Tensor:
    """Per-sample ``losses`` (B) reduced with per-sample ``weights`` (B) as :data:`WEIGHT_NORMS` ``norm`` says."""
    if weights is None:
        return losses.mean()
    if norm == "mean":
        return (losses * weights).mean()
    if norm == "weighted_mean":
        return (losses * weights).sum() / weights.sum()
    raise ValueError(f"weight_norm must be one of {WEIGHT_NORMS}, got {norm!r}.")


class OneHotTarget(TargetBuilder):
    """Cross-entropy against one-hot labels, with optional label smoothing and per-class weights.

    ``class_weights`` may be a list of C floats or ``"balanced"`` with ``class_counts`` given (sklearn's
    balanced weights ``n / (C · n_c)``, as LDLVA's AffectNet config uses). ``weight_norm`` says how the
    weights normalise the batch loss: ``"weighted_mean"`` (default here; PyTorch's
    ``cross_entropy(weight=w)``: Σ_i w_{y_i} l_i / Σ_i w_{y_i}, label smoothing weighted per class as
    PyTorch does) or ``"mean"`` (LDLVA's official ``CELoss``: mean_i w_{y_i} l_i, the loss of the smoothed
    target weighted by the label's class;
    minhnhatvt/label-distribution-learning-fer-tf @a741b363d328d7cb9156dc5b94927bdd7f391c57:src/utils.py).
    Without class weights both are the plain mean.
    """

    def __init__(
        self,
        num_classes: int,
        feature_dim: int | None = None,
        num_samples: int | None = None,
        label_smoothing: float = 0.0,
        class_weights: Sequence[float] | str | None = None,
        class_counts: Sequence[int] | None = None,
        weight_norm: str = "weighted_mean",
    ) -> None:
        super().__init__()
        if weight_norm not in WEIGHT_NORMS:
            raise ValueError(f"weight_norm must be one of {WEIGHT_NORMS}, got {weight_norm!r}.")
        self.num_classes = num_classes
        self.label_smoothing = float(label_smoothing)
        self.weight_norm = weight_norm
        weights = resolve_class_weights(class_weights, class_counts, num_classes)
        self.register_buffer("class_weights", weights, persistent=weights is not None)

    def forward(self, output: Any, batch: dict[str, Any], model: nn.Module | None = None) -> TargetResult:
        logits = output.logits if hasattr(output, "logits") else output
        labels = batch["label"]
        target = F.one_hot(labels, self.num_classes).float()
        if self.label_smoothing:
            target = target * (1 - self.label_smoothing) + self.label_smoothing / self.num_classes
        if self.class_weights is not None and self.weight_norm == "mean":
            per_sample = -(target * F.log_softmax(logits.float(), dim=-1)).sum(1)
            loss = weighted_mean(per_sample, self.class_weights[labels], "mean")
        else:
            loss = F.cross_entropy(
                logits.float(), labels, weight=self.class_weights, label_smoothing=self.label_smoothing
            )
        return TargetResult(loss, target, {"cls": loss.detach()})


class VoteTarget(TargetBuilder):
    """Soft cross-entropy against each sample's vote distribution (Barsoum et al., ICMI 2016, "Training deep
    networks for facial expression recognition with crowd-sourced label distribution", eq. 3, the "PLD"
    scheme): l_i = -Σ_c p_ic log q_ic with p_i the sample's votes normalised to sum 1 (FER+'s 10 annotators)
    and q_i the softmax of the logits.

    The batch entry ``votes`` (B×C vote counts or probabilities) is optional; a row that is missing, all zero,
    or holds a NaN falls back to the sample's one-hot ``label``, smoothed by ``label_smoothing``. The same
    entry distils a teacher: pass its probabilities as ``votes``. ``vote_smoothing`` mixes the vote
    distributions with the uniform one (FER+'s votes are counts of 10, so zeros are common). ``label_weight``
    mixes them with the sample's own smoothed label, p_i = (1 - w) votes_i + w label_i: between training towards
    the annotators' distribution (w = 0) and towards the dataset's single label (w = 1), where the two disagree.
    """

    batch_keys = ("label", "votes")

    def __init__(self, num_classes: int, feature_dim: int | None = None, num_samples: int | None = None,
                 label_smoothing: float = 0.0, vote_smoothing: float = 0.0, label_weight: float = 0.0) -> None:
        super().__init__()
        for name, value in (("label_smoothing", label_smoothing), ("vote_smoothing", vote_smoothing),
                            ("label_weight", label_weight)):
            if not 0.0 <= float(value) < 1.0:
                raise ValueError(f"votes target: {name} must be in [0, 1), got {value!r}.")
        self.num_classes = num_classes
        self.label_smoothing = float(label_smoothing)
        self.vote_smoothing = float(vote_smoothing)
        self.label_weight = float(label_weight)

    def targets(self, labels: torch.Tensor, votes: torch.Tensor | None) -> torch.Tensor:
        """The B×C distribution each sample is trained towards (votes where usable, else the smoothed label)."""
        onehot = F.one_hot(labels, self.num_classes).float()
        target = onehot * (1 - self.label_smoothing) + self.label_smoothing / self.num_classes
        if votes is None:
            return target
        votes = votes.to(target.dtype)
        if votes.shape != target.shape:
            raise ValueError(f"votes target: the batch's votes are {tuple(votes.shape)}, expected "
                             f"{tuple(target.shape)} (one vote count per class).")
        total = votes.nan_to_num(0.0).clamp(min=0).sum(dim=1, keepdim=True)
        usable = torch.isfinite(votes).all(dim=1, keepdim=True) & (total > 0) & (votes.nan_to_num(0.0) >= 0).all(
            dim=1, keepdim=True)
        dist = votes.nan_to_num(0.0).clamp(min=0) / total.clamp(min=1e-12)
        dist = dist * (1 - self.vote_smoothing) + self.vote_smoothing / self.num_classes
        dist = dist * (1 - self.label_weight) + target * self.label_weight
        return torch.where(usable, dist, target)

    def forward(self, output: Any, batch: dict[str, Any], model: nn.Module | None = None) -> TargetResult:
        logits = output.logits if hasattr(output, "logits") else output
        target = self.targets(batch["label"], batch.get("votes"))
        loss = -(target * F.log_softmax(logits.float(), dim=-1)).sum(dim=1).mean()
        return TargetResult(loss, target, {"cls": loss.detach()})


def resolve_class_weights(
    class_weights: Sequence[float] | str | None, class_counts: Sequence[int] | None, num_classes: int
) -> torch.Tensor | None:
    if class_weights is None:
        return None
    if isinstance(class_weights, str):
        if class_weights != "balanced":
            raise ValueError(f"class_weights must be a list of floats or 'balanced', got {class_weights!r}.")
        if class_counts is None or len(class_counts) != num_classes:
            raise ValueError("class_weights='balanced' needs class_counts with one count per class.")
        counts = torch.tensor(class_counts, dtype=torch.float32)
        if (counts <= 0).any():
            raise ValueError(f"class_counts must all be positive for balanced weights, got {list(class_counts)}.")
        return counts.sum() / (num_classes * counts)
    weights = torch.tensor(list(class_weights), dtype=torch.float32)
    if weights.numel() != num_classes:
        raise ValueError(f"class_weights has {weights.numel()} values for {num_classes} classes.")
    return weights
