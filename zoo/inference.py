"""``zoo.predict``: find the faces in images, build each face's face and context inputs, classify them.

(The module is ``zoo.inference``, not ``zoo.predict``, so that importing it never shadows the function.)

Face detection and the input pipeline are the data package's (``zoo.data.load_image``,
``zoo.data.detect_faces``, ``zoo.data.preprocess``), so inference prepares inputs exactly as the model's
``DataConfig`` and the evaluation pipeline do (methods.md §1.3, §2.2). ``save_vis`` writes, per face, the
image with its box next to the context crop with the attention map (``EmotionOutput.attention``) overlaid.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from zoo.registry import ZooError


def box_fields(box: Any) -> tuple[float, float, float, float, float]:
    """``(x1, y1, x2, y2, score)`` from a box given as an object with attributes, a dict or a sequence."""
    names = ("x1", "y1", "x2", "y2", "score")
    if isinstance(box, dict):
        values = [box.get(n, 1.0 if n == "score" else None) for n in names]
    elif hasattr(box, "x1"):
        values = [getattr(box, n, 1.0 if n == "score" else None) for n in names]
    else:
        seq = list(box.tolist() if hasattr(box, "tolist") else box)
        values = [*seq[:5], *([1.0] if len(seq) == 4 else [])]
    if any(v is None for v in values):
        raise ZooError(f"A face box needs x1, y1, x2, y2 (and score); got {box!r}.")
    return tuple(float(v) for v in values)  # type: ignore[return-value]


@torch.no_grad()
def predict(
    images: list[str | os.PathLike] | str | os.PathLike,
    model: Any = "glamor_net",
    detector: str = "haar",
    device: str = "auto",
    min_score: float = 0.0,
    save_vis: str | os.PathLike | None = None,
    boxes: list[list[Any]] | None = None,
) -> list[dict[str, Any]]:
    """Emotion probabilities for every face found in each image.

    ``model`` is an :class:`zoo.model.EmotionModel`, a preset, ``local-dir:DIR`` or ``hf-hub:REPO``.
    ``boxes`` (one list of ``(x1, y1, x2, y2)`` per image) gives known face boxes and skips detection.
    Returns one entry per image: ``{"image", "faces": [{"box", "score", "label", "probs", ...}]}``.
    """
    from zoo import data as zdata
    from zoo.factory import create

    missing = [n for n in ("load_image", "detect_faces", "preprocess") if not hasattr(zdata, n)]
    if missing:
        raise ZooError(f"zoo.data lacks {', '.join(missing)}: this installation has no face detection / input "
                       f"pipeline; install the complete emotion-zoo.")
    if isinstance(images, (str, os.PathLike)):
        images = [images]
    if boxes is not None and len(boxes) != len(images):
        raise ZooError(f"boxes: one list of boxes per image is needed ({len(images)} images, {len(boxes)} lists).")
    from zoo.training.settings import resolve_device

    dev = resolve_device(device)
    net = create(model) if isinstance(model, str) else model
    net = net.to(dev).eval()
    cfg = net.config
    names = net.label_names
    vis_stems = _vis_stems(images)
    results = []
    for image_index, path in enumerate(images):
        if not Path(path).exists():
            raise ZooError(f"{path}: no such image file.")
        image = zdata.load_image(path)
        if boxes is not None:
            found = [box_fields(box) for box in boxes[image_index]]
        else:
            found = [b for b in zdata.detect_faces(image, detector=detector) if box_fields(b)[4] >= min_score]
        entry: dict[str, Any] = {"image": str(path), "faces": []}
        if found:
            inputs = [zdata.preprocess(image, b, cfg.data, train=False, streams=cfg.streams) for b in found]
            face = torch.stack([x["face"] for x in inputs]).to(dev) if cfg.uses_face else None
            context = torch.stack([x["context"] for x in inputs]).to(dev) if cfg.uses_context else None
            output = net(face=face, context=context)
            _check_finite(output, path)
            probs = output.probs.cpu()
            for i, b in enumerate(found):
                x1, y1, x2, y2, score = box_fields(b)
                top = int(probs[i].argmax())
                face_entry = {
                    "face": i, "box": [x1, y1, x2, y2], "score": score, "label": names[top],
                    "probability": float(probs[i, top]),
                    "probs": {n: float(p) for n, p in zip(names, probs[i].tolist(), strict=True)},
                }
                if output.fusion_weights is not None:
                    face_entry["fusion_weights"] = [float(w) for w in output.fusion_weights[i].tolist()]
                if save_vis is not None:
                    attention = output.attention[i].float().cpu() if output.attention is not None else None
                    face_entry["vis"] = str(save_visualisation(
                        Path(save_vis) / f"{vis_stems[image_index]}_face{i}.png", image, (x1, y1, x2, y2),
                        None if context is None else context[i].cpu(), face[i].cpu() if face is not None else None,
                        attention, cfg.data, face_entry))
                entry["faces"].append(face_entry)
        results.append(entry)
    return results


def _vis_stems(images: list[Any]) -> list[str]:
    """File stems for ``--save-vis``: images sharing a stem (``a/x.jpg``, ``b/x.png``) get ``x``, ``x-2``, ...
    so no overlay overwrites another."""
    stems, seen = [], {}
    for path in images:
        stem = Path(path).stem
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return stems


def _check_finite(output: Any, path: Any) -> None:
    """Every number reported must be finite: NaN or infinite outputs are an error, never a "p=NaN" result."""
    for name in ("logits", "fusion_weights", "attention"):
        value = getattr(output, name, None)
        if value is not None and not torch.isfinite(value).all():
            raise ZooError(
                f"{path}: the model produced NaN or infinite {name}; its weights or normalisation (mean/std in "
                f"config.json) are broken, or the input overflowed. No result is reported for it."
            )


def _to_display(tensor: torch.Tensor, data_config) -> Any:
    mean = torch.tensor(data_config.mean).view(3, 1, 1)
    std = torch.tensor(data_config.std).view(3, 1, 1)
    return (tensor.float() * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()


def save_visualisation(path: Path, image: Any, box, context: torch.Tensor | None, face: torch.Tensor | None,
                       attention: torch.Tensor | None, data_config, face_entry: dict[str, Any]) -> Path:
    """PNG: the image with the face box | the context crop with the attention map overlaid (or the face)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ZooError("--save-vis needs matplotlib: pip install matplotlib") from exc
    import numpy as np

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
            h, w = shown.shape[:2]
            up = torch.nn.functional.interpolate(attention[None, None], size=(h, w), mode="bilinear",
                                                 align_corners=False)[0, 0]
            axes[1].imshow(up.numpy(), cmap="jet", alpha=0.5)
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
