"""The pieces of the joint face recipe: the votes target, eye alignment, domain-mixed batches, the batched
augmentation and calibration; numbers checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo.data.align import EYE_TEMPLATE, alignment_theta, box_theta, compose_theta, eye_roll_degrees, warp
from zoo.data.batch_augment import FaceAugment
from zoo.models.model import build_target
from zoo.training.calibration import expected_calibration_error, fit_temperature
from zoo.training.domain_mix import DomainMix, domain_counts


# ------------------------------------------------------------------------------------------------ votes
def _votes_target(**args):
    config = zoo.create("fer_cnn", target="votes", target_args=args).config
    return build_target(config, None)


def test_votes_target_is_soft_cross_entropy_against_the_vote_distribution():
    target = _votes_target()
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25, 0, 0, 0, 0]]).clamp_min(1e-30))
    votes = torch.tensor([[6.0, 2, 2, 0, 0, 0, 0]])  # 10 annotators
    result = target(logits, {"label": torch.tensor([3]), "votes": votes})
    # -(0.6 ln 0.5 + 0.2 ln 0.25 + 0.2 ln 0.25) = 0.6·0.6931 + 0.4·1.3863
    assert result.loss.item() == pytest.approx(0.6 * math.log(2) + 0.4 * math.log(4), rel=1e-5)
    assert result.target[0, :3].tolist() == pytest.approx([0.6, 0.2, 0.2])


def test_votes_target_falls_back_to_the_label_where_a_sample_has_no_votes():
    target = _votes_target(label_smoothing=0.3)
    logits = torch.zeros(3, 7)
    votes = torch.tensor([[math.nan] * 7, [0.0] * 7, [0, 0, 0, 0, 0, 10.0, 0]])
    result = target(logits, {"label": torch.tensor([2, 4, 1]), "votes": votes})
    smoothed = [0.3 / 7] * 7
    assert result.target[0].tolist() == pytest.approx([*smoothed[:2], 0.7 + 0.3 / 7, *smoothed[3:]])
    assert result.target[1, 4].item() == pytest.approx(0.7 + 0.3 / 7)
    assert result.target[2].tolist() == pytest.approx([0, 0, 0, 0, 0, 1, 0])  # votes win over label 1
    assert result.loss.item() == pytest.approx(math.log(7), rel=1e-6)  # uniform prediction: ln 7 whatever the target


def test_label_weight_mixes_the_votes_with_the_samples_own_label():
    target = _votes_target(label_weight=0.25)
    votes = torch.tensor([[6.0, 2, 2, 0, 0, 0, 0], [math.nan] * 7])
    result = target(torch.zeros(2, 7), {"label": torch.tensor([3, 1]), "votes": votes})
    # 0.75·(0.6, 0.2, 0.2, 0, ...) + 0.25·one-hot(3); a sample without votes keeps its label
    assert result.target[0].tolist() == pytest.approx([0.45, 0.15, 0.15, 0.25, 0, 0, 0])
    assert result.target[1].tolist() == pytest.approx([0, 1, 0, 0, 0, 0, 0])
    assert result.loss.item() == pytest.approx(math.log(7))  # uniform predictions: ln 7 against any target
    with pytest.raises(ValueError, match=r"label_weight must be in \[0, 1\), got 1.5"):
        _votes_target(label_weight=1.5)


def test_votes_target_without_votes_is_one_hot_cross_entropy():
    logits = torch.randn(5, 7)
    labels = torch.tensor([0, 1, 2, 3, 6])
    result = _votes_target(label_smoothing=0.1)(logits, {"label": labels})
    assert result.loss.item() == pytest.approx(F.cross_entropy(logits, labels, label_smoothing=0.1).item(), rel=1e-6)


def test_votes_target_refuses_votes_of_the_wrong_width():
    with pytest.raises(ValueError, match="one vote count per class"):
        _votes_target()(torch.zeros(2, 7), {"label": torch.tensor([0, 1]), "votes": torch.ones(2, 10)})


def test_votes_is_a_registered_target():
    assert "votes" in zoo.list_components("target")["target"]


# ------------------------------------------------------------------------------------------------ alignment
def _landmarks(left, right):
    return torch.tensor([[left, right, (0, 0), (0, 0), (0, 0)]], dtype=torch.float32)


def test_roll_of_the_eye_line():
    assert eye_roll_degrees(_landmarks((10, 10), (20, 20))).item() == pytest.approx(45.0)
    assert eye_roll_degrees(_landmarks((10, 10), (30, 10))).item() == pytest.approx(0.0)


def test_alignment_maps_the_eyes_onto_the_template():
    # a 100×200 image (H×W) with the eyes at (40, 60) and (80, 30): rotated -36.87°, 50 px apart
    left, right = (40.0, 60.0), (80.0, 30.0)
    theta = alignment_theta(_landmarks(left, right), (100, 200))
    for (tx, ty), (px, py) in zip(EYE_TEMPLATE, (left, right), strict=True):
        u = torch.tensor([2 * tx - 1, 2 * ty - 1, 1.0])  # the template point in affine_grid's output coordinates
        x, y = (theta[0] @ u).tolist()
        assert ((x + 1) * 200 / 2, (y + 1) * 100 / 2) == pytest.approx((px, py), abs=1e-3)


def test_aligned_crop_of_a_rotated_face_has_level_eyes():
    # two bright dots (eyes) on a dark 64² image, the line between them at 30°; after alignment they sit on
    # the template's row, left and right of the centre
    image = torch.zeros(1, 1, 64, 64)
    left = (20.0, 24.0)
    right = (20.0 + 20 * math.cos(math.radians(30)), 24.0 + 20 * math.sin(math.radians(30)))
    for x, y in (left, right):
        image[0, 0, int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2] = 1.0
    crop = warp(image, alignment_theta(_landmarks(left, right), (64, 64)), (100, 100))[0, 0]
    ys, xs = torch.nonzero(crop > 0.5, as_tuple=True)
    on_left = xs < 50
    eye_rows = [ys[on_left].float().mean().item(), ys[~on_left].float().mean().item()]
    assert abs(eye_rows[0] - eye_rows[1]) < 1.5
    assert eye_rows[0] == pytest.approx(EYE_TEMPLATE[0][1] * 100, abs=2.5)
    assert xs[on_left].float().mean().item() == pytest.approx(EYE_TEMPLATE[0][0] * 100, abs=2.5)


def test_box_framing_crops_the_grown_box():
    image = torch.arange(100.0).view(1, 1, 10, 10)
    crop = warp(image, box_theta(torch.tensor([[2.0, 3.0, 6.0, 7.0]]), (10, 10)), (4, 4), mode="nearest")
    assert crop[0, 0].tolist() == image[0, 0, 3:7, 2:6].tolist()


def test_composed_transforms_apply_inner_first():
    shift = torch.tensor([[[1.0, 0, 0.5], [0, 1, 0]]])
    double = torch.tensor([[[2.0, 0, 0], [0, 2, 0]]])
    point = torch.tensor([0.25, 0.0, 1.0])
    assert (compose_theta(double, shift)[0] @ point).tolist() == pytest.approx([1.5, 0.0])


def test_landmarks_inside_boxes_match_the_cascade(tmp_path):
    from zoo.data.mtcnn import MTCNNFaceDetector, weights_present

    if not weights_present():
        pytest.skip("MTCNN weights are not in the package")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (80, 80, 3), dtype=np.uint8)
    points, prob = MTCNNFaceDetector().landmarks(image, np.array([[10, 10, 50, 60], [0, 0, 80, 80]]))
    assert points.shape == (2, 5, 2) and prob.shape == (2,)
    # the first box is made square around its centre (30, 35) with side 50: every point lies in its frame
    assert (points[0, :, 0] >= 5 - 40).all() and np.isfinite(points).all()


# ------------------------------------------------------------------------------------------------ domain mix
def test_domain_counts_share_the_batch_by_weight():
    assert domain_counts([0.7, 0.3], 128) == [90, 38]
    assert domain_counts([1, 1, 1], 10) == [4, 3, 3]
    assert domain_counts([1000, 1], 8) == [7, 1]  # every domain is in every batch
    with pytest.raises(ValueError, match="positive"):
        domain_counts([1, 0], 8)


def test_every_batch_holds_each_domain_and_a_domain_repeats_only_after_a_full_pass():
    mix = DomainMix({"big": 100, "small": 7}, {"big": 0.75, "small": 0.25}, batch_size=8, seed=3)
    assert mix.counts == [6, 2]
    batches = [mix.batch(step) for step in range(7)]
    small = np.concatenate([b[6:] for b in batches]) - 100
    assert all((b[:6] < 100).all() and (b[6:] >= 100).all() for b in batches)
    # 14 draws from 7 samples: two full passes, each a permutation
    assert sorted(small[:7].tolist()) == list(range(7)) and sorted(small[7:].tolist()) == list(range(7))
    assert mix.epochs_seen(7)["small"] == pytest.approx(2.0)


def test_batches_are_a_function_of_seed_and_step():
    a = DomainMix({"x": 50, "y": 9}, {"x": 1, "y": 1}, 6, seed=1)
    b = DomainMix({"x": 50, "y": 9}, {"x": 1, "y": 1}, 6, seed=1)
    assert [a.batch(s).tolist() for s in (0, 5, 11)] == [b.batch(s).tolist() for s in (11, 5, 0)][::-1]
    assert a.batch(0).tolist() != DomainMix({"x": 50, "y": 9}, {"x": 1, "y": 1}, 6, seed=2).batch(0).tolist()


# ------------------------------------------------------------------------------------------------ augmentation
def test_augmentation_keeps_shape_and_range_and_is_seeded():
    x = torch.rand(6, 3, 16, 16)
    aug = FaceAugment(erase=1.0, blur=1.0, downsample=1.0, grayscale=1.0)
    a = aug.photometric(x, torch.Generator().manual_seed(0))
    b = aug.photometric(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1
    assert torch.allclose(a[:, 0], a[:, 1]) or (a != x).any()  # grey (p=1) before erasing noise


def test_geometry_off_is_the_identity():
    aug = FaceAugment(rotate_degrees=0, scale=(1, 1), shift=0, flip=0)
    assert torch.allclose(aug.geometry(3, torch.Generator().manual_seed(0)), torch.eye(2, 3).expand(3, 2, 3))


# ------------------------------------------------------------------------------------------------ calibration
def test_temperature_recovers_the_scale_of_overconfident_logits():
    torch.manual_seed(0)
    true_logits = torch.randn(4000, 5) * 1.5
    labels = torch.distributions.Categorical(logits=true_logits).sample()
    temperature = fit_temperature(true_logits * 3.0, labels)
    assert temperature == pytest.approx(3.0, rel=0.1)
    before = expected_calibration_error((true_logits * 3).softmax(1), labels)
    after = expected_calibration_error((true_logits * 3 / temperature).softmax(1), labels)
    assert after < 0.03 < before


def test_ece_by_hand():
    probs = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    labels = torch.tensor([0, 1, 0, 0])
    # bin (0.867, 0.933]: conf 0.9, acc 0.5; bin (0.6-ish]: conf 0.6, acc 1.0 -> 0.5·0.4 + 0.5·0.4
    assert expected_calibration_error(probs, labels) == pytest.approx(0.4)


def test_a_model_applies_its_temperature_to_probabilities_only():
    model = zoo.create("fer_cnn", temperature=2.0).eval()
    out = model(face=torch.zeros(1, 3, 48, 48))
    assert torch.allclose(out.probs, torch.softmax(out.logits / 2.0, dim=-1))
    with pytest.raises(zoo.errors.ConfigError, match="temperature"):
        zoo.create("fer_cnn", temperature=0.0)


# ------------------------------------------------------------------------------------------------ one crop path
def test_an_aligned_model_is_fed_the_crop_its_training_made():
    """``DataConfig.align="eyes"``: preprocess (predict, eval, the readers) crops through the same function as
    the training cache, with the detector's landmarks when the box carries them."""
    from PIL import Image

    from zoo.config import DataConfig
    from zoo.data.align import aligned_face
    from zoo.data.boxes import FaceBox
    from zoo.data.transforms import preprocess

    rng = np.random.default_rng(1)
    array = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    points = ((60.0, 50.0), (90.0, 54.0), (75.0, 65.0), (63.0, 80.0), (88.0, 82.0))
    box = FaceBox(45.0, 30.0, 105.0, 95.0, landmarks=points)
    config = DataConfig(face_size=(32, 32), align="eyes", mean=(0.0,) * 3, std=(1.0,) * 3)
    face = preprocess(Image.fromarray(array), box, config, streams="face")["face"]
    expected, aligned = aligned_face(array, (45, 30, 105, 95), np.array(points), (32, 32))
    assert aligned
    assert torch.allclose(face, expected.float() / 255, atol=1e-6)


def test_implausible_landmarks_keep_the_box_framing():
    from zoo.data.align import BOX_MARGIN, aligned_face, box_theta, face_canvas

    array = np.random.default_rng(2).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    eyes_below_mouth = np.array([[20, 50], [40, 50], [30, 40], [22, 20], [38, 20]], dtype=np.float64)
    crop, aligned = aligned_face(array, (10, 10, 50, 54), eyes_below_mouth, (16, 16))
    assert not aligned
    canvas, matrix = face_canvas(array, (10, 10, 50, 54))
    corners = np.array([[10, 10], [50, 54]]) @ matrix[:, :2].T + matrix[:, 2]
    theta = box_theta(torch.tensor([[*corners[0], *corners[1]]]), canvas.shape[:2], BOX_MARGIN)
    expected = warp(torch.from_numpy(canvas).permute(2, 0, 1)[None].float(), theta, (16, 16))[0]
    assert torch.equal(crop, expected.round().clamp(0, 255).to(torch.uint8))


def test_a_grey_aligned_model_gets_the_luma_of_the_colour_crop():
    """A grey model's aligned crop is cut from the colour photo (O-Net's landmarks see colour, as in training) and
    made grey after: three equal channels holding 0.299 R + 0.587 G + 0.114 B."""
    from PIL import Image

    from zoo.config import DataConfig
    from zoo.data.align import aligned_face
    from zoo.data.boxes import FaceBox
    from zoo.data.transforms import preprocess

    array = np.random.default_rng(3).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    points = ((60.0, 50.0), (90.0, 54.0), (75.0, 65.0), (63.0, 80.0), (88.0, 82.0))
    box = FaceBox(45.0, 30.0, 105.0, 95.0, landmarks=points)
    config = DataConfig(face_size=(24, 24), align="eyes", grayscale=True, mean=(0.0,) * 3, std=(1.0,) * 3)
    face = preprocess(Image.fromarray(array), box, config, streams="face")["face"]
    colour, _ = aligned_face(array, (45, 30, 105, 95), np.array(points), (24, 24))
    luma = (colour.float() * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0).round() / 255
    assert torch.equal(face[0], face[1]) and torch.equal(face[1], face[2])
    assert torch.allclose(face[0], luma, atol=1e-6)
