"""Figures (matplotlib, headless): the papers' attention overlays, prediction grids, the λ-uncertainty grid,
confusion matrices and training curves. Every function writes one PNG and returns its path.

* :func:`attention_figure` — GLAMOR-Net Figure 5: image, masked-face context, one overlay per attention map.
* :func:`prediction_grid_figure` — GLAMOR-Net Figure 6: one column per sample, ground truth and two models.
* :func:`uncertainty_grid_figure` — LDLVA Figure 4: training images per class sorted by λ.
* :func:`prediction_figure` — one predicted face: the image with its box | the context with the attention map.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zoo.errors import ZooError

if TYPE_CHECKING:  # pragma: no cover
    import torch


def pyplot():
    """matplotlib.pyplot on the headless Agg backend."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path) -> Path:
    """Write ``fig`` as a PNG (folders created), close it, return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    return path


def as_uint8_image(image) -> np.ndarray:
    """HxWx3 uint8 from a PIL image, a uint8/float array, or a normalised 3xHxW tensor (min-max scaled)."""
    if hasattr(image, "convert"):
        return np.asarray(image.convert("RGB"))
    array = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(1, 2, 0)
    if array.dtype != np.uint8:
        lo, hi = float(array.min()), float(array.max())
        array = ((array - lo) / (hi - lo + 1e-12) * 255).round().astype(np.uint8)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return array


def upsample_map(attention: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of an h×w attention map to (H, W), rescaled to [0, 1] for display."""
    import torch
    import torch.nn.functional as F

    a = torch.as_tensor(np.asarray(attention, dtype=np.float32))[None, None]
    up = F.interpolate(a, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()
    return (up - up.min()) / (up.max() - up.min() + 1e-12)


def attention_figure(
    image,
    context,
    maps: Mapping[str, np.ndarray],
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Image | masked-face context | context with each attention map overlaid (GLAMOR-Net Fig. 5)."""
    plt = pyplot()
    image, context = as_uint8_image(image), as_uint8_image(context)
    panels = 2 + len(maps)
    fig, axes = plt.subplots(1, panels, figsize=(2.6 * panels, 2.9))
    axes[0].imshow(image)
    axes[0].set_title("image")
    axes[1].imshow(context)
    axes[1].set_title("context (face masked)")
    for ax, (name, attention) in zip(axes[2:], maps.items(), strict=True):
        ax.imshow(context)
        ax.imshow(upsample_map(attention, context.shape[:2]), cmap="jet", alpha=0.5)
        ax.set_title(f"{name} attention")
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def prediction_grid_figure(
    images: Sequence,
    truths: Sequence[str],
    predictions: Mapping[str, Sequence[str]],
    path: str | Path,
) -> Path:
    """One column per sample: the image, its ground truth and each model's prediction (GLAMOR-Net Fig. 6).

    Correct predictions are green, wrong ones red.
    """
    plt = pyplot()
    n = len(images)
    fig, axes = plt.subplots(1, n, figsize=(1.9 * n, 2.6 + 0.35 * len(predictions)), squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.imshow(as_uint8_image(images[i]))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"GT: {truths[i]}", fontsize=9)
        lines = []
        for model_name, preds in predictions.items():
            lines.append((f"{model_name}: {preds[i]}", "green" if preds[i] == truths[i] else "red"))
        for k, (text, colour) in enumerate(lines):
            ax.text(0.5, -0.08 - 0.13 * k, text, transform=ax.transAxes, ha="center", va="top", fontsize=8,
                    color=colour)
    return save_figure(fig, path)


def uncertainty_grid_figure(
    samples: Mapping[str, Sequence[tuple[object, float]]],
    path: str | Path,
    per_class: int = 6,
    label: str = "λ",
) -> Path:
    """Rows = classes; each row's training images sorted by λ, low to high (LDLVA Fig. 4)."""
    plt = pyplot()
    classes = list(samples)
    fig, axes = plt.subplots(len(classes), per_class, figsize=(1.5 * per_class, 1.7 * len(classes)), squeeze=False)
    for row, name in enumerate(classes):
        ranked = sorted(samples[name], key=lambda item: item[1])
        if len(ranked) > per_class:  # spread the picks over the whole λ range
            picks = np.linspace(0, len(ranked) - 1, per_class).round().astype(int)
            ranked = [ranked[i] for i in picks]
        for col in range(per_class):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col < len(ranked):
                image, value = ranked[col]
                ax.imshow(as_uint8_image(image))
                ax.set_title(f"{label}={value:.2f}", fontsize=8)
            else:
                ax.axis("off")
        axes[row][0].set_ylabel(name, fontsize=9)
    fig.suptitle(f"training images per given (possibly noisy) label, sorted by uncertainty {label} (low → high)")
    return save_figure(fig, path)


def confusion_matrix_figure(
    confusion: np.ndarray, label_names: Sequence[str], path: str | Path, title: str = "confusion matrix"
) -> Path:
    """Row-normalised confusion matrix (rows = true class) with counts and percentages."""
    plt = pyplot()
    cm = np.asarray(confusion, dtype=np.float64)
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    n = len(label_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * n, 0.8 + 0.7 * n))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), label_names, rotation=45, ha="right")
    ax.set_yticks(range(n), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{int(cm[i, j])}\n{100 * rates[i, j]:.0f}%", ha="center", va="center", fontsize=7,
                    color="white" if rates[i, j] > 0.5 else "black")
    ax.set_title(title)
    return save_figure(fig, path)


def metrics_log_rows(path: str | Path) -> list[dict[str, float]]:
    """A run's ``metrics.jsonl`` as flat rows: ``epoch``, ``train_loss`` and every numeric ``val_*`` metric."""
    import json

    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [
        {"epoch": r["epoch"], "train_loss": r.get("train_loss"),
         **{f"val_{k}": v for k, v in (r.get("val") or {}).items() if isinstance(v, (int, float))}}
        for r in rows
    ]


def training_curves_figure(
    rows: Sequence[Mapping[str, float]], path: str | Path, x: str = "epoch", title: str = "training curves"
) -> Path:
    """Loss curves on the left, accuracy-like metrics on the right, from per-epoch metric rows (JSONL)."""
    plt = pyplot()
    keys = sorted({k for r in rows for k, v in r.items() if k != x and isinstance(v, (int, float))})
    loss_keys = [k for k in keys if "loss" in k]
    metric_keys = [k for k in keys if k not in loss_keys and any(s in k for s in ("acc", "f1", "recall"))]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    xs = [r.get(x, i + 1) for i, r in enumerate(rows)]
    for k in loss_keys:
        left.plot(xs, [r.get(k, np.nan) for r in rows], marker="o", label=k)
    for k in metric_keys:
        right.plot(xs, [r.get(k, np.nan) for r in rows], marker="o", label=k)
    left.set_title("loss")
    right.set_title("metrics")
    for ax in (left, right):
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path)


def _to_display(tensor: torch.Tensor, data_config) -> np.ndarray:
    """A normalised 3×H×W model input back to H×W×3 in [0, 1] (the model's mean/std undone)."""
    import torch

    mean = torch.tensor(data_config.mean).view(3, 1, 1)
    std = torch.tensor(data_config.std).view(3, 1, 1)
    return (tensor.float() * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()


def prediction_figure(path: Path, image: Any, box, context: torch.Tensor | None, face: torch.Tensor | None,
                      attention: torch.Tensor | None, data_config, face_entry: dict[str, Any]) -> Path:
    """``zoo-cli predict --save-vis``: the image with the face box | the context crop with the attention map
    overlaid (or the face input). ``context`` / ``face`` are the model's normalised 3×H×W inputs."""
    import torch

    plt = pyplot()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ZooError(f"--save-vis: cannot create the folder {path.parent} ({exc.strerror or exc}).") from None
    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    array = image.permute(1, 2, 0).numpy() if isinstance(image, torch.Tensor) and image.shape[0] == 3 \
        else np.asarray(image)
    axes[0].imshow(array)
    x1, y1, x2, y2 = box
    axes[0].add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color="lime", linewidth=2))
    axes[0].set_title(f"{face_entry['label']} ({face_entry['probability']:.2f})")
    if context is not None:
        shown = _to_display(context, data_config)
        axes[1].imshow(shown)
        if attention is not None:
            axes[1].imshow(upsample_map(attention, shown.shape[:2]), cmap="jet", alpha=0.5)
        axes[1].set_title("context attention" if attention is not None else "context")
    elif face is not None:
        axes[1].imshow(_to_display(face, data_config))
        axes[1].set_title("face input")
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=80)
    except OSError as exc:
        raise ZooError(f"--save-vis: cannot write {path} ({exc.strerror or exc}).") from None
    finally:
        plt.close(fig)
    return path
