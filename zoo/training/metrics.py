"""Classification metrics from predictions (accuracy, balanced accuracy, macro-F1, per-class recall,
confusion) and, for data with reference label distributions (FER+ votes), KL / JS divergence and top-1
agreement with the annotators' majority. Everything is computed from a confusion matrix, vectorised.
"""

from __future__ import annotations

from typing import Any

import torch

#: batch entry holding a sample's reference label distribution (B×C vote counts or probabilities)
DISTRIBUTION_KEY = "distribution"


def confusion_matrix(labels: torch.Tensor, preds: torch.Tensor, num_classes: int) -> torch.Tensor:
    """C×C counts; row = true class, column = predicted class."""
    labels, preds = labels.long().flatten(), preds.long().flatten()
    flat = labels * num_classes + preds
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def classification_metrics(
    labels: torch.Tensor, preds: torch.Tensor, num_classes: int, label_names: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro-F1, per-class recall and the confusion matrix.

    Balanced accuracy averages recall over the classes present in ``labels``; macro-F1 averages F1 over the
    classes present in ``labels`` or ``preds`` (scikit-learn's conventions; an undefined precision counts
    as 0). Per-class recall is None for a class with no samples.
    """
    cm = confusion_matrix(labels, preds, num_classes).double()
    support, predicted, hits = cm.sum(1), cm.sum(0), cm.diagonal()
    total = support.sum().clamp_min(1)
    present = support > 0
    recall = torch.where(present, hits / support.clamp_min(1), torch.zeros_like(hits))
    precision = torch.where(predicted > 0, hits / predicted.clamp_min(1), torch.zeros_like(hits))
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp_min(1e-12), torch.zeros_like(hits))
    f1_classes = present | (predicted > 0)
    names = label_names or tuple(f"class_{i}" for i in range(num_classes))
    return {
        "accuracy": float(hits.sum() / total),
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[f1_classes].mean()) if f1_classes.any() else 0.0,
        "per_class_recall": {
            name: (float(recall[i]) if present[i] else None) for i, name in enumerate(names)
        },
        "confusion": cm.long().tolist(),
        "num_samples": int(support.sum()),
    }


def distribution_metrics(probs: torch.Tensor, reference: torch.Tensor, eps: float = 1e-10) -> dict[str, float]:
    """KL(ref ‖ pred), JS(ref, pred) (natural log, batch means) and top-1 agreement with the majority vote.

    ``reference`` is B×C vote counts or probabilities; rows are normalised to sum to 1. Rows that are NaN or
    sum to 0 (no reference for that sample) are left out; ``reference_samples`` says how many were used.
    """
    usable = torch.isfinite(reference).all(1) & (reference.double().clamp_min(0).sum(1) > 0)
    probs, reference = probs[usable], reference[usable]
    if not len(reference):
        return {"reference_samples": 0}
    p = probs.double().clamp_min(0)
    p = p / p.sum(1, keepdim=True).clamp_min(eps)
    q = reference.double().clamp_min(0)
    q = q / q.sum(1, keepdim=True).clamp_min(eps)

    def kl(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(a > 0, a * (torch.log(a.clamp_min(eps)) - torch.log(b.clamp_min(eps))), 0.0).sum(1)

    m = 0.5 * (p + q)
    return {
        "kl": float(kl(q, p).mean()),
        "js": float((0.5 * kl(q, m) + 0.5 * kl(p, m)).mean()),
        "majority_agreement": float((p.argmax(1) == q.argmax(1)).double().mean()),
        "reference_samples": int(usable.sum()),
    }
