"""``synth_caer``: a synthetic context-emotion set, generated from a seed, for the demo and the tests.

Each scene (``image_size``², default 64²) has a noisy background with grey clutter, one *face* and
``n_cues`` (default 2) coloured *context cues*, all at random non-overlapping places:

* the face is a disc painted in one of 4 palette colours (``face_style="painted"``; ``"hat"`` paints only
  a hat band on a skin-coloured face), with eyes and a **mouth**; the mouth says which *group* the class
  is in: ``smile`` → {Happy, Surprise}, ``frown`` → {Anger, Disgust}, ``flat`` → {Fear, Neutral},
  ``open`` → {Sad}. The face alone is ambiguous inside a pair;
* each cue is a square of a distinct palette colour carrying one bit: small (0) or large (1) with
  ``cue_style="size"`` (default), or filled (0) / hollow (1) at one size with ``cue_style="hollow"``;
* the **relevant cue** is the one whose colour matches the face's; its bit picks the class inside the
  pair (random for Sad). The other cues are distractors with random bits;
* the face box goes through the standard preprocessing, so the context stream sees the scene with the face
  blacked out: which cue matters can only be known from the face.

Best accuracy each input can reach (Bayes, uniform classes; the same for ``n_cues`` 2 and 3):

=================================================================  ===========
face only (mouth → pair, guess inside the pair)                    4/7 = 57.1%
context only (face masked: the bits, not which cue matters)        3/14 = 21.4%
face + context, cues pooled without binding colour to bit          11/14 = 78.6%
face + context, the cue matching the face's colour found (GLA)     100%
=================================================================  ===========

Face-guided attention (GLA) scores each context cell against the face vector (its colour) and can attend
to the relevant cue; face-blind attention (CA) and plain pooling mix all cues and are held to the 78.6% row
unless the context encoder learns colour×bit conjunction features that survive pooling (the classifier can
then bind them to the face's colour: possible, but slow, see below).

What GLA needs to learn the binding (diagnosed with tiny ``caer_cnn`` models, face 32², context 48² used
whole, 2,048 training / 1,024 validation scenes, Adam 2e-3 with a cosine schedule, batch 32, 10 epochs,
seed 0; *share* is :func:`matching_cue_share`, chance ≈ 0.49):

* **cells small enough to hold one cue.** With 5 blocks (16-32-64-64-64) the 48² context becomes a 3×3 map:
  a cell covers a ninth of the scene and often both cues, so no map can pick one. GLA (adaptive fusion, as
  the old demo) stayed at the unbound row (77.1%, share 0.46 with the official BN scorer; 75.7%, share
  0.46 without BN). With 4 blocks (16-32-64-64, a 6×6 map) GLA finds the cue;
* **no BN inside the scorer.** The official code's Dense -> BN -> ReLU -> Dense normalises each hidden unit
  over all cells of the batch; on the 6×6 map it found the cue (share 0.83) but its accuracy trailed
  (74.6%, with adaptive fusion), while the paper's Dense -> ReLU -> Dense reached 99.1% (share 0.72);
* **one fusion for all rows.** Adaptive fusion left plain pooling at 55.0% (below face only): an unfair
  baseline. With concatenation pooling reaches 76.8% (its row), CA 81.0% (share 0.48: it pools, and its
  context encoder had begun to learn conjunctions) and GLA 92.7% (share 0.75).

The learning rate, warm-up and softmax temperature were not the bottleneck (not changed); the scene design
was not changed either, so the table above still holds. Over 3 seeds (demo models, 2,048 validation
scenes, 10 epochs): plain pooling 78.1% ± 0.3, CA 89.2% ± 6.4 (share 0.50: it solves the task with colour×bit
features, not by finding the cue), GLA 95.4% ± 1.9 (share 0.77). ``benchmarks/bench_synth.py`` runs face only,
pooling, CA and GLA over seeds (the demo's settings); with ``n_cues=3`` or ``face_style="hat"`` the old
3×3-map models had not left the unbound row (not re-measured with the 6×6 map).
With ``colours="random"`` (a hue per scene, distractors at least :data:`MIN_HUE_GAP` degrees away) and 3 cues,
over the same 3 seeds: pooling 77.9% ± 0.6, CA 80.5% ± 1.7 (share at chance), GLA 87.4% ± 9.3 (94.9, 77.0 and
90.4%: on one seed its map stayed uniform for all 10 epochs).
Scenes are rendered lazily from per-sample seeds ``(seed, split, index)``: deterministic for any worker
count. Splits ``train`` / ``val`` / ``test`` are disjoint streams of the same seed.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from zoo.config import is_int, is_real
from zoo.data import classes
from zoo.data.boxes import FaceBox
from zoo.data.reader_kit import ReaderCall
from zoo.data.records import FaceDataset, Sample
from zoo.errors import DataError

PALETTE = ((220, 40, 40), (40, 190, 60), (50, 90, 230), (235, 215, 40))
SKIN = (225, 185, 150)
#: with ``colours="random"``, the smallest hue difference (degrees) between the face's colour and a distractor's
MIN_HUE_GAP = 60
#: class name -> (mouth, bit inside its pair; None = the class is alone in its group)
CLASS_CODES: dict[str, tuple[str, int | None]] = {
    "Happy": ("smile", 0),
    "Surprise": ("smile", 1),
    "Anger": ("frown", 0),
    "Disgust": ("frown", 1),
    "Fear": ("flat", 0),
    "Neutral": ("flat", 1),
    "Sad": ("open", None),
}
SPLITS = {"train": 0, "val": 1, "test": 2}
DEFAULT_N = {"train": 2048, "val": 512, "test": 512}


@dataclass(frozen=True)
class Scene:
    """The latent variables of one image (everything needed to render it and to check the ceilings)."""

    size: int
    seed: tuple[int, int, int]
    label: int
    mouth: str
    face_colour: int
    face: tuple[int, int, int, int]
    cues: tuple[tuple[int, int, int, int, int, int], ...]  # x1, y1, x2, y2, colour, bit
    relevant: int  # index into cues
    noise: float
    cue_style: str = "size"
    face_style: str = "painted"
    #: "palette": colours are indices into PALETTE; "random": colours are hues in degrees (0-359)
    colours: str = "palette"


def colour_rgb(colour: int, colours: str = "palette") -> tuple[int, int, int]:
    """The RGB of a face or cue colour: a :data:`PALETTE` entry, or a hue drawn at saturation 0.8, value 0.9."""
    if colours == "palette":
        return PALETTE[colour]
    r, g, b = colorsys.hsv_to_rgb((colour % 360) / 360.0, 0.8, 0.9)
    return int(round(255 * r)), int(round(255 * g)), int(round(255 * b))


def _hue_distance(a: int, b: int) -> int:
    return min((a - b) % 360, (b - a) % 360)


def _random_hues(rng: np.random.Generator, n_cues: int) -> tuple[int, list[int]]:
    """A face hue and ``n_cues - 1`` distractor hues, each at least :data:`MIN_HUE_GAP` degrees from the face's
    and from each other (so that which cue matches stays unambiguous to the eye)."""
    face = int(rng.integers(360))
    hues = [face]
    while len(hues) < n_cues:
        hue = int(rng.integers(360))
        if all(_hue_distance(hue, h) >= MIN_HUE_GAP for h in hues):
            hues.append(hue)
    return face, hues[1:]


def _place(rng: np.random.Generator, size: int, sides: list[int]) -> list[tuple[int, int, int, int]]:
    """Non-overlapping squares (1 px apart) of the given sides, by rejection sampling."""
    for _ in range(200):
        boxes: list[tuple[int, int, int, int]] = []
        for side in sides:
            for _ in range(50):
                x, y = (int(v) for v in rng.integers(1, size - side - 1, size=2))
                box = (x, y, x + side, y + side)
                if all(box[0] > b[2] or box[2] < b[0] or box[1] > b[3] or box[3] < b[1] for b in boxes):
                    boxes.append(box)
                    break
            else:
                break
        if len(boxes) == len(sides):
            return boxes
    raise DataError(f"synth_caer: could not place {len(sides)} objects in a {size}² image; raise image_size.")


def make_scene(
    seed: int,
    split_code: int,
    index: int,
    label: int,
    size: int,
    n_cues: int,
    noise: float,
    cue_style: str = "size",
    face_style: str = "painted",
    colours: str = "palette",
) -> Scene:
    rng = np.random.default_rng([seed, split_code, index, 1])
    name = classes.CAER[label]
    mouth, bit = CLASS_CODES[name]
    if colours == "palette":
        face_colour = int(rng.integers(len(PALETTE)))
        others = [c for c in range(len(PALETTE)) if c != face_colour]
        distractor_colours = list(rng.choice(others, size=n_cues - 1, replace=False))
    else:
        face_colour, distractor_colours = _random_hues(rng, n_cues)
    relevant = int(rng.integers(n_cues))
    bits = [int(b) for b in rng.integers(0, 2, size=n_cues)]
    if bit is not None:
        bits[relevant] = bit
    face_side = max(10, int(round(0.3 * size)))
    if cue_style == "size":  # bit 0 = small square, bit 1 = large square
        cue_sides = [max(5, int(round((0.26 if b else 0.13) * size))) for b in bits]
    else:  # "hollow": bit 0 = filled square, bit 1 = hollow square, same size
        cue_sides = [max(6, int(round(0.2 * size)))] * n_cues
    placed = _place(rng, size, [face_side, *cue_sides])
    cue_colours = distractor_colours[:relevant] + [face_colour] + distractor_colours[relevant:]
    cues = tuple((*placed[1 + i], int(cue_colours[i]), bits[i]) for i in range(n_cues))
    return Scene(
        size, (seed, split_code, index), label, mouth, face_colour, placed[0], cues, relevant, noise, cue_style, face_style,
        colours,
    )


def render_scene(scene: Scene) -> Image.Image:
    """Draw a scene (deterministic: the pixel noise comes from the scene's own seed)."""
    rng = np.random.default_rng([*scene.seed, 2])
    size = scene.size
    base = rng.integers(60, 140, size=3)
    pixels = base[None, None, :] + rng.normal(0.0, scene.noise, size=(size, size, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(3):  # grey clutter, behind everything else
        x, y = (int(v) for v in rng.integers(0, size, size=2))
        w, h = (int(v) for v in rng.integers(size // 10, size // 4, size=2))
        grey = int(rng.integers(40, 200))
        draw.rectangle((x, y, x + w, y + h), fill=(grey, grey, grey))
    for x1, y1, x2, y2, colour, bit in scene.cues:
        fill = colour_rgb(colour, scene.colours)
        if bit and scene.cue_style == "hollow":
            width = max(2, (x2 - x1) // 4)
            draw.rectangle((x1, y1, x2 - 1, y2 - 1), outline=fill, width=width)
        else:
            draw.rectangle((x1, y1, x2 - 1, y2 - 1), fill=fill)
    x1, y1, x2, y2 = scene.face
    side = x2 - x1
    if scene.face_style == "painted":  # the whole face in the cue colour
        draw.ellipse((x1, y1, x2 - 1, y2 - 1), fill=colour_rgb(scene.face_colour, scene.colours))
    else:  # "hat": a skin-coloured face under a coloured hat band
        draw.ellipse((x1, y1, x2 - 1, y2 - 1), fill=SKIN)
        draw.chord((x1, y1, x2 - 1, y2 - 1), start=180, end=360, fill=colour_rgb(scene.face_colour, scene.colours))
        draw.rectangle((x1, y1 + side * 0.38, x2 - 1, y1 + side * 0.5), fill=SKIN)
    eye = max(1, side // 10)
    for ex in (x1 + side * 0.32, x1 + side * 0.68):
        ey = y1 + side * 0.58
        draw.ellipse((ex - eye, ey - eye, ex + eye, ey + eye), fill=(20, 20, 20))
    mx1, mx2, my = x1 + side * 0.28, x1 + side * 0.72, y1 + side * 0.8
    line = max(1, side // 12)
    if scene.mouth == "smile":
        draw.arc((mx1, my - side * 0.15, mx2, my + side * 0.08), start=20, end=160, fill=(90, 20, 20), width=line)
    elif scene.mouth == "frown":
        draw.arc((mx1, my - side * 0.02, mx2, my + side * 0.2), start=200, end=340, fill=(90, 20, 20), width=line)
    elif scene.mouth == "flat":
        draw.line((mx1, my, mx2, my), fill=(90, 20, 20), width=line)
    else:
        r = side * 0.09
        cx = (mx1 + mx2) / 2
        draw.ellipse((cx - r, my - r, cx + r, my + r), fill=(90, 20, 20))
    return image


def _render_sample(sample: Sample) -> Image.Image:
    return render_scene(sample.extra["scene"])


def synth_caer(path: str | None = None, split: str = "train", **options: Any) -> FaceDataset:
    """The ``synth_caer`` dataset: options ``n`` (samples in this split, or a mapping split -> samples such as
    ``{"train": 2048, "val": 2048}``; default 2048 train, 512 val/test),
    ``seed`` (0), ``image_size`` (64), ``n_cues`` (2), ``noise`` (pixel noise σ, 8.0), ``cue_style``
    ("size" or "hollow"), ``face_style`` ("painted" or "hat"), ``colours`` ("palette": 4 fixed colours, or
    "random": a random hue per scene, distractors at least :data:`MIN_HUE_GAP`° away), plus the common
    reader options. ``path`` is unused (the spec is just ``synth_caer``)."""
    if split not in SPLITS:
        raise DataError(f"synth_caer: split must be one of {', '.join(SPLITS)}, got {split!r}.")
    call = ReaderCall("synth_caer", split, options, ("n", "seed", "image_size", "n_cues", "noise", "cue_style",
                                                       "face_style", "colours"))

    n_option = options.get("n", DEFAULT_N[split])
    if isinstance(n_option, dict):  # per split, e.g. {"train": 2048, "val": 2048}
        bad = sorted(set(n_option) - set(SPLITS))
        if bad:
            raise DataError(f"synth_caer: n as a mapping takes the keys {', '.join(SPLITS)}, got {', '.join(bad)}.")
        n_option = n_option.get(split, DEFAULT_N[split])
    if not is_int(n_option):
        raise DataError(f"synth_caer: n must be an integer or a mapping split -> integer, got {options['n']!r}.")
    for key in ("seed", "image_size", "n_cues"):
        if key in options and not is_int(options[key]):
            raise DataError(f"synth_caer: {key} must be an integer, got {options[key]!r}.")
    if "noise" in options and (not is_real(options["noise"]) or options["noise"] < 0):
        raise DataError(f"synth_caer: noise must be a number >= 0, got {options['noise']!r}.")
    n = int(n_option)
    seed = int(options.get("seed", 0))
    size = int(options.get("image_size", 64))
    n_cues = int(options.get("n_cues", 2))
    noise = float(options.get("noise", 8.0))
    if not 1 <= n <= 10_000_000:
        raise DataError(f"synth_caer: n (samples in the split) must be in 1..10000000, got {n}.")
    cue_style = options.get("cue_style", "size")
    face_style = options.get("face_style", "painted")
    if face_style not in ("hat", "painted"):
        raise DataError(f"synth_caer: face_style must be 'hat' or 'painted', got {face_style!r}.")
    if cue_style not in ("size", "hollow"):
        raise DataError(f"synth_caer: cue_style must be 'size' or 'hollow', got {cue_style!r}.")
    colours = options.get("colours", "palette")
    if colours not in ("palette", "random"):
        raise DataError(f"synth_caer: colours must be 'palette' or 'random', got {colours!r}.")
    if not 1 <= n_cues <= len(PALETTE):
        raise DataError(f"synth_caer: n_cues must be between 1 and {len(PALETTE)}, got {n_cues}.")
    if not 32 <= size <= 2048:
        raise DataError(f"synth_caer: image_size must be in 32..2048, got {size}.")
    code = SPLITS[split]
    labels = np.random.default_rng([seed, code, 0]).integers(0, len(classes.CAER), size=n)
    samples = []
    for i, label in enumerate(labels.tolist()):
        scene = make_scene(seed, code, i, label, size, n_cues, noise, cue_style, face_style, colours)
        samples.append(Sample(label, None, box=FaceBox(*scene.face), extra={"scene": scene}))
    return call.finish(samples, classes.CAER, image_loader=_render_sample)


def cue_overlap(scene: Scene, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of each cell of a ``height``×``width`` grid laid over the whole scene that is covered by the
    relevant cue (first array) and by any cue (second array)."""
    rows = np.arange(height + 1) * scene.size / height
    cols = np.arange(width + 1) * scene.size / width
    cell_area = (scene.size / height) * (scene.size / width)
    relevant = np.zeros((height, width))
    every = np.zeros((height, width))
    for k, (x1, y1, x2, y2, _colour, _bit) in enumerate(scene.cues):
        dy = np.clip(np.minimum(rows[1:], y2) - np.maximum(rows[:-1], y1), 0, None)
        dx = np.clip(np.minimum(cols[1:], x2) - np.maximum(cols[:-1], x1), 0, None)
        cover = np.outer(dy, dx) / cell_area
        every += cover
        if k == scene.relevant:
            relevant += cover
    return relevant, every


def matching_cue_share(attention: Any, scenes: list[Scene]) -> tuple[np.ndarray, np.ndarray]:
    """Share of the attention mass on cues that falls on the cue whose colour matches the face, per scene.

    ``attention`` is B×h×w (an ``EmotionOutput.attention``) computed on contexts that show the whole scene
    (``context_resize == context_size``, no crop; the demo's and the benchmark's setting), so cell ``(i, j)``
    covers rows ``i·S/h…(i+1)·S/h`` of the ``S``² scene. Each cell's mass is split between the objects in
    proportion to the area they cover in it: ``share = Σ a_ij·m_ij / Σ a_ij·c_ij`` with ``m`` / ``c`` the
    fraction of the cell covered by the matching cue / by any cue (:func:`cue_overlap`). Returns
    ``(share, chance)``; ``chance`` is the same ratio for uniform attention (the matching cue's share of the
    cue area: ≈ 0.5 with 2 cues). A model that looks at the matching cue has ``share`` well above ``chance``.
    """
    maps = np.asarray(attention.detach().cpu() if hasattr(attention, "detach") else attention, dtype=np.float64)
    if maps.ndim != 3 or len(maps) != len(scenes):
        raise ValueError(f"matching_cue_share: attention must be B×h×w with B = {len(scenes)} scenes, "
                         f"got shape {maps.shape}.")
    share, chance = np.zeros(len(scenes)), np.zeros(len(scenes))
    for k, scene in enumerate(scenes):
        relevant, every = cue_overlap(scene, *maps.shape[1:])
        share[k] = (maps[k] * relevant).sum() / max((maps[k] * every).sum(), 1e-12)
        chance[k] = relevant.sum() / max(every.sum(), 1e-12)
    return share, chance
