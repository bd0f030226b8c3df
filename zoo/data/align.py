"""Face alignment from five landmarks: eyes level, at a fixed distance and position in the crop.

One similarity transform (rotation, uniform scale, translation) maps the crop's unit square onto the image so
that the two eye centres land on :data:`EYE_TEMPLATE`. It is the same function in training (landmarks found
once inside each labelled box and cached with the data, ``benchmarks/joint_release.py``) and in ``predict``
(MTCNN's landmarks, or O-Net's inside a given box), so a model sees the same framing in both.

The template is FER2013's own framing: the mean O-Net eye centres of the 26,878 FER2013 training crops whose
landmarks pass :func:`plausible_landmarks` (x 0.318 and 0.686, y 0.376 and 0.369, levelled to their mean):
aligned faces look like FER2013's roughly aligned crops, on which most of the training faces were taken.

Landmarks are ``N×5×2`` pixel coordinates (x, y) in MTCNN's order: left eye, right eye, nose, left and right
mouth corner (Zhang et al., "Joint Face Detection and Alignment Using Multitask Cascaded Convolutional
Networks", IEEE SPL 2016), where "left" is the image's left.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["BOX_MARGIN", "CANVAS", "EYE_TEMPLATE", "aligned_face", "alignment_theta", "box_theta",
           "compose_theta", "eye_roll_degrees", "face_canvas", "plausible_landmarks", "rotation_theta", "warp"]

#: (x, y) of the left and right eye centres in the crop's unit square: FER2013's mean O-Net eye positions
EYE_TEMPLATE: tuple[tuple[float, float], tuple[float, float]] = ((0.318, 0.373), (0.686, 0.373))


def _check_landmarks(landmarks: torch.Tensor) -> torch.Tensor:
    if landmarks.ndim != 3 or landmarks.shape[1] < 2 or landmarks.shape[2] != 2:
        raise ValueError(f"landmarks must be N×5×2 (x, y) pixel coordinates, got shape {tuple(landmarks.shape)}.")
    if not torch.isfinite(landmarks[:, :2]).all():
        raise ValueError("landmarks: the eye coordinates must be finite numbers.")
    return landmarks.to(torch.float64)


def eye_roll_degrees(landmarks: torch.Tensor) -> torch.Tensor:
    """The angle (degrees, N) of the line from the left to the right eye; positive when the right eye is lower."""
    eyes = _check_landmarks(landmarks)
    delta = eyes[:, 1] - eyes[:, 0]
    return torch.rad2deg(torch.atan2(delta[:, 1], delta[:, 0])).to(torch.float32)


def _similarity_theta(a: torch.Tensor, b: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``affine_grid`` matrices (N×2×3) for the map unit point z -> a·z + b (complex numbers; pixels out).

    ``affine_grid`` (align_corners=False) sends output coordinates u ∈ [-1, 1] (z = (u + 1) / 2) to input
    coordinates 2x/W - 1, with x a continuous pixel coordinate (0 is the first pixel's left edge).
    """
    ar, ai, br, bi = a.real, a.imag, b.real, b.imag
    theta = torch.stack([
        torch.stack([ar / width, -ai / width, (ar - ai + 2 * br) / width - 1], dim=1),
        torch.stack([ai / height, ar / height, (ai + ar + 2 * bi) / height - 1], dim=1),
    ], dim=1)
    return theta.to(torch.float32)


def alignment_theta(landmarks: torch.Tensor, image_size: tuple[int, int],
                    template: Sequence[Sequence[float]] = EYE_TEMPLATE) -> torch.Tensor:
    """``affine_grid`` matrices (N×2×3) of the similarity transform that puts the eyes on ``template``.

    With eye centres L, R (pixels, complex x + iy) and template points l, r (unit square), the crop point z
    is read from the image at a·z + b with a = (R - L) / (r - l), b = L - a·l: the eyes end up level, their
    distance fixed, their midpoint fixed. ``image_size`` is (height, width) of the image sampled.
    """
    eyes = _check_landmarks(landmarks)
    left = torch.complex(eyes[:, 0, 0], eyes[:, 0, 1])
    right = torch.complex(eyes[:, 1, 0], eyes[:, 1, 1])
    (lx, ly), (rx, ry) = template
    t_left, t_right = complex(lx, ly), complex(rx, ry)
    if abs(t_right - t_left) < 1e-6:
        raise ValueError(f"alignment template {template!r}: the two eye positions must differ.")
    if bool((right == left).any()):
        raise ValueError("landmarks: a face has both eyes at the same point; it cannot be aligned.")
    a = (right - left) / (t_right - t_left)
    b = left - a * t_left
    return _similarity_theta(a, b, *image_size)


def box_theta(boxes: torch.Tensor, image_size: tuple[int, int], margin: float = 0.0) -> torch.Tensor:
    """``affine_grid`` matrices (N×2×3) that crop each box (N×4 x1, y1, x2, y2 pixels), grown by ``margin``
    of its size on each side, into the output (no alignment: ``DataConfig.align="none"``)."""
    boxes = boxes.to(torch.float64)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    x1, y1 = boxes[:, 0] - margin * w, boxes[:, 1] - margin * h
    sx, sy = w * (1 + 2 * margin), h * (1 + 2 * margin)
    height, width = image_size
    zeros = torch.zeros_like(sx)
    theta = torch.stack([
        torch.stack([sx / width, zeros, (sx + 2 * x1) / width - 1], dim=1),
        torch.stack([zeros, sy / height, (sy + 2 * y1) / height - 1], dim=1),
    ], dim=1)
    return theta.to(torch.float32)


def compose_theta(theta: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """``theta ∘ inner``: first ``inner`` (N×2×3, output -> intermediate), then ``theta`` (intermediate -> input),
    e.g. an augmentation's random similarity followed by the alignment."""
    linear = theta[:, :, :2]
    return torch.cat([linear @ inner[:, :, :2], linear @ inner[:, :, 2:] + theta[:, :, 2:]], dim=2)


def warp(images: torch.Tensor, theta: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """Sample ``images`` (N×C×H×W float) through ``theta`` (N×2×3) into N×C×size crops; outside the image the
    edge pixels repeat (``padding_mode="border"``)."""
    if images.shape[0] != theta.shape[0]:
        raise ValueError(f"warp: {images.shape[0]} images but {theta.shape[0]} transforms.")
    grid = F.affine_grid(theta.to(images.dtype), [images.shape[0], images.shape[1], *size], align_corners=False)
    return F.grid_sample(images, grid, mode=mode, padding_mode="border", align_corners=False)


def rotation_theta(degrees: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor,
                   flip: torch.Tensor | None = None) -> torch.Tensor:
    """Random-similarity matrices in the crop's own coordinates (N×2×3): rotate by ``degrees`` and zoom by
    1/``scale`` about the centre, move by ``shift`` (N×2, fractions of the crop), mirror where ``flip``."""
    rad = degrees.to(torch.float32) * (math.pi / 180)
    cos, sin = torch.cos(rad) * scale, torch.sin(rad) * scale
    mirror = torch.ones_like(cos) if flip is None else 1 - 2 * flip.to(torch.float32)
    theta = torch.stack([
        torch.stack([cos * mirror, -sin, 2 * shift[:, 0]], dim=1),
        torch.stack([sin * mirror, cos, 2 * shift[:, 1]], dim=1),
    ], dim=1)
    return theta


# ------------------------------------------------------------------------------------------------ one face crop
#: the canvas a face is first resampled to: the square of ``CANVAS_SPAN`` box sides around the box's centre,
#: ``CANVAS`` pixels wide (area-averaged when it shrinks, so a large face is not aliased by the final warp)
CANVAS = 96
CANVAS_SPAN = 2.0
#: without usable landmarks a face is framed by its box grown by this fraction per side (FER2013-like margin)
BOX_MARGIN = 0.12


def face_canvas(image: np.ndarray, box: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The face's canvas (``CANVAS``² × C uint8, edges replicated beyond the image) and the 2×3 matrix that
    maps image pixels to canvas pixels."""
    import cv2

    x1, y1, x2, y2 = (float(v) for v in box[:4])
    side = CANVAS_SPAN * max(x2 - x1, y2 - y1, 1.0)
    scale = CANVAS / side
    x0, y0 = (x1 + x2) / 2 - side / 2, (y1 + y2) / 2 - side / 2
    matrix = np.array([[scale, 0.0, -x0 * scale], [0.0, scale, -y0 * scale]])
    canvas = cv2.warpAffine(image, matrix, (CANVAS, CANVAS), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    return canvas.reshape(CANVAS, CANVAS, -1), matrix


def plausible_landmarks(landmarks: np.ndarray, boxes: np.ndarray, prob: np.ndarray | None = None) -> np.ndarray:
    """Which landmark sets (N×5×2) to align on: the eyes 20–60% of the box's width apart, level within ±35°,
    above the mouth, and (``prob``) O-Net found a face (p ≥ 0.5). Faces failing it keep the box framing."""
    width = boxes[:, 2] - boxes[:, 0]
    eyes = landmarks[:, 1] - landmarks[:, 0]
    distance = np.hypot(eyes[:, 0], eyes[:, 1]) / np.maximum(width, 1e-6)
    roll = np.degrees(np.arctan2(eyes[:, 1], eyes[:, 0]))
    above = landmarks[:, :2, 1].mean(1) < landmarks[:, 3:, 1].mean(1)
    ok = np.isfinite(landmarks).all(axis=(1, 2)) & (distance >= 0.2) & (distance <= 0.6) & (np.abs(roll) <= 35) & above
    return ok & (prob >= 0.5) if prob is not None else ok


def aligned_face(image: np.ndarray, box: Sequence[float], landmarks: np.ndarray | None,
                 size: tuple[int, int], prob: float | None = None) -> tuple[torch.Tensor, bool]:
    """One face crop as the aligned models were trained on it: ``image`` (H×W×C uint8) -> its canvas
    (:func:`face_canvas`) -> aligned on ``landmarks`` (5×2 image pixels) when they are plausible
    (:func:`plausible_landmarks`, with O-Net's face probability ``prob`` when they are O-Net's), else the box
    grown by :data:`BOX_MARGIN`. Returns the C×size uint8 crop and whether it was aligned."""
    canvas, matrix = face_canvas(image, box)
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    corners = np.array([[x1, y1], [x2, y2]]) @ matrix[:, :2].T + matrix[:, 2]
    canvas_box = torch.tensor([[*corners[0], *corners[1]]])
    aligned = False
    if landmarks is not None:
        points = np.asarray(landmarks, dtype=np.float64).reshape(1, -1, 2) @ matrix[:, :2].T + matrix[:, 2]
        aligned = bool(plausible_landmarks(points, canvas_box.numpy(), None if prob is None else np.array([prob]))[0])
    theta = (alignment_theta(torch.from_numpy(points), (CANVAS, CANVAS)) if aligned
             else box_theta(canvas_box, (CANVAS, CANVAS), BOX_MARGIN))
    pixels = torch.from_numpy(np.ascontiguousarray(canvas)).permute(2, 0, 1)[None].float()
    crop = warp(pixels, theta, size)[0]
    return crop.round().clamp(0, 255).to(torch.uint8), aligned
