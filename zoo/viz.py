"""Figures (matplotlib, headless): the papers' attention overlays, prediction grids, the λ-uncertainty grid,
confusion matrices and training curves. Every function writes one PNG and returns its path.

* :func:`attention_figure` — GLAMOR-Net Figure 5: image, masked-face context, one overlay per attention map.
* :func:`prediction_grid_figure` — GLAMOR-Net Figure 6: one column per sample, ground truth and two models.
* :func:`uncertainty_grid_figure` — LDLVA Figure 4: training images per class sorted by λ.
* :func:`annotated_photo` — one photo's prediction (every face boxed and labelled, probability bars, context
  attention), drawn by the web app's functions (:func:`draw_face_boxes`, :func:`probability_bars`,
  :func:`attention_panel`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import ZooError


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


# --------------------------------------------------------------- annotated photos (web app and predict --save-vis)

#: box / bar colours, one per face number (matplotlib's tab10)
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]
#: drawn photos are scaled so that their longer side is at most this (the analysis runs at full size)
DISPLAY_SIDE = 1024


def face_colour(number: int) -> str:
    """The colour of face ``number`` (numbered from 0, as in every result)."""
    return COLOURS[number % len(COLOURS)]


def display_copy(image: Any, side: int = DISPLAY_SIDE) -> tuple[Any, float]:
    """A copy of the PIL ``image`` whose longer side is at most ``side``, and the scale applied."""
    from PIL import Image

    scale = min(1.0, side / max(image.size))
    if scale < 1.0:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    else:
        image = image.copy()
    return image, scale


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the bitmap font
        return ImageFont.load_default()


def draw_face_boxes(image: Any, faces: Sequence[Any], boxes: bool = True) -> Any:
    """The photo (scaled by :func:`display_copy`) with each face boxed in its colour and tagged
    ``#i Label 62%``. ``faces`` have ``face`` (number), ``box``, ``label`` and ``probability``; ``boxes``
    False leaves the rectangles out (a whole-scene result)."""
    from PIL import ImageDraw

    image, scale = display_copy(image)
    draw = ImageDraw.Draw(image)
    width = max(2, round(max(image.size) / 300))
    font = _font(max(12, round(max(image.size) / 45)))
    for face in faces:
        colour = face_colour(face.face)
        x1, y1, x2, y2 = (v * scale for v in (face.box or (0, 0, *image.size)))
        if boxes and face.box is not None:
            draw.rectangle((x1, y1, x2, y2), outline=colour, width=width)
        text = f"#{face.face} {face.label} {100 * face.probability:.0f}%"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = right - left, bottom - top
        ty = y1 - th - 2 * width if y1 - th - 2 * width >= 0 else y2
        tx = min(max(0, x1), max(0, image.width - tw - 2 * width))
        draw.rectangle((tx, ty, tx + tw + 2 * width, ty + th + 2 * width), fill=colour)
        draw.text((tx + width - left, ty + width - top), text, fill="white", font=font)
    return image


def figure_to_image(fig: Any) -> Any:
    """A matplotlib figure as a PIL RGB image (the figure is closed)."""
    import io

    from PIL import Image

    plt = pyplot()
    buffer = io.BytesIO()
    # the padding keeps the first title clear of the label Gradio draws over an image's top-left corner
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight", pad_inches=0.4)
    plt.close(fig)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def probability_bars(faces: Sequence[Any], max_faces: int = 8) -> Any:
    """One horizontal bar chart of class probabilities per face, in the face's colour (None: no face);
    fusion weights ``[w_f, w_c]`` in the title when the face has them."""
    if not faces:
        return None
    plt = pyplot()
    faces = list(faces)[:max_faces]
    names = list(faces[0].probs)
    cols = 1 if len(faces) == 1 else 2
    rows = (len(faces) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 0.32 * len(names) * rows + 0.9 * rows),
                             squeeze=False)
    for ax in axes.flat[len(faces):]:
        ax.axis("off")
    for ax, face in zip(axes.flat, faces, strict=False):
        colour = face_colour(face.face)
        values = [face.probs[n] for n in names]
        bars = ax.barh(range(len(names)), values, color=[colour if n == face.label else "#c8ccd2" for n in names])
        ax.set_yticks(range(len(names)), names, fontsize=9)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.tick_params(axis="x", labelsize=8)
        for bar, value in zip(bars, values, strict=True):
            ax.text(min(value + 0.02, 0.85), bar.get_y() + bar.get_height() / 2, f"{100 * value:.0f}%",
                    va="center", fontsize=8)
        title = f"#{face.face}: {face.label} ({100 * face.probability:.0f}%)"
        if face.fusion_weights is not None:
            w_f, w_c = face.fusion_weights
            title += f"\nfusion: face {w_f:.2f} · context {w_c:.2f}"
        ax.set_title(title, fontsize=10, color=colour, loc="left")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    fig.tight_layout()
    return figure_to_image(fig)


def context_window(image_size: tuple[int, int], data_config: Any) -> tuple[float, float, float, float]:
    """The part of the photo (x1, y1, x2, y2 in pixels) that the context stream sees at inference.

    The context is the photo resized to ``context_resize`` and centre-cropped to ``context_size``
    (``zoo.data.transforms.crop_context``); this maps that crop back to photo coordinates.
    """
    width, height = image_size
    rh, rw = data_config.context_resize
    ch, cw = data_config.context_size
    top, left = (rh - ch) // 2, (rw - cw) // 2
    return left / rw * width, top / rh * height, (left + cw) / rw * width, (top + ch) / rh * height


def attention_panel(image: Any, face: Any, attention: np.ndarray, data_config: Any, box: bool = True) -> Any:
    """The photo, dimmed, with ``face``'s context attention map (bilinear, jet) over the window the context
    stream sees; the face's own box (masked out of the context) is outlined unless ``box`` is False."""
    from matplotlib import colormaps
    from PIL import Image, ImageDraw

    shown, scale = display_copy(image)
    x1, y1, x2, y2 = (round(v * scale) for v in context_window(image.size, data_config))
    x2, y2 = min(x2, shown.width), min(y2, shown.height)
    heat = upsample_map(attention, (max(1, y2 - y1), max(1, x2 - x1)))
    colour = (colormaps["jet"](heat)[..., :3] * 255).astype(np.float32)
    base = np.asarray(shown, dtype=np.float32) * 0.45
    alpha = (0.35 + 0.5 * heat)[..., None]
    region = base[y1:y2, x1:x2]
    base[y1:y2, x1:x2] = region * (1 - alpha) + colour * alpha
    out = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(out)
    width = max(2, round(max(out.size) / 300))
    draw.rectangle((x1, y1, x2 - 1, y2 - 1), outline="white", width=1)
    if box and face.box is not None:
        fx1, fy1, fx2, fy2 = (v * scale for v in face.box)
        draw.rectangle((fx1, fy1, fx2, fy2), outline=face_colour(face.face), width=width)
    return out


def annotated_photo(image: Any, faces: Sequence[Any], attention: Sequence[np.ndarray | None] = (),
                    data_config: Any = None, bars: bool = True, attention_panels: bool = True) -> Any:
    """``zoo-cli predict --save-vis``: one picture per photo, the web app's drawings stacked: the photo with
    every face boxed and labelled (:func:`draw_face_boxes`), then the probability bars
    (:func:`probability_bars`) and each face's context attention (:func:`attention_panel`) when asked for
    and available."""
    from PIL import Image

    parts = [draw_face_boxes(image, faces)]
    if bars and faces:
        parts.append(probability_bars(faces))
    if attention_panels and data_config is not None:
        parts += [attention_panel(image, face, a, data_config)
                  for face, a in zip(faces, attention, strict=False) if a is not None]
    width = max(p.width for p in parts)
    out = Image.new("RGB", (width, sum(p.height for p in parts)), "white")
    top = 0
    for part in parts:
        out.paste(part, (0, top))
        top += part.height
    return out


def save_picture(picture: Any, path: str | Path) -> Path:
    """Write a PIL picture as a PNG (folders created); a folder or file that cannot be written is a
    :class:`zoo.errors.ZooError` naming it."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ZooError(f"--save-vis: cannot create the folder {path.parent} ({exc.strerror or exc}).") from None
    try:
        picture.save(path)
    except OSError as exc:
        raise ZooError(f"--save-vis: cannot write {path} ({exc.strerror or exc}).") from None
    return path
