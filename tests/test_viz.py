"""Each figure type is written as a real PNG of a sensible size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from zoo import viz


def _check_png(path, min_side=150):
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert min(im.size) >= min_side
        pixels = np.asarray(im.convert("L"))
    assert pixels.std() > 5  # not a blank canvas
    assert path.stat().st_size > 5_000


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(4)]


def test_attention_figure(tmp_path, images):
    maps = {"CA": np.random.rand(7, 7), "GLA": np.eye(7)}
    _check_png(viz.attention_figure(images[0], torch.randn(3, 56, 56), maps, tmp_path / "a.png", title="t"))


def test_prediction_grid(tmp_path, images):
    path = viz.prediction_grid_figure(images, ["Happy"] * 4, {"CA": ["Happy", "Sad", "Happy", "Fear"],
                                                           "GLA": ["Happy"] * 4}, tmp_path / "g.png")
    _check_png(path)


def test_uncertainty_grid(tmp_path, images):
    samples = {"Happy": [(im, i / 10) for i, im in enumerate(images * 3)], "Sad": [(images[0], 0.5)]}
    _check_png(viz.uncertainty_grid_figure(samples, tmp_path / "u.png", per_class=5))


def test_confusion_matrix(tmp_path):
    cm = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 9]])
    _check_png(viz.confusion_matrix_figure(cm, ["a", "b", "c"], tmp_path / "c.png"))


def test_training_curves(tmp_path):
    rows = [{"epoch": e, "train_loss": 2 / e, "val_loss": 2.2 / e, "val_accuracy": 0.3 + 0.1 * e} for e in range(1, 6)]
    _check_png(viz.training_curves_figure(rows, tmp_path / "t.png"))


def test_upsample_map_is_scaled_to_unit_range():
    up = viz.upsample_map(np.array([[0.0, 1.0], [2.0, 3.0]]), (8, 8))
    assert up.shape == (8, 8) and up.min() == 0.0 and up.max() == pytest.approx(1.0)
