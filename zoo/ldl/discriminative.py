"""The discriminative loss L_D and the class-centre update (LDLVA paper, "Discriminative Loss"; official src/utils.py).

Paper: ``L_D = ½ Σ_i (1-λ_i) ‖v_i - μ_{y_i}‖² + Σ_j Σ_{k≠j} exp(-‖μ_j - μ_k‖² / √V)``, λ = uncertainty.
Official code (followed here): the intra-class sum runs over the B central samples *and* their K neighbours
(neighbours' given labels, detached features), is divided by ``M = B(1+K)``, and its weight (1-λ) is
stop-gradiented. The inter-class term only moves the centres, which are not trained by back-propagation but
updated after each step (:func:`update_centers`):

1. ``μ_c += α Σ_{j: y_j=c} w_j (x_j - μ_c) / ((n_c + 1) M)``  (α = 0.5 in the code; n_c = batch members of class c);
2. ``μ -= α β ∇_μ R(μ)`` with R the inter-class term (β = 0.1 in the code).

R in two forms (``pairs``, ``temperature``):

* paper (default): ``Σ_j Σ_{k≠j} exp(-‖μ_j-μ_k‖² / √V)``, ordered pairs, τ = √V;
* official code (``pairs="unordered"``, ``temperature="dim"``): ``Σ_{i<j} exp(-‖μ_i-μ_j‖² / V)``
  (minhnhatvt/label-distribution-learning-fer-tf @a741b363d328d7cb9156dc5b94927bdd7f391c57:src/utils.py,
  ``DiscriminativeLoss.update_centers``, step factor 0.1): half the ordered sum, so half the step for one β.
"""

from __future__ import annotations

import math

import torch

#: the inter-class sum over ordered pairs (paper) or over i < j (official code)
REPULSION_PAIRS = ("ordered", "unordered")


def repulsion_tau(temperature: float | str | None, dim: int) -> float:
    """τ of the inter-class term: None / ``"sqrt_dim"`` = √V (paper), ``"dim"`` = V (official code), or a number."""
    if temperature is None or temperature == "sqrt_dim":
        return math.sqrt(dim)
    if temperature == "dim":
        return float(dim)
    if isinstance(temperature, str):
        raise ValueError(f"repulsion_temperature must be a number, 'sqrt_dim' (paper) or 'dim' (official code), "
                         f"got {temperature!r}.")
    return float(temperature)


def _pair_factor(pairs: str) -> float:
    if pairs not in REPULSION_PAIRS:
        raise ValueError(f"repulsion_pairs must be one of {REPULSION_PAIRS}, got {pairs!r}.")
    return 1.0 if pairs == "ordered" else 0.5


def intra_class_loss(features: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """``½ Σ_j w_j ‖x_j - μ_{y_j}‖² / M`` over the M rows of ``features`` (weights are not differentiated)."""
    diff = features - centers[labels]
    return 0.5 * (weights.detach() * (diff * diff).sum(dim=1)).sum() / features.shape[0]


def inter_class_term(centers: torch.Tensor, temperature: float | str | None = None, pairs: str = "ordered") -> torch.Tensor:
    """``Σ_j Σ_{k≠j} exp(-‖μ_j - μ_k‖² / τ)`` (``pairs="unordered"``: over j < k, half of it); τ from
    :func:`repulsion_tau` (√V by default, V = feature dimension)."""
    tau = repulsion_tau(temperature, centers.shape[1])
    d2 = _pairwise_sq(centers)
    off_diagonal = ~torch.eye(centers.shape[0], dtype=torch.bool, device=centers.device)
    return _pair_factor(pairs) * torch.exp(-d2 / tau)[off_diagonal].sum()


def _pairwise_sq(centers: torch.Tensor) -> torch.Tensor:
    diff = centers[:, None, :] - centers[None, :, :]
    return (diff * diff).sum(dim=-1)


def inter_class_gradient(centers: torch.Tensor, temperature: float | str | None = None, pairs: str = "ordered") -> torch.Tensor:
    """Closed-form ``∇_μ`` of :func:`inter_class_term`: ordered pairs ``∂R/∂μ_j = -(4/τ) Σ_{k≠j} e_jk (μ_j - μ_k)``
    (unordered: half)."""
    tau = repulsion_tau(temperature, centers.shape[1])
    e = torch.exp(-_pairwise_sq(centers) / tau)
    e.fill_diagonal_(0.0)
    return -(4.0 * _pair_factor(pairs) / tau) * (e.sum(dim=1, keepdim=True) * centers - e @ centers)


@torch.no_grad()
def update_centers(
    centers: torch.Tensor,
    features: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor,
    lr: float = 0.5,
    repulsion: float = 0.1,
    temperature: float | str | None = None,
    pairs: str = "ordered",
) -> torch.Tensor:
    """Apply the official two-step centre update in place and return ``centers`` (C×V)."""
    num_classes = centers.shape[0]
    m = features.shape[0]
    if m > 0:
        counts = torch.bincount(labels, minlength=num_classes).to(centers.dtype)
        delta = weights[:, None].to(centers.dtype) * (features.to(centers.dtype) - centers[labels])
        pull = torch.zeros_like(centers).index_add_(0, labels, delta)
        centers += lr * pull / ((counts[:, None] + 1.0) * m)
    centers -= lr * repulsion * inter_class_gradient(centers, temperature, pairs)
    return centers
