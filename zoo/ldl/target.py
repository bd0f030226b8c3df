"""The ``ldl_va`` target builder: uncertainty-aware label distributions from valence-arousal neighbours.

LDLVA paper ("Uncertainty-aware Label Distribution Construction", "Discriminative Loss") and the official
code ``src/train.py::train_step`` (minhnhatvt/label-distribution-learning-fer-tf@a741b36). Per central sample i with K neighbours k ∈ N(i):

* ``c_k = ζ_k · s_k`` — calibration ζ from :class:`~zoo.ldl.similarity.CalibrationNet` on ``[v_i, v_k]`` (v_k
  detached), local similarity s from the auxiliary space (computed once in :meth:`LDLVATarget.prepare`);
* ``d̃ = Σ_k c_k f(x_k) / Σ_k c_k`` with the neighbours' current predictions f(x_k) (no gradient);
* ``d = (1 - λ_i) l + λ_i d̃`` with the paper's *uncertainty* λ_i ∈ [0, 1].
  **The official code's λ is the confidence in the given label**: it stores a logit θ_i per sample
  (``confidence_logit``), uses ``y = sigmoid(θ) l + (1 - sigmoid(θ)) d̃``, so the paper's λ = 1 - sigmoid(θ).
  θ starts at ``lamb_init`` (0.5 RAF-DB, 0.8 AffectNet) and is trained by its own SGD (lr 10, momentum
  0 RAF-DB / 0.9 AffectNet) that, like TF's sparse momentum, only touches the rows of the current batch;
* ``L = L_cls + γ L_D``, ``L_cls = mean_i w_{l_i} Σ_c -d_ic log p_ic`` (w: class weights, 1 by default; the
  official ``CELoss``, ``weight_norm="mean"``; ``"weighted_mean"`` divides by Σ_i w_{l_i} instead, as PyTorch's
  ``cross_entropy(weight=)``), γ = 0.01; L_D and the centre update in :mod:`zoo.ldl.discriminative`.

Neighbour predictions come in two modes:

* ``neighbor_mode="online"`` (official): :meth:`wrap_dataset` adds ``"neighbor_face"`` (K×3×H×W, and
  ``"neighbor_context"`` for two-stream models) to every sample, and :meth:`forward` runs them through the model
  without gradient in the model's *current* mode (in training mode this updates BatchNorm statistics, as the
  official code does). Cost: K extra forward passes per sample.
* ``neighbor_mode="memory_bank"``: the latest prediction and feature of every sample are stored when the sample
  is itself in a batch and reused when it is someone's neighbour. :meth:`prepare` fills the bank with one
  eval-mode pass over the dataset (the warm-up). **Staleness**: an entry is as old as its sample's last visit,
  up to one epoch of updates (N/B steps), and was computed on that visit's augmentation, with dropout and
  BatchNorm in training mode; it is not refreshed when the weights change. A fresh bank gives the online targets
  exactly (tested).

λ, the bank and the neighbour lists are indexed by dataset index (``batch["index"]``), so shuffling and loader
workers do not matter; :meth:`sync_state` keeps them and the centres equal across DDP ranks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo import runtime
from zoo.errors import ZooError
from zoo.ldl.auxiliary import auxiliary_points, predict_dataset
from zoo.ldl.discriminative import (
    REPULSION_PAIRS,
    inter_class_term,
    intra_class_loss,
    repulsion_tau,
    update_centers,
)
from zoo.ldl.knn import nearest_neighbors
from zoo.ldl.similarity import SIMILARITY_KINDS, CalibrationNet, local_similarity, relative_similarity
from zoo.models.components.targets import (
    WEIGHT_NORMS,
    TargetBuilder,
    TargetResult,
    resolve_class_weights,
    weighted_mean,
)

NEIGHBOR_MODES = ("online", "memory_bank")


class TargetConfigError(ZooError, ValueError):
    """An ldl_va setting (``target_args``) that cannot be used; the message names it."""


class TargetStateError(ZooError, RuntimeError):
    """The target builder was used before it was prepared, or with a dataset it was not prepared for."""


class LambdaSGD(torch.optim.Optimizer):
    """SGD with momentum for the per-sample confidence logits, updating only the rows in the gradient.

    Like TF's sparse ``SGD(momentum)`` on a gathered ``tf.Variable`` (the official λ optimiser): rows not in
    the batch (rows with a zero gradient) keep their value and their momentum. The momentum lives in the
    builder (``lambda_momentum``), so it is saved with the builder and synchronised across ranks. The gradient is consumed (set to None).
    """

    def __init__(self, owner: LDLVATarget, lr: float, momentum: float) -> None:
        super().__init__([owner.confidence_logit], {"lr": lr, "momentum": momentum})
        self._owner = [owner]  # a list, so the optimiser does not register the builder as a sub-object

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001 - torch.optim signature
        loss = closure() if closure is not None else None
        buf = self._owner[0].lambda_momentum
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    grad = p.grad.coalesce()
                    rows, values = grad.indices()[0], grad.values()
                else:  # the rows of this step's batch (of every rank, once the engine all-reduced the gradient)
                    rows = torch.nonzero((p.grad != 0).any(dim=1)).flatten()
                    values = p.grad[rows]
                buf[rows] = group["momentum"] * buf[rows] + values
                p[rows] -= group["lr"] * buf[rows]
                p.grad = None
        return loss


class NeighborImages(torch.utils.data.Dataset):
    """Adds the neighbours' images to every sample (``neighbor_face`` K×3×H×W, ``neighbor_index`` K)."""

    def __init__(self, dataset: Any, neighbors: torch.Tensor) -> None:
        self.dataset = dataset
        self.neighbors = neighbors.cpu().clone()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:  # labels, num_classes, label_names, ... of the wrapped dataset
        if name in ("dataset", "neighbors"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = dict(self.dataset[i])
        neighbors = self.neighbors[i]
        samples = [self.dataset[int(j)] for j in neighbors]
        for key in ("face", "context"):
            if key in item:
                item[f"neighbor_{key}"] = torch.stack([s[key] for s in samples])
        item["neighbor_index"] = neighbors
        return item


class LDLVATarget(TargetBuilder):
    """LDL-VA targets and losses; see the module docstring. Build with :func:`zoo.models.model.build_target`."""

    batch_keys = ("label", "index")

    def __init__(
        self,
        num_classes: int,
        feature_dim: int,
        num_samples: int | None = None,
        num_neighbors: int = 8,
        neighbor_mode: str = "online",
        auxiliary: str | torch.Tensor = "dataset",
        teacher_checkpoint: str | None = None,
        va_prototypes: Mapping[str, Sequence[float]] | None = None,
        similarity: str = "gaussian",
        similarity_scale: float = 0.5,
        calibration_hidden: Sequence[int] = (512, 256),
        calibration_clamp: float | None = None,
        lamb_init: float = 0.5,
        lamb_lr: float = 10.0,
        lamb_momentum: float = 0.0,
        gamma: float = 0.01,
        center_lr: float = 0.5,
        center_repulsion: float = 0.1,
        repulsion_temperature: float | str | None = None,
        repulsion_pairs: str = "ordered",
        discriminative_neighbors: bool = True,
        class_weights: Sequence[float] | str | None = None,
        weight_norm: str = "mean",
        class_counts: Sequence[int] | None = None,
        bank_dtype: str = "float32",
        batch_size: int = 256,
        num_workers: int = 0,
        knn_method: str = "auto",
    ) -> None:
        super().__init__()
        if neighbor_mode not in NEIGHBOR_MODES:
            raise TargetConfigError(f"neighbor_mode must be one of {NEIGHBOR_MODES}, got {neighbor_mode!r}.")
        if similarity not in SIMILARITY_KINDS:
            raise TargetConfigError(f"similarity must be one of {SIMILARITY_KINDS}, got {similarity!r}.")
        if bank_dtype not in ("float32", "float16", "bfloat16"):
            raise TargetConfigError(f"bank_dtype must be 'float32', 'float16' or 'bfloat16', got {bank_dtype!r}.")
        if not feature_dim:
            raise TargetConfigError("ldl_va needs the model's feature dimension (feature_dim) for the calibration net.")
        if repulsion_pairs not in REPULSION_PAIRS:
            raise TargetConfigError(f"repulsion_pairs must be one of {REPULSION_PAIRS}, got {repulsion_pairs!r}.")
        if weight_norm not in WEIGHT_NORMS:
            raise TargetConfigError(f"weight_norm must be one of {WEIGHT_NORMS}, got {weight_norm!r}.")
        try:
            repulsion_tau(repulsion_temperature, int(feature_dim))
        except ValueError as exc:
            raise TargetConfigError(str(exc)) from None
        self.num_classes, self.feature_dim, self.k = int(num_classes), int(feature_dim), int(num_neighbors)
        self.neighbor_mode, self.auxiliary = neighbor_mode, auxiliary
        self.teacher_checkpoint, self.va_prototypes = teacher_checkpoint, va_prototypes
        self.similarity_kind, self.similarity_scale = similarity, float(similarity_scale)
        self.lamb_init, self.lamb_lr, self.lamb_momentum = float(lamb_init), float(lamb_lr), float(lamb_momentum)
        self.gamma, self.center_lr, self.center_repulsion = float(gamma), float(center_lr), float(center_repulsion)
        self.repulsion_temperature, self.discriminative_neighbors = repulsion_temperature, bool(discriminative_neighbors)
        self.repulsion_pairs, self.weight_norm = repulsion_pairs, weight_norm
        self.bank_dtype = getattr(torch, bank_dtype)
        self.batch_size, self.num_workers, self.knn_method = int(batch_size), int(num_workers), knn_method
        self._balanced_from_dataset = class_weights == "balanced" and class_counts is None
        weights = None if self._balanced_from_dataset else resolve_class_weights(class_weights, class_counts, num_classes)
        self.register_buffer("class_weights", weights if weights is not None else torch.ones(num_classes))
        self.calibration = CalibrationNet(self.feature_dim, tuple(calibration_hidden), calibration_clamp)
        self.register_buffer("centers", torch.zeros(num_classes, self.feature_dim))
        self.confidence_logit = nn.Parameter(torch.empty(0, 1))
        self._pending: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._touched: torch.Tensor | None = None
        self._allocate(int(num_samples or 0))

    # ----------------------------------------------------------------------------------------- state
    def _allocate(self, n: int) -> None:
        bank_rows = n if self.neighbor_mode == "memory_bank" else 0
        device = self.centers.device
        self.confidence_logit.data = torch.full((n, 1), self.lamb_init, device=device)
        self.register_buffer("lambda_momentum", torch.zeros(n, 1, device=device))
        self.register_buffer("labels", torch.full((n,), -1, dtype=torch.long, device=device))
        self.register_buffer("neighbors", torch.full((n, self.k), -1, dtype=torch.long, device=device))
        self.register_buffer("similarity", torch.zeros(n, self.k, device=device))
        self.register_buffer("last_target", torch.zeros(n, self.num_classes, device=device))
        self.register_buffer("bank_probs", torch.zeros(bank_rows, self.num_classes, device=device))  # small: float32
        self.register_buffer("bank_features", torch.zeros(bank_rows, self.feature_dim, dtype=self.bank_dtype, device=device))
        self.register_buffer("bank_filled", torch.zeros(bank_rows, dtype=torch.bool, device=device))

    @property
    def num_samples(self) -> int:
        return self.confidence_logit.shape[0]

    @property
    def is_prepared(self) -> bool:
        return self.num_samples > self.k and bool((self.neighbors >= 0).all()) and bool((self.labels >= 0).all())

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):  # noqa: ANN001
        # A checkpoint carries its own number of samples: size the per-sample state to it before loading.
        key = prefix + "confidence_logit"
        if key in state_dict and state_dict[key].shape[0] != self.num_samples:
            self._allocate(int(state_dict[key].shape[0]))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

    def shared_parameters(self):
        """The calibration net g, trained by the main optimiser (the official code puts g in the model)."""
        return self.calibration.parameters()

    def make_optimizers(self) -> list[torch.optim.Optimizer]:
        return [LambdaSGD(self, self.lamb_lr, self.lamb_momentum)]

    # ------------------------------------------------------------------------------------- preparation
    def prepare(self, dataset: Any, model: nn.Module) -> None:
        """KNN in the auxiliary space and local similarities (once); in ``memory_bank`` mode the warm-up pass.

        A builder restored from a checkpoint keeps its neighbours, λ and bank; only the labels are checked.
        """
        n = len(dataset)
        labels = torch.as_tensor(dataset.labels, dtype=torch.long).to(self.labels.device)
        if self.is_prepared:
            if n != self.num_samples or not torch.equal(labels, self.labels):
                raise TargetStateError(
                    f"This ldl_va state was built for {self.num_samples} training samples with other labels; "
                    f"the dataset has {n}. Use the training set (and noise seed) the checkpoint was trained on, "
                    f"or start a new target."
                )
        else:
            if self.num_samples not in (0, n):
                raise TargetStateError(
                    f"ldl_va was built with num_samples={self.num_samples} but the dataset has {n} samples."
                )
            if self.num_samples != n:
                self._allocate(n)
            self.labels.copy_(labels)
            points = auxiliary_points(
                self.auxiliary, dataset, model, self.teacher_checkpoint, self.va_prototypes,
                self.batch_size, self.num_workers,
            )
            self.set_neighbors_from_points(points)
        if self._balanced_from_dataset:
            counts = torch.bincount(self.labels, minlength=self.num_classes).float()
            self.class_weights.copy_(resolve_class_weights("balanced", counts.tolist(), self.num_classes))
        if self.neighbor_mode == "memory_bank" and not bool(self.bank_filled.all()):
            self.warm_up(dataset, model)

    def set_neighbors_from_points(self, points: torch.Tensor) -> None:
        """K nearest neighbours and their local similarities from auxiliary points (N×D, dataset order).

        ``similarity`` holds s_k / max_k s_k per row (see :func:`~zoo.ldl.similarity.relative_similarity`).
        """
        if points.shape[0] != self.num_samples:
            raise TargetStateError(f"auxiliary points have {points.shape[0]} rows for {self.num_samples} samples.")
        idx, _ = nearest_neighbors(points, self.k, method=self.knn_method)
        points = points.float()
        log_sim = local_similarity(points, points[idx], self.similarity_kind, self.similarity_scale, log=True)
        sim = relative_similarity(log_sim)
        self.neighbors.copy_(idx)
        self.similarity.copy_(sim)

    def warm_up(self, dataset: Any, model: nn.Module) -> None:
        """Fill the memory bank with one eval-mode pass (each DDP rank computes a shard, then all share)."""
        rank, world = runtime.rank_and_world()
        shard = torch.arange(rank, len(dataset), world)
        idx, probs, feats = predict_dataset(model, dataset, self.batch_size, self.num_workers, indices=shard)
        self._write_bank(idx.to(self.bank_filled.device), probs, feats)
        if world > 1:
            rows, p, f = runtime.gather_rows(idx.to(self.bank_probs.device), self.bank_probs[idx], self.bank_features[idx])
            self._write_bank(rows, p, f)

    @torch.no_grad()
    def _write_bank(self, idx: torch.Tensor, probs: torch.Tensor, feats: torch.Tensor) -> None:
        self.bank_probs[idx] = probs.to(self.bank_probs)
        self.bank_features[idx] = feats.to(self.bank_features)
        self.bank_filled[idx] = True

    def wrap_dataset(self, dataset: Any) -> Any:
        if self.neighbor_mode == "memory_bank":
            return dataset
        if not self.is_prepared:
            raise TargetStateError("Call prepare(dataset, model) before wrap_dataset(): the neighbours are not known yet.")
        return NeighborImages(dataset, self.neighbors)

    # -------------------------------------------------------------------------------------------- step
    def _neighbor_outputs(self, batch: Mapping[str, Any], nb: torch.Tensor, model: nn.Module | None) -> tuple[torch.Tensor, torch.Tensor]:
        b, k = nb.shape
        if self.neighbor_mode == "memory_bank":
            if not bool(self.bank_filled[nb].all()):
                raise TargetStateError("memory bank rows are empty; prepare(dataset, model) runs the warm-up pass.")
            return self.bank_probs[nb].float(), self.bank_features[nb].float()
        if model is None or "neighbor_face" not in batch and "neighbor_context" not in batch:
            raise TargetStateError(
                "neighbor_mode='online' needs the model and the batch's 'neighbor_face' images: wrap the training "
                "dataset with target.wrap_dataset(dataset) and pass model= to the target."
            )
        inputs = {}
        for key in ("face", "context"):
            images = batch.get(f"neighbor_{key}")
            if images is not None:
                inputs[key] = images.to(self.centers.device).flatten(0, 1)
        with torch.no_grad():
            out = model(**inputs)
        return out.probs.float().view(b, k, -1), out.features.float().view(b, k, -1)

    def forward(self, output: Any, batch: dict[str, Any], model: nn.Module | None = None) -> TargetResult:
        device = self.centers.device
        labels = torch.as_tensor(batch["label"], device=device).long()
        idx = torch.as_tensor(batch["index"], device=device).long()
        if self.num_samples == 0 or bool((self.neighbors[idx, 0] < 0).any()):  # only this batch's rows: cheap
            raise TargetStateError("ldl_va is not prepared: call target.prepare(train_dataset, model) before training.")
        features = output.features.float()
        nb = self.neighbors[idx]
        nb_probs, nb_feats = self._neighbor_outputs(batch, nb, model)

        # d̃ = Σ c_k f(x_k) / Σ c_k with c_k = ζ_k s_k, evaluated as softmax_k(log ζ_k + log s_k): the same
        # weights, but finite when every ζ_k·s_k underflows to 0 (a 0/0 that stopped a FER2013 run with NaN)
        log_contribution = self.calibration.log_forward(features, nb_feats.detach()) + torch.log(self.similarity[idx])
        weights = torch.softmax(log_contribution, dim=1)
        aggregated = (weights[..., None] * nb_probs.detach()).sum(1)
        confidence = torch.sigmoid(self.confidence_logit[idx])  # B×1; a dense gradient, all-reducible under NCCL
        onehot = F.one_hot(labels, self.num_classes).float()
        target = confidence * onehot + (1.0 - confidence) * aggregated  # = (1-λ) l + λ d̃, λ = 1 - confidence

        log_probs = F.log_softmax(output.logits.float(), dim=-1)
        cls = weighted_mean(-(target * log_probs).sum(1), self.class_weights[labels], self.weight_norm)

        if self.discriminative_neighbors:
            ld_feats = torch.cat([features, nb_feats.detach().flatten(0, 1)])
            ld_labels = torch.cat([labels, self.labels[nb].flatten()])
            ld_weights = torch.cat([confidence[:, 0], torch.sigmoid(self.confidence_logit[nb.flatten(), 0])]).detach()
        else:
            ld_feats, ld_labels, ld_weights = features, labels, confidence[:, 0].detach()
        intra = intra_class_loss(ld_feats, ld_labels, ld_weights, self.centers)
        inter = inter_class_term(self.centers, self.repulsion_temperature, self.repulsion_pairs)
        loss = cls + self.gamma * (intra + inter)

        with torch.no_grad():
            self._pending = (ld_feats.detach(), ld_labels, ld_weights)
            self._touched = idx
            self.last_target[idx] = target.detach()
            if self.neighbor_mode == "memory_bank":
                self._write_bank(idx, output.probs.detach(), features.detach())
        terms = {
            "cls": cls.detach(),
            "ld_intra": intra.detach(),
            "ld_inter": inter.detach(),
            "uncertainty": (1.0 - confidence).mean().detach(),
        }
        return TargetResult(loss, target.detach(), terms)

    def after_step(self) -> None:
        """Class-centre update from the last batch (the official ``DiscriminativeLoss.update_centers``)."""
        if self._pending is None:
            return
        feats, labels, weights = runtime.gather_rows(*self._pending)  # the global batch under DDP
        update_centers(self.centers, feats, labels, weights, self.center_lr, self.center_repulsion,
                       self.repulsion_temperature, self.repulsion_pairs)
        self._pending = None

    @torch.no_grad()
    def sync_state(self) -> None:
        """Under torch.distributed: share the rows each rank touched and average the centres; else a no-op."""
        rank, world = runtime.rank_and_world()
        if world == 1:
            return
        runtime.average_(self.centers)
        idx = self._touched if self._touched is not None else torch.zeros(0, dtype=torch.long, device=self.centers.device)
        tensors = [self.confidence_logit.data[idx], self.lambda_momentum[idx], self.last_target[idx]]
        if self.neighbor_mode == "memory_bank":
            tensors += [self.bank_probs[idx], self.bank_features[idx]]
        rows, *gathered = runtime.gather_rows(idx, *tensors)
        self.confidence_logit.data[rows] = gathered[0]
        self.lambda_momentum[rows] = gathered[1]
        self.last_target[rows] = gathered[2]
        if self.neighbor_mode == "memory_bank":
            self._write_bank(rows, gathered[3], gathered[4])
        self._touched = None

    # ------------------------------------------------------------------------------------------ readout
    def readout(self) -> dict[str, torch.Tensor]:
        """Per-sample state after training (for the uncertainty figure), all on CPU, dataset order.

        ``uncertainty`` = the paper's λ, ``confidence`` = the official code's λ (= 1 - uncertainty),
        ``target`` = the last constructed distribution d of each sample (zeros if never visited).
        """
        confidence = torch.sigmoid(self.confidence_logit.detach()[:, 0]).cpu()
        return {
            "uncertainty": 1.0 - confidence,
            "confidence": confidence,
            "target": self.last_target.detach().cpu().clone(),
            "labels": self.labels.cpu().clone(),
            "neighbors": self.neighbors.cpu().clone(),
            "similarity": self.similarity.cpu().clone(),
        }

    def extra_repr(self) -> str:
        return (
            f"num_samples={self.num_samples}, k={self.k}, neighbor_mode={self.neighbor_mode}, "
            f"similarity={self.similarity_kind}(scale={self.similarity_scale}), gamma={self.gamma}"
        )


def readout_from_state_dict(state: Mapping[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    """:meth:`LDLVATarget.readout` from saved tensors (e.g. a checkpoint's ``target.*`` with ``prefix="target."``)."""
    key = prefix + "confidence_logit"
    if key not in state:
        raise TargetStateError(f"No {key!r} in these tensors: they do not hold an ldl_va target's state.")
    confidence = torch.sigmoid(state[key].float()[:, 0])
    out = {"uncertainty": 1.0 - confidence, "confidence": confidence}
    for name, saved in (("target", "last_target"), ("labels", "labels"), ("neighbors", "neighbors"), ("similarity", "similarity")):
        if prefix + saved in state:
            out[name] = state[prefix + saved]
    return out

