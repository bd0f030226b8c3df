"""Probability calibration: temperature scaling and the expected calibration error.

Temperature scaling (Guo, Pleiss, Sun, Weinberger, "On Calibration of Modern Neural Networks", ICML 2017, §4.2):
one scalar T > 0 divides the logits, softmax(z / T), fitted by minimising the negative log-likelihood on held-out
data; the predicted class does not change. The expected calibration error (their eq. 3) over M equal-width
confidence bins B_m: ECE = Σ_m |B_m| / n · |acc(B_m) − conf(B_m)|.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["expected_calibration_error", "fit_temperature"]


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """ECE (Guo et al. 2017, eq. 3) of ``probs`` (N×C) against ``labels`` (N) over ``bins`` equal-width bins of
    the top probability; a bin's lower edge is open, its upper edge closed, as in their code."""
    if probs.ndim != 2 or labels.shape != probs.shape[:1]:
        raise ValueError(f"ECE needs N×C probabilities and N labels, got {tuple(probs.shape)} and "
                         f"{tuple(labels.shape)}.")
    if len(labels) == 0:
        raise ValueError("ECE of no samples is undefined.")
    confidence, predicted = probs.float().max(dim=1)
    correct = (predicted == labels).float()
    edges = torch.linspace(0, 1, bins + 1)
    ece = torch.zeros(())
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            ece += inside.float().mean() * (correct[inside].mean() - confidence[inside].mean()).abs()
    return float(ece)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature T minimising the NLL of softmax(logits / T) on ``labels`` (Guo et al. 2017, §4.2).

    The NLL is convex in 1/T, so a bounded golden-section search over log T finds its minimum without a
    learning rate; ``bounds`` keeps T finite when the data are separable.
    """
    if logits.ndim != 2 or labels.shape != logits.shape[:1] or len(labels) == 0:
        raise ValueError(f"fit_temperature needs N×C logits and N labels (N > 0), got {tuple(logits.shape)} and "
                         f"{tuple(labels.shape)}.")
    logits = logits.double()

    def nll(log_t: float) -> float:
        return float(F.cross_entropy(logits / torch.exp(torch.tensor(log_t, dtype=torch.float64)), labels))

    low, high = (float(torch.log(torch.tensor(b))) for b in bounds)
    ratio = (5 ** 0.5 - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = nll(a), nll(b)
    for _ in range(80):
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = nll(a)
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = nll(b)
    return float(torch.exp(torch.tensor((low + high) / 2)))
