"""The discriminative loss L_D and the class-centre update (LDLVA paper, "Discriminative Loss"; methods.md §3.2).

Paper: ``L_D = ½ Σ_i (1-λ_i) ‖v_i - μ_{y_i}‖² + Σ_j Σ_{k≠j} exp(-‖μ_j - μ_k‖² / √V)``, λ = uncertainty.
Official code (followed here): the intra-class sum runs over the B central samples *and* their K neighbours
(neighbours' given labels, detached features), is divided by ``M = B(1+K)``, and its weight (1-λ) is
stop-gradiented. The inter-class term only moves the centres, which are not trained by back-propagation but
updated after each step (:func:`update_centers`):

1. ``μ_c += α Σ_{j: y_j=c} w_j (x_j - μ_c) / ((n_c + 1) M)``  (α = 0.5 in the code; n_c = batch members of class c);
2. ``μ -= α β ∇_μ R(μ)`` with R the inter-class term (β = 0.1 in the code).

The official code's R is ``Σ_{i<j} exp(-‖μ_i-μ_j‖²/V)``: that is ``repulsion_temperature=V`` with β halved
(0.05), since R here sums ordered pairs as the paper does.
"""

from __future__ import annotations

import math

import torch


def intra_class_loss(features: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """``½ Σ_j w_j ‖x_j - μ_{y_j}‖² / M`` over the M rows of ``features`` (weights are not differentiated)."""
    diff = features - centers[labels]
    return 0.5 * (weights.detach() * (diff * diff).sum(dim=1)).sum() / features.shape[0]


def inter_class_term(centers: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
    """``Σ_j Σ_{k≠j} exp(-‖μ_j - μ_k‖² / τ)``, τ = √V by default (V = feature dimension)."""
    tau = math.sqrt(centers.shape[1]) if temperature is None else temperature
    d2 = _pairwise_sq(centers)
    off_diagonal = ~torch.eye(centers.shape[0], dtype=torch.bool, device=centers.device)
    return torch.exp(-d2 / tau)[off_diagonal].sum()


def _pairwise_sq(centers: torch.Tensor) -> torch.Tensor:
    diff = centers[:, None, :] - centers[None, :, :]
    return (diff * diff).sum(dim=-1)


def inter_class_gradient(centers: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
    """Closed-form ``∇_μ`` of :func:`inter_class_term`: ``∂R/∂μ_j = -(4/τ) Σ_{k≠j} e_jk (μ_j - μ_k)``."""
    tau = math.sqrt(centers.shape[1]) if temperature is None else temperature
    e = torch.exp(-_pairwise_sq(centers) / tau)
    e.fill_diagonal_(0.0)
    return -(4.0 / tau) * (e.sum(dim=1, keepdim=True) * centers - e @ centers)


@torch.no_grad()
def update_centers(
    centers: torch.Tensor,
    features: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor,
    lr: float = 0.5,
    repulsion: float = 0.1,
    temperature: float | None = None,
) -> torch.Tensor:
    """Apply the official two-step centre update in place and return ``centers`` (C×V)."""
    num_classes = centers.shape[0]
    m = features.shape[0]
    if m > 0:
        counts = torch.bincount(labels, minlength=num_classes).to(centers.dtype)
        delta = weights[:, None].to(centers.dtype) * (features.to(centers.dtype) - centers[labels])
        pull = torch.zeros_like(centers).index_add_(0, labels, delta)
        centers += lr * pull / ((counts[:, None] + 1.0) * m)
    centers -= lr * repulsion * inter_class_gradient(centers, temperature)
    return centers
