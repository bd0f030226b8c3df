"""Face / context preprocessing (methods.md §1.3, §2.2) and face detection, checked pixel by pixel."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.config import DataConfig
from zoo.data import FaceBox, MissingFaceError, detect_faces, preprocess
from zoo.data.transforms import parse_augment
from zoo.registry import list_components

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
