"""Face / context preprocessing (CAER port, GLAMOR-Net data pipelines) and face detection, checked pixel by pixel."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.config import DataConfig
from zoo.data import FaceBox, MissingFaceError, detect_faces, preprocess
from zoo.data.transforms import augment, parse_augment
from zoo.registry.plugins import list_components

UNIT = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "interpolation": "nearest"}


def _image(h: int = 20, w: int = 30) -> Image.Image:
    pixels = np.full((h, w, 3), 100, dtype=np.uint8)
    pixels[5:10, 10:20] = (250, 10, 10)  # the "face"
    return Image.fromarray(pixels)


def test_face_is_cropped_from_the_unmasked_image_and_context_is_masked():
    cfg = DataConfig(face_size=(5, 10), context_size=(20, 30), context_resize=(20, 30), **UNIT)
    out = preprocess(_image(), FaceBox(10, 5, 20, 10), cfg)
    face = (out["face"] * 255).round().to(torch.uint8)
    assert face.shape == (3, 5, 10)
    assert (face[0] == 250).all() and (face[1] == 10).all()  # the face, unmasked
    context = (out["context"] * 255).round().to(torch.uint8)
    assert (context[:, 5:10, 10:20] == 0).all()  # face box set to zero, end pixel excluded
    assert (context[:, :5] == 100).all() and (context[:, 10:] == 100).all()
    assert (context[:, :, 20:] == 100).all() and (context[:, :, :10] == 100).all()


def test_visible_face_ablation_keeps_the_face_in_context():
    cfg = DataConfig(face_size=(5, 10), context_size=(20, 30), context_resize=(20, 30), mask_face_in_context=False, **UNIT)
    context = (preprocess(_image(), FaceBox(10, 5, 20, 10), cfg)["context"] * 255).round()
    assert (context[0, 5:10, 10:20] == 250).all()


def test_centre_crop_offsets_match_glamor_code():
    # 128×171 -> 112: GLAMOR-Net's fixed crop [8:120, 29:141]
    h, w = 128, 171
    ramp = np.zeros((h, w, 3), dtype=np.uint8)
    ramp[..., 0] = np.arange(h)[:, None]
    ramp[..., 1] = np.arange(w)[None, :]
    cfg = DataConfig(face_size=(4, 4), context_size=(112, 112), context_resize=(128, 171), **UNIT)
    out = preprocess(Image.fromarray(ramp), FaceBox(0, 0, 1, 1), cfg, streams="context")
    assert "face" not in out
    pixels = (out["context"] * 255).round()
    assert pixels[0, 0, 0] == 8 and pixels[0, -1, 0] == 119
    assert pixels[1, 0, 0] == 29 and pixels[1, 0, -1] == 140


def test_random_crop_in_training_stays_inside_and_varies():
    cfg = DataConfig(face_size=(4, 4), context_size=(8, 8), context_resize=(12, 16), **UNIT)
    ramp = np.zeros((12, 16, 3), dtype=np.uint8)
    ramp[..., 0] = np.arange(12)[:, None]
    ramp[..., 1] = np.arange(16)[None, :]
    tops = set()
    gen = torch.Generator().manual_seed(0)
    for _ in range(30):
        ctx = (preprocess(Image.fromarray(ramp), None, cfg, train=True, streams="context", generator=gen)["context"] * 255).round()
        top, left = int(ctx[0, 0, 0]), int(ctx[1, 0, 0])
        assert 0 <= top <= 4 and 0 <= left <= 8
        assert int(ctx[0, -1, 0]) == top + 7
        tops.add((top, left))
    assert len(tops) > 5


def test_normalisation_uses_the_config_mean_and_std():
    cfg = DataConfig(face_size=(2, 2), context_size=(2, 2), context_resize=(2, 2), mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))
    image = Image.new("RGB", (4, 4), (255, 255, 255))
    face = preprocess(image, FaceBox(0, 0, 2, 2), cfg, streams="face")["face"]
    assert torch.allclose(face[:, 0, 0], torch.tensor([2.0, 1.0, 0.5]))


def test_box_outside_the_image_is_clamped():
    cfg = DataConfig(face_size=(5, 10), context_size=(20, 30), context_resize=(20, 30), **UNIT)
    out = preprocess(_image(), FaceBox(10, -7, 20, 10), cfg)  # reaches above the top edge
    context = (out["context"] * 255).round()
    assert (context[:, 0:10, 10:20] == 0).all() and (context[:, 10:, 10:20] == 100).all()


@pytest.mark.parametrize("box", [None, FaceBox(100, 100, 120, 120)])
def test_missing_face_policies(box):
    cfg = DataConfig(face_size=(5, 10), context_size=(20, 30), context_resize=(20, 30), **UNIT)
    zeros = preprocess(_image(), box, cfg)  # default: black face, unmasked context (GLAMOR-Net code)
    assert (zeros["face"] == 0).all() and (zeros["context"][0, 5:10, 10:20] * 255).round().eq(250).all()
    whole = preprocess(_image(), box, cfg, missing_face="whole")
    assert whole["face"].shape == (3, 5, 10) and whole["face"].max() > 0.9
    with pytest.raises(MissingFaceError, match="no face box"):
        preprocess(_image(), box, cfg, missing_face="error")


def test_augmentations_by_name_and_errors():
    assert parse_augment("glamor") == ("hflip", "rotate20")
    assert parse_augment("hflip,erase") == ("hflip", "erase")
    from zoo.data import DataError

    with pytest.raises(DataError, match="Unknown augmentation 'blur'"):
        parse_augment("blur")
    cfg = DataConfig(face_size=(16, 16), context_size=(16, 16), context_resize=(20, 20))
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    out = preprocess(image, FaceBox(4, 4, 20, 20), cfg, train=True, face_augment="ldlva,rotate20",
                     context_augment="larrylu", generator=torch.Generator().manual_seed(1))
    assert out["face"].shape == (3, 16, 16) and out["context"].shape == (3, 16, 16)
    assert torch.isfinite(out["face"]).all() and torch.isfinite(out["context"]).all()
    # evaluation ignores augmentations: deterministic
    a = preprocess(image, FaceBox(4, 4, 20, 20), cfg, face_augment="glamor")
    b = preprocess(image, FaceBox(4, 4, 20, 20), cfg, face_augment="glamor")
    assert torch.equal(a["face"], b["face"]) and torch.equal(a["context"], b["context"])


def _pattern(h: int = 24, w: int = 32) -> torch.Tensor:
    """A 3×H×W uint8 image with no symmetry: every pixel of every channel differs from its mirror."""
    y, x = np.mgrid[0:h, 0:w]
    channels = [(7 * x + 3 * y) % 251, (11 * x + 5 * y + 17) % 241, (13 * x * x + y) % 239]
    return torch.from_numpy(np.stack(channels).astype(np.uint8))


def _outcomes(name: str, pixels: torch.Tensor, seeds=range(12)) -> list[np.ndarray]:
    return [augment(pixels, [name], torch.Generator().manual_seed(s)).numpy() for s in seeds]


def test_hflip_mirrors_the_pixels_exactly_or_leaves_them():
    pixels = _pattern()
    mirror = pixels.numpy()[:, :, ::-1]
    outcomes = _outcomes("hflip", pixels)
    flipped = [np.array_equal(o, mirror) for o in outcomes]
    assert all(f or np.array_equal(o, pixels.numpy()) for f, o in zip(flipped, outcomes, strict=True))
    assert 0 < sum(flipped) < len(flipped)  # p = 0.5: both happen over 12 seeds
    # through preprocess (training only): the face is the evaluation face or its exact mirror
    cfg = DataConfig(face_size=(24, 32), context_size=(8, 8), context_resize=(8, 8), **UNIT)
    image = Image.fromarray(pixels.permute(1, 2, 0).numpy())
    plain = preprocess(image, FaceBox(0, 0, 32, 24), cfg, streams="face")["face"].numpy()
    faces = [preprocess(image, FaceBox(0, 0, 32, 24), cfg, train=True, streams="face", face_augment="hflip",
                        generator=torch.Generator().manual_seed(s))["face"].numpy() for s in range(12)]
    assert all(np.array_equal(f, plain) or np.array_equal(f, plain[:, :, ::-1]) for f in faces)
    assert any(np.array_equal(f, plain[:, :, ::-1]) for f in faces)


def test_rotate20_equals_a_reference_rotation_by_the_drawn_angle():
    """Rotation by θ = (2u − 1)·20°, u the generator's first draw, counter-clockwise for θ > 0: the interior
    equals PIL's bilinear ``Image.rotate(θ)`` to one grey level; corners are filled from the edge (no black)."""
    h = w = 33
    y, x = np.mgrid[0:h, 0:w]
    smooth = (127 + 60 * np.sin(x / 5.0) + 60 * np.cos(y / 7.0)).astype(np.uint8)
    pixels = torch.from_numpy(np.stack([smooth, smooth[::-1], smooth.T]).copy())
    angles = []
    for seed in range(4):
        angle = (2 * torch.rand((), generator=torch.Generator().manual_seed(seed)).item() - 1) * 20
        out = augment(pixels, ["rotate20"], torch.Generator().manual_seed(seed)).numpy().astype(int)
        reference = np.stack([np.asarray(Image.fromarray(c).rotate(angle, resample=Image.Resampling.BILINEAR))
                              for c in pixels.numpy()]).astype(int)
        inner = (slice(None), slice(8, -8), slice(8, -8))
        assert np.abs(out[inner] - reference[inner]).max() <= 1, (seed, angle)
        assert out.min() >= smooth.min() - 1  # edge fill, not zeros
        angles.append(angle)
    assert all(-20 <= a <= 20 for a in angles) and max(abs(a) for a in angles) > 10


def test_affine_equals_a_reference_similarity_transform_of_the_drawn_parameters():
    """``affine``: rotation (2u₀ − 1)·10°, zoom 0.9 + 0.2u₁, shift (2u₂ − 1)·10 % and (2u₃ − 1)·10 % of the
    side, u the generator's first four draws; the interior equals PIL's bilinear affine warp with the same
    output-to-input map (pixel centres, about the image centre) to one grey level."""
    h = w = 33
    y, x = np.mgrid[0:h, 0:w]
    smooth = (127 + 60 * np.sin(x / 5.0) + 60 * np.cos(y / 7.0)).astype(np.uint8)
    pixels = torch.from_numpy(np.stack([smooth, smooth[::-1], smooth.T]).copy())
    for seed in range(4):
        u = torch.rand(4, generator=torch.Generator().manual_seed(seed)).tolist()
        angle, zoom = math.radians((2 * u[0] - 1) * 10), 0.9 + 0.2 * u[1]
        cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
        shift_x, shift_y = (2 * u[2] - 1) * 0.1 * w, (2 * u[3] - 1) * 0.1 * h
        c = w / 2  # input = centre + R/zoom · (output − centre) + shift
        inverse = (cos, -sin, c - cos * c + sin * c + shift_x, sin, cos, c - sin * c - cos * c + shift_y)
        reference = np.stack([np.asarray(Image.fromarray(ch).transform(
            (w, h), Image.Transform.AFFINE, inverse, resample=Image.Resampling.BILINEAR)) for ch in pixels.numpy()])
        out = augment(pixels, ["affine"], torch.Generator().manual_seed(seed)).numpy().astype(int)
        inner = (slice(None), slice(10, -10), slice(10, -10))
        assert np.abs(out[inner] - reference.astype(int)[inner]).max() <= 1, seed
        assert not np.array_equal(out, pixels.numpy())


def test_erase_overwrites_one_rectangle_and_nothing_else():
    """Random erasing (LDLVA code): with p 0.5 one rectangle of 2–30 % of the area, aspect 0.3–3.33, is
    filled with uniform random values in [0, 255]; every other pixel is kept."""
    h, w = 32, 32
    pixels = torch.full((3, h, w), 7, dtype=torch.uint8)
    erased = 0
    for out in _outcomes("erase", pixels, range(16)):
        changed = (out != 7).any(axis=0)
        if not changed.any():
            continue
        erased += 1
        rows, cols = np.nonzero(changed.any(axis=1))[0], np.nonzero(changed.any(axis=0))[0]
        top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        assert changed[top:bottom, left:right].all()  # one solid rectangle
        assert changed.sum() == (bottom - top) * (right - left)  # nothing outside it
        assert 0.015 <= changed.mean() <= 0.32  # 2–30 % of the area, up to rounding of the sides
        assert 0.25 <= (bottom - top) / (right - left) <= 4.0  # aspect 0.3–3.33, up to rounding
        assert out[:, top:bottom, left:right].std() > 40  # random fill, not a constant
    assert 0 < erased < 16


def test_padcrop_is_a_window_of_the_zero_padded_image():
    pixels = _pattern(28, 28)  # pad = round(28 / 28) = 1 pixel
    padded = np.pad(pixels.numpy(), ((0, 0), (1, 1), (1, 1)))
    windows = {(top, left): padded[:, top:top + 28, left:left + 28] for top in range(3) for left in range(3)}
    seen = set()
    for out in _outcomes("padcrop", pixels, range(20)):
        (where,) = [k for k, v in windows.items() if np.array_equal(out, v)]
        seen.add(where)
    assert len(seen) > 3


def test_jitter_keeps_grey_and_changes_colour():
    grey = torch.full((3, 8, 8), 90, dtype=torch.uint8)
    assert all(np.abs(o.astype(int) - 90).max() <= 1 for o in _outcomes("jitter", grey, range(4)))
    red = torch.zeros(3, 8, 8, dtype=torch.uint8)
    red[0] = 200
    assert any(not np.array_equal(o, red.numpy()) for o in _outcomes("jitter", red, range(4)))


def test_face_detector_kind_is_registered():
    assert "haar" in list_components("face_detector")["face_detector"]


def test_haar_detector_finds_the_astronaut_face():
    skimage_data = pytest.importorskip("skimage.data")
    image = Image.fromarray(skimage_data.astronaut())  # public domain, ships inside scikit-image
    faces = detect_faces(image, "haar")
    assert len(faces) >= 1
    best = faces[0]
    # the face is at about x 180–270, y 65–165 in the 512×512 image
    cx, cy = (best.x1 + best.x2) / 2, (best.y1 + best.y2) / 2
    assert 190 < cx < 260 and 80 < cy < 150 and 60 < best.width < 140
    assert best.score > 0
    assert detect_faces(image, "haar", min_score=1e9) == []


def test_detector_on_a_blank_image_finds_nothing():
    assert detect_faces(Image.new("RGB", (128, 128), (120, 120, 120))) == []


def test_boxes_as_dicts_and_sequences_give_the_same_result():
    cfg = DataConfig(face_size=(5, 10), context_size=(20, 30), context_resize=(20, 30), **UNIT)
    reference = preprocess(_image(), FaceBox(10, 5, 20, 10), cfg)
    for box in ({"x1": 10, "y1": 5, "x2": 20, "y2": 10, "score": 0.9}, (10, 5, 20, 10), [10, 5, 20, 10, 0.5]):
        out = preprocess(_image(), box, cfg)
        assert torch.equal(out["face"], reference["face"]) and torch.equal(out["context"], reference["context"])
    from zoo.data import AnnotationError

    with pytest.raises(AnnotationError, match="x2 < x1"):
        preprocess(_image(), (20, 5, 10, 10), cfg)
    with pytest.raises(AnnotationError, match="needs x1, y1, x2, y2"):
        preprocess(_image(), {"x1": 1}, cfg)
