"""The joint FER2013 + ExpW recipe (benchmarks/joint_release.py) on a tiny generated cache: both domains in
every batch, alignment on plausible landmarks only, per-epoch dev metrics, and a resume that continues exactly."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from benchmarks import joint_release as jr
from zoo.data.align import EYE_TEMPLATE

TINY = jr.Variant(backbone="fer_cnn", channels=(8, 16), input_size=24, epochs=2, steps_per_epoch=2, batch_size=8,
                  lr=0.05)


@pytest.fixture()
def tiny_cache(tmp_path):
    """20 FER2013-like 48² crops (15 train, 5 val; votes for all but two) and 12 ExpW-like 96² canvases."""
    rng = np.random.default_rng(0)
    cache = tmp_path / "cache"
    cache.mkdir()
    n = 20
    eyes = np.array(EYE_TEMPLATE) * 48
    landmarks = np.tile(np.concatenate([eyes, [[24, 30], [18, 38], [30, 38]]])[None], (n, 1, 1)).astype(np.float32)
    landmarks[0] = landmarks[0, :, ::-1]  # implausible (eyes below the mouth): keeps the box framing
    votes = rng.integers(0, 5, (n, 7)).astype(np.float32)
    votes[[3, 7]] = np.nan
    np.savez(cache / "fer2013.npz", images=rng.integers(0, 255, (n, 48, 48), dtype=np.uint8),
             labels=np.arange(n) % 7, split=np.array([0] * 15 + [1] * 5, np.int8), votes=votes,
             landmarks=landmarks, onet_prob=np.full(n, 0.99, np.float32))
    m = 12
    boxes = np.tile(np.array([[24, 24, 72, 72]], np.float32), (m, 1))
    face = np.array([[38, 42], [58, 42], [48, 52], [40, 62], [56, 62]], np.float32)
    np.savez(cache / "expw.npz", images=rng.integers(0, 255, (m, 3, 96, 96), dtype=np.uint8),
             labels=np.arange(m) % 7, split=np.array([0] * 9 + [1] * 3, np.int8), boxes=boxes,
             landmarks=np.tile(face[None], (m, 1, 1)), onet_prob=np.r_[np.full(m - 1, 0.99), 0.1].astype(np.float32),
             photos=np.array([f"p{i}.jpg" for i in range(m)]))
    (cache / "manifest.json").write_text(json.dumps({"label_names": ["a"] * 7}))
    return cache


def test_alignment_uses_plausible_landmarks_only(tiny_cache):
    data = jr.JointData(TINY, tiny_cache)
    assert data.aligned["fer2013"].tolist() == [False] + [True] * 19
    assert data.aligned["expw"].tolist() == [True] * 11 + [False]  # O-Net unsure of the last face
    assert torch.allclose(data.theta["fer2013"][0], torch.eye(2, 3))  # the whole crop
    crops = data.crops("expw", np.arange(12))
    assert crops.shape == (12, 3, 24, 24) and 0 <= crops.min() and crops.max() <= 1


def test_every_batch_mixes_both_domains_and_the_run_resumes_exactly(tiny_cache, tmp_path):
    straight = jr.train("straight", replace(TINY, epochs=3), tmp_path / "runs", cache=tiny_cache)
    state = json.loads((straight / "state.json").read_text())
    assert state["epoch"] == 3 and len(state["history"]) == 3
    for record in state["history"]:
        assert set(record) >= {"expw_acc", "expw_bal", "public_acc", "ferplus_major", "ferplus_kl", "score"}
        assert record["score"] == pytest.approx((record["expw_acc"] + record["public_acc"] +
                                                 record["ferplus_major"]) / 3)
    assert (straight / "best.safetensors").is_file() and (straight / "done.json").is_file()

    # stopped after its first epoch (as by a deadline or a kill after the checkpoint), then run again
    stopped = jr.train("resumed", replace(TINY, epochs=3), tmp_path / "runs", cache=tiny_cache, max_minutes=0)
    assert json.loads((stopped / "state.json").read_text())["epoch"] == 1
    resumed = jr.train("resumed", replace(TINY, epochs=3), tmp_path / "runs", cache=tiny_cache)
    a = load_file(str(straight / "checkpoint.safetensors"))
    b = load_file(str(resumed / "checkpoint.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "a resumed run must continue the exact sequence"


def test_the_batch_shares_follow_the_domain_weight():
    from zoo.training.domain_mix import DomainMix

    mix = DomainMix({"fer2013": 28709, "expw": 3398}, {"fer2013": 0.7, "expw": 0.3}, 128)
    assert mix.counts == [90, 38]
    # 250 steps an epoch: ExpW's 3,398 training faces are each seen 2.8 times, FER2013's 0.78 times
    seen = mix.epochs_seen(250)
    assert seen["expw"] == pytest.approx(2.796, abs=1e-3) and seen["fer2013"] == pytest.approx(0.784, abs=1e-3)
