"""Synthetic label noise (LDLVA experiments) and the one-hot target."""

from __future__ import annotations

import math

import pytest
import torch
from ldl_toys import ToyFaces

from zoo.ldl.noise import LabelNoise, LabelNoiseError, NoisyLabels, flip_labels
from zoo.models.components.targets import OneHotTarget
from zoo.models.model import EmotionOutput

LABELS = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)


@pytest.mark.parametrize("transition", ["uniform", "proportional"])
def test_uniform_noise_flips_exact_fraction_reproducibly(transition):
    noise = flip_labels(LABELS, 0.2, num_classes=3, seed=7, transition=transition)
    assert int(noise.flipped.sum()) == 20
    assert torch.equal(noise.clean_labels, LABELS)
    assert torch.equal(flip_labels(LABELS, 0.2, 3, seed=7, transition=transition).noisy_labels, noise.noisy_labels)
    assert not torch.equal(flip_labels(LABELS, 0.2, 3, seed=8, transition=transition).noisy_labels, noise.noisy_labels)


def test_per_class_noise_flips_exact_fraction_of_each_class():
    noise = flip_labels(LABELS, 0.3, num_classes=3, seed=0, mode="per_class")
    per_class = torch.bincount(LABELS[noise.flipped], minlength=3)
    assert per_class.tolist() == [15, 9, 6]
    assert (noise.noisy_labels[noise.flipped] != LABELS[noise.flipped]).all()


def test_noise_record_round_trip_and_dataset(tmp_path):
    ds = ToyFaces(n=30)
    noise = flip_labels(ds.labels, 0.1, 3, seed=1)
    noise.save(tmp_path / "noise.json")
    again = LabelNoise.load(tmp_path / "noise.json", ds.labels)
    assert torch.equal(again.noisy_labels, noise.noisy_labels) and again.seed == 1
    with pytest.raises(LabelNoiseError, match="other labels"):
        LabelNoise.load(tmp_path / "noise.json", torch.zeros(30, dtype=torch.long))
    noisy = NoisyLabels(ds, noise)
    flipped = int(torch.nonzero(noise.flipped)[0])
    item = noisy[flipped]
    assert item["label"] != item["clean_label"] == int(ds.labels[flipped])
    assert torch.equal(noisy.labels, noise.noisy_labels) and noisy.num_classes == 3
    with pytest.raises(LabelNoiseError, match="rate"):
        flip_labels(LABELS, 1.5)


def test_onehot_smoothing_and_balanced_weights():
    t = OneHotTarget(3, label_smoothing=0.1, class_weights="balanced", class_counts=[50, 30, 20])
    assert torch.allclose(t.class_weights, torch.tensor([100 / 150, 100 / 90, 100 / 60]))
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    res = t(EmotionOutput(logits=logits), {"label": torch.tensor([0, 2])})
    target = torch.tensor([[0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3], [0.1 / 3, 0.1 / 3, 0.9 + 0.1 / 3]])
    assert torch.allclose(res.target, target)
    # torch's documented form: Σ_n Σ_c -w_c q_nc log p_nc / Σ_n w_{y_n}, q = smoothed one-hot
    weighted = -(t.class_weights * target * torch.log_softmax(logits, 1)).sum()
    assert res.loss.item() == pytest.approx((weighted / t.class_weights[torch.tensor([0, 2])].sum()).item(), rel=1e-6)
    assert not math.isnan(res.loss.item())


def test_flip_count_is_rounded_not_truncated():
    """round(rate · n), as documented: 0.29 · 100 is 28.999999999999996 in floating point, which truncation
    would turn into 28 flips; per class 0.29 · (50, 30, 20) = (14.5−ε, 8.7, 5.8) -> (14, 9, 6), not (14, 8, 5)."""
    assert 0.29 * 100 < 29 and 0.57 * 100 < 57  # why these rates: truncation would lose one flip
    labels = torch.arange(100) % 3
    assert int(flip_labels(labels, 0.29, 3, seed=0).flipped.sum()) == 29
    assert int(flip_labels(labels, 0.57, 3, seed=1, transition="proportional").flipped.sum()) == 57
    per_class = flip_labels(LABELS, 0.29, num_classes=3, seed=0, mode="per_class")
    assert torch.bincount(LABELS[per_class.flipped], minlength=3).tolist() == [14, 9, 6]
