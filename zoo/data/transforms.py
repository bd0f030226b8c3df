"""Face / context preprocessing as in the official code (CAER port, GLAMOR-Net, LDLVA data pipelines), sized by the
model's DataConfig.

Two stages, so the deterministic part can be cached (``FaceDataset(cache="memory")``):

1. :func:`prepare_streams` (deterministic): the face is cropped from the *unmasked* image and resized to
   ``face_size``; the context is the whole image with the face box set to zero (``mask_face_in_context``),
   optionally round-tripped through JPEG (``context_jpeg_quality``, GLAMOR-Net's code), resized to
   ``context_resize`` (H, W). Resizing antialiases (PIL) unless ``antialias=False``: then it samples like
   TensorFlow's ``tf.image.resize`` (:func:`resize_image`). Both are kept as uint8 3×H×W tensors. The mask covers exactly the
   cropped pixels ``[y1:y2, x1:x2]`` as GLAMOR-Net's ``mask_face``; the CAER port's ``ImageDraw.rectangle``
   also blacks out row ``y2`` and column ``x2``.
2. :func:`finish_streams`: the context is cropped to ``context_size`` — random in training, the fixed
   centre crop ``[(H-h)//2, (W-w)//2]`` otherwise (= GLAMOR-Net's ``[8:120, 29:141]`` for 128×171 -> 112;
   torchvision's ``CenterCrop`` in the CAER port rounds the left offset to 30) —
   the per-stream augmentations run (training only), then pixels are scaled to [0, 1] and normalised with
   ``mean`` / ``std``.

Boxes reaching outside the image are clamped to it. A sample without a face follows ``missing_face``:

* ``"zeros"`` (default, the GLAMOR-Net code): the face input is a black image, the context is not masked;
* ``"whole"``: the whole image is used as the face, the context is not masked;
* ``"error"``: raise :class:`MissingFaceError`; readers also accept ``"skip"`` (drop the sample at open time).

Readers count the samples each policy touched in ``dataset.report``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from zoo.config import CONTEXT_MASK_FILLS, DataConfig
from zoo.data.boxes import FaceBox, as_face_box
from zoo.errors import DataError

MISSING_FACE_POLICIES = ("zeros", "whole", "error", "skip")
_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}
#: named augmentation sets: GLAMOR-Net face (glamor-net data_utils.py), larrylu0426/CAER-Baselines' CAER context,
#: LDLVA (label-distribution-learning-fer-tf src/data_utils.py)
AUGMENT_PRESETS: dict[str, tuple[str, ...]] = {
    "none": (),
    "glamor": ("hflip", "rotate20"),
    "larrylu": ("hflip", "jitter"),
    "ldlva": ("hflip", "padcrop", "erase"),
    # small grey faces (the FER2013 recipes): flip, a small random similarity transform, random erasing
    "fer": ("hflip", "affine", "erase"),
}
AUGMENTATIONS = ("hflip", "rotate20", "jitter", "padcrop", "erase", "affine")


class MissingFaceError(DataError):
    """A sample has no face box (or its box lies outside the image) and ``missing_face='error'``."""


@dataclass
class PreparedStreams:
    """The deterministic, cacheable result of stage 1 (uint8 tensors, None for an unused stream)."""

    face: torch.Tensor | None
    context: torch.Tensor | None
    face_found: bool


def parse_augment(augment: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"glamor"``, ``"hflip,rotate20"`` or a sequence -> a validated tuple of augmentation names."""
    if augment is None:
        return ()
    names: list[str] = []
    items = augment.split(",") if isinstance(augment, str) else list(augment)
    for item in (i.strip() for i in items):
        if not item:
            continue
        if item in AUGMENT_PRESETS:
            names.extend(AUGMENT_PRESETS[item])
        elif item in AUGMENTATIONS:
            names.append(item)
        else:
            raise DataError(
                f"Unknown augmentation {item!r}; use one of {', '.join(AUGMENTATIONS)} or a named set "
                f"({', '.join(AUGMENT_PRESETS)})."
            )
    return tuple(names)


def _resample(data_config: DataConfig) -> Image.Resampling:
    try:
        return _RESAMPLE[data_config.interpolation]
    except KeyError:
        raise DataError(
            f"DataConfig.interpolation={data_config.interpolation!r} is not supported; use one of "
            f"{', '.join(_RESAMPLE)}."
        ) from None


def _to_uint8_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).contiguous()


#: interpolation -> torch mode for ``antialias=False`` (bilinear/nearest: half-pixel centres, as TF2's resize)
_NO_ANTIALIAS_MODES = {"bilinear": "bilinear", "nearest": "nearest-exact", "bicubic": "bicubic"}


def resize_image(image: Image.Image, size: tuple[int, int], data_config: DataConfig) -> torch.Tensor:
    """``image`` resized to ``size`` (H, W) as a uint8 3×H×W tensor.

    ``data_config.antialias`` True: PIL's filter (``interpolation``), which widens its kernel when
    shrinking. False: ``torch.nn.functional.interpolate`` without antialiasing, half-pixel centres —
    for ``"bilinear"`` the sampling of TF2's ``tf.image.resize(..., "bilinear")`` (``antialias=False``),
    ``x_in = (x_out + 0.5)·in/out - 0.5``, two taps per axis; rounded to uint8 (±0.5/255 of TF's floats).
    ``"bicubic"`` then uses torch's kernel (a = -0.75; TF's is -0.5).
    """
    h, w = size
    if data_config.antialias:
        return _to_uint8_tensor(image.resize((w, h), _resample(data_config)))
    mode = _NO_ANTIALIAS_MODES.get(data_config.interpolation)
    if mode is None:
        raise DataError(
            f"DataConfig.antialias=False supports interpolation {', '.join(_NO_ANTIALIAS_MODES)}, not "
            f"{data_config.interpolation!r}; set antialias=True for PIL's {data_config.interpolation} filter."
        )
    pixels = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)[None].float()
    if tuple(pixels.shape[-2:]) == (h, w):
        return pixels[0].to(torch.uint8)
    corners = {"align_corners": False} if mode != "nearest-exact" else {}
    out = F.interpolate(pixels, size=(h, w), mode=mode, antialias=False, **corners)
    return out[0].round().clamp(0, 255).to(torch.uint8)


def jpeg_round_trip(image: Image.Image, quality: int) -> Image.Image:
    """Encode ``image`` as a baseline JPEG (libjpeg, 4:2:0 chroma as ``tf.image.encode_jpeg``'s default) and
    decode it again: GLAMOR-Net's context ``encode_jpeg`` / ``decode_jpeg`` step."""
    import io

    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise DataError(f"DataConfig.context_jpeg_quality must be an integer in 1..100 or None, got {quality!r}.")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, subsampling="4:2:0")
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def _size(value: Sequence[int], name: str) -> tuple[int, int]:
    if len(value) != 2 or min(value) < 1:
        raise DataError(f"DataConfig.{name} must be (height, width) with positive sizes, got {value!r}.")
    return int(value[0]), int(value[1])


def prepare_streams(
    image: Image.Image,
    box: FaceBox | dict | Sequence[float] | None,
    data_config: DataConfig,
    streams: str = "both",
    missing_face: str = "zeros",
) -> PreparedStreams:
    """Stage 1: face crop resized to ``face_size``; masked whole image resized to ``context_resize``."""
    if streams not in ("both", "face", "context"):
        raise DataError(f"streams must be 'both', 'face' or 'context', got {streams!r}.")
    if missing_face not in MISSING_FACE_POLICIES:
        raise DataError(f"missing_face must be one of {', '.join(MISSING_FACE_POLICIES)}, got {missing_face!r}.")
    if image.mode != "RGB":
        raise DataError(f"preprocess expects an RGB image (use zoo.data.load_image), got mode {image.mode!r}.")
    _resample(data_config)  # an unknown interpolation is an error whichever path resizes
    colour = image  # an aligned crop is cut from the colour image and made grey after, as in its training
    if data_config.grayscale:
        image = image.convert("L").convert("RGB")  # ITU-R 601-2 luma, as the grey datasets were made
    scene = image if data_config.context_is_grey == data_config.grayscale else (
        colour.convert("L").convert("RGB") if data_config.context_is_grey else colour)
    box = as_face_box(box)
    clamped = box.clamp(*image.size) if box is not None else None
    if clamped is None and missing_face in ("error", "skip"):
        raise MissingFaceError(
            "This sample has no face box inside the image"
            + (f" (box {box.as_tuple()} lies outside the {image.size[0]}×{image.size[1]} image)" if box else "")
            + "; choose missing_face='zeros' or 'whole' to keep such samples, or fix the annotation."
        )
    face = context = None
    if streams in ("both", "face"):
        fh, fw = _size(data_config.face_size, "face_size")
        if data_config.align == "eyes" and (clamped is not None or missing_face == "whole"):
            face = aligned_face_crop(colour, box if clamped is not None else None, (fh, fw), data_config.grayscale)
        elif clamped is not None:
            crop = clamped if not data_config.face_margin else box.expand(data_config.face_margin).clamp(*image.size)
            face = resize_image(image.crop(crop.as_tuple()), (fh, fw), data_config)
        elif missing_face == "whole":
            face = resize_image(image, (fh, fw), data_config)
        else:
            face = torch.zeros(3, fh, fw, dtype=torch.uint8)
    if streams in ("both", "context"):
        rh, rw = _size(data_config.context_resize, "context_resize")
        ch, cw = _size(data_config.context_size, "context_size")
        if ch > rh or cw > rw:
            raise DataError(
                f"DataConfig.context_size {(ch, cw)} is larger than context_resize {(rh, rw)}; the context is "
                f"resized to context_resize and then cropped to context_size."
            )
        masked = scene
        if clamped is not None and data_config.mask_face_in_context:
            masked = mask_face(scene, clamped, data_config.context_mask_fill)
        if data_config.context_jpeg_quality is not None:
            masked = jpeg_round_trip(masked, data_config.context_jpeg_quality)
        context = resize_image(masked, (rh, rw), data_config)
    return PreparedStreams(face, context, clamped is not None)


def mask_face(image: Image.Image, box: FaceBox, fill: str = "black") -> Image.Image:
    """A copy of ``image`` with the (clamped) face ``box`` covered: ``"black"`` zeros (CAER-Net-S, Lee et al.,
    ICCV 2019, Sec. 3.2), ``"mean"`` the image's mean colour, ``"blur"`` the box's pixels under a Gaussian blur of
    a quarter of its shorter side (``DataConfig.context_mask_fill``)."""
    x1, y1, x2, y2 = box.as_tuple()
    masked = image.copy()
    if fill == "black":
        masked.paste((0, 0, 0), (x1, y1, x2, y2))
    elif fill == "mean":
        mean = np.asarray(image, dtype=np.float64).reshape(-1, len(image.getbands())).mean(axis=0)
        masked.paste(tuple(int(round(v)) for v in mean), (x1, y1, x2, y2))
    elif fill == "blur":
        from PIL import ImageFilter

        radius = max(1.0, min(x2 - x1, y2 - y1) / 4)
        pad = int(3 * radius)  # the blur reads beyond the box, so its edge blends into the scene
        region = (max(0, x1 - pad), max(0, y1 - pad), min(image.size[0], x2 + pad), min(image.size[1], y2 + pad))
        blurred = image.crop(region).filter(ImageFilter.GaussianBlur(radius))
        masked.paste(blurred.crop((x1 - region[0], y1 - region[1], x2 - region[0], y2 - region[1])), (x1, y1))
    else:
        raise DataError(f"context_mask_fill must be one of {', '.join(map(repr, CONTEXT_MASK_FILLS))}, got {fill!r}.")
    return masked


def aligned_face_crop(image: Image.Image, box: FaceBox | None, size: tuple[int, int],
                      grayscale: bool = False) -> torch.Tensor:
    """The face of an ``align="eyes"`` model (:func:`zoo.data.align.aligned_face`, as in its training): aligned on
    the box's own landmarks when the detector gave them (MTCNN), else on O-Net's inside the colour box; ``box``
    None is the whole image (a face crop). Landmarks O-Net is unsure of (p < 0.5) leave the box framing.
    ``grayscale``: the aligned crop's luma (ITU-R 601-2) in three equal channels."""
    from zoo.data.align import aligned_face
    from zoo.data.detection import get_face_detector

    array = np.asarray(image)
    if box is None:
        box = FaceBox(0.0, 0.0, float(image.size[0]), float(image.size[1]))
    xyxy = np.array([box.x1, box.y1, box.x2, box.y2], dtype=np.float64)
    landmarks, prob = (np.asarray(box.landmarks, dtype=np.float64), None) if box.landmarks is not None else (None, None)
    if landmarks is None:  # the MTCNN instance predict's detection uses, built once
        points, probs = get_face_detector("mtcnn").landmarks(array, xyxy[None])
        landmarks, prob = points[0], float(probs[0])
    crop, _ = aligned_face(array, xyxy, landmarks, size, prob)
    if grayscale:
        luma = crop.float() * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
        crop = luma.sum(0, keepdim=True).round().clamp(0, 255).to(torch.uint8).expand(3, -1, -1).contiguous()
    return crop


def _normalise(pixels: torch.Tensor, data_config: DataConfig) -> torch.Tensor:
    # numpy, not torch: per-sample ops on a busy machine pay torch's intra-op thread pool hand-off (~ms each)
    mean = np.asarray(data_config.mean, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(data_config.std, dtype=np.float32).reshape(3, 1, 1)
    scaled = pixels.numpy().astype(np.float32) * (1.0 / 255.0)
    return torch.from_numpy((scaled - mean) / std)


def _rotate(pixels: torch.Tensor, max_degrees: float, generator: torch.Generator | None) -> torch.Tensor:
    """Random rotation in ±max_degrees with edge ('nearest') fill, as Keras ``random_rotation``."""
    angle = math.radians((torch.rand((), generator=generator).item() * 2 - 1) * max_degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=torch.float32)[None]
    grid = F.affine_grid(theta, [1, *pixels.shape], align_corners=False)
    rotated = F.grid_sample(pixels.float()[None], grid, mode="bilinear", padding_mode="border", align_corners=False)
    return rotated[0].round().clamp(0, 255).to(torch.uint8)


def _affine(pixels: torch.Tensor, generator: torch.Generator | None, max_degrees: float = 10.0,
            scale: tuple[float, float] = (0.9, 1.1), max_shift: float = 0.1) -> torch.Tensor:
    """Random similarity transform: rotation ±10°, isotropic scale 0.9–1.1, shift ±10% per axis, edge fill."""
    r = torch.rand(4, generator=generator).tolist()
    angle = math.radians((r[0] * 2 - 1) * max_degrees)
    zoom = scale[0] + (scale[1] - scale[0]) * r[1]
    # affine_grid maps output to input coordinates in [-1, 1]: the inverse of the wanted transform
    cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
    tx, ty = (r[2] * 2 - 1) * 2 * max_shift, (r[3] * 2 - 1) * 2 * max_shift
    theta = torch.tensor([[cos, -sin, tx], [sin, cos, ty]], dtype=torch.float32)[None]
    grid = F.affine_grid(theta, [1, *pixels.shape], align_corners=False)
    moved = F.grid_sample(pixels.float()[None], grid, mode="bilinear", padding_mode="border", align_corners=False)
    return moved[0].round().clamp(0, 255).to(torch.uint8)


def _jitter(pixels: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """ColorJitter(contrast=0.5, hue=0.5) as larrylu's CAER context augmentation."""
    from torchvision.transforms.v2 import functional as TF

    contrast = 0.5 + torch.rand((), generator=generator).item()
    hue = torch.rand((), generator=generator).item() - 0.5
    out = TF.adjust_contrast(pixels, contrast)
    return TF.adjust_hue(out, hue)


def _pad_crop(pixels: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """LDLVA: zero-pad by side/28 pixels (the code's pad 4 at 112², 8 at 224²), random crop back to size."""
    _, h, w = pixels.shape
    pad = max(1, round(h / 28))
    padded = F.pad(pixels, (pad, pad, pad, pad))
    top = int(torch.randint(0, 2 * pad + 1, (), generator=generator))
    left = int(torch.randint(0, 2 * pad + 1, (), generator=generator))
    return padded[:, top : top + h, left : left + w]


def _erase(pixels: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """LDLVA random erasing: p 0.5, area 0.02–0.3, aspect 0.3–3.33, fill uniform in [0, 255]."""
    if torch.rand((), generator=generator).item() >= 0.5:
        return pixels
    _, h, w = pixels.shape
    for _ in range(10):
        area = h * w * (0.02 + 0.28 * torch.rand((), generator=generator).item())
        log_ratio = math.log(0.3) + (math.log(3.33) - math.log(0.3)) * torch.rand((), generator=generator).item()
        eh = int(round(math.sqrt(area * math.exp(log_ratio))))
        ew = int(round(math.sqrt(area / math.exp(log_ratio))))
        if 0 < eh < h and 0 < ew < w:
            top = int(torch.randint(0, h - eh + 1, (), generator=generator))
            left = int(torch.randint(0, w - ew + 1, (), generator=generator))
            out = pixels.clone()
            out[:, top : top + eh, left : left + ew] = torch.randint(
                0, 256, (3, eh, ew), generator=generator, dtype=torch.uint8
            )
            return out
    return pixels


def augment(pixels: torch.Tensor, names: Sequence[str], generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply the named augmentations, in order, to a uint8 3×H×W tensor."""
    for name in names:
        if name == "hflip":
            if torch.rand((), generator=generator).item() < 0.5:
                pixels = pixels.flip(-1)
        elif name == "rotate20":
            pixels = _rotate(pixels, 20.0, generator)
        elif name == "jitter":
            pixels = _jitter(pixels, generator)
        elif name == "padcrop":
            pixels = _pad_crop(pixels, generator)
        elif name == "erase":
            pixels = _erase(pixels, generator)
        elif name == "affine":
            pixels = _affine(pixels, generator)
        else:
            raise DataError(f"Unknown augmentation {name!r}; use one of {', '.join(AUGMENTATIONS)}.")
    return pixels


def crop_context(
    context: torch.Tensor, data_config: DataConfig, train: bool, generator: torch.Generator | None = None
) -> torch.Tensor:
    ch, cw = _size(data_config.context_size, "context_size")
    _, rh, rw = context.shape
    if train:
        top = int(torch.randint(0, rh - ch + 1, (), generator=generator))
        left = int(torch.randint(0, rw - cw + 1, (), generator=generator))
    else:
        top, left = (rh - ch) // 2, (rw - cw) // 2
    return context[:, top : top + ch, left : left + cw]


def finish_streams(
    prepared: PreparedStreams,
    data_config: DataConfig,
    train: bool = False,
    face_augment: Sequence[str] = (),
    context_augment: Sequence[str] = (),
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Stage 2: context crop, training augmentations, normalisation -> ``{"face", "context"}`` float tensors."""
    out: dict[str, torch.Tensor] = {}
    if prepared.face is not None:
        face = augment(prepared.face, face_augment, generator) if train else prepared.face
        out["face"] = _normalise(face, data_config)
    if prepared.context is not None:
        context = crop_context(prepared.context, data_config, train, generator)
        if train:
            context = augment(context, context_augment, generator)
        out["context"] = _normalise(context, data_config)
    return out


def preprocess(
    image: Image.Image,
    box: FaceBox | dict | Sequence[float] | None,
    data_config: DataConfig,
    train: bool = False,
    streams: str = "both",
    missing_face: str = "zeros",
    face_augment: str | Sequence[str] | None = None,
    context_augment: str | Sequence[str] | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """One image and face box -> ``{"face": 3×H×W, "context": 3×h×w}`` exactly as the dataset readers do.

    ``box`` is a :class:`FaceBox`, a dict ``{x1, y1, x2, y2[, score]}``, 4–5 numbers, or None (no face).
    """
    prepared = prepare_streams(image, box, data_config, streams, missing_face)
    return finish_streams(
        prepared, data_config, train, parse_augment(face_augment), parse_augment(context_augment), generator
    )
