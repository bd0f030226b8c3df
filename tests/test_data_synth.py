"""synth_caer: deterministic per seed, split-disjoint, and the cue structure its docstring promises."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from zoo.config import DataConfig
from zoo.data import DataError, open_dataset
from zoo.data.synth import CLASS_CODES, MIN_HUE_GAP, PALETTE, colour_rgb, render_scene

SMALL = DataConfig(face_size=(24, 24), context_size=(48, 48), context_resize=(56, 56))


def test_same_seed_same_tensors_other_seed_differs():
    a = open_dataset("synth_caer", "train", n=16, seed=5, data_config=SMALL, train=False)
    b = open_dataset("synth_caer", "train", n=16, seed=5, data_config=SMALL, train=False)
    c = open_dataset("synth_caer", "train", n=16, seed=6, data_config=SMALL, train=False)
    assert torch.equal(a.labels, b.labels)
    for i in (0, 7, 15):
        assert torch.equal(a[i]["face"], b[i]["face"]) and torch.equal(a[i]["context"], b[i]["context"])
    assert not torch.equal(a[0]["context"], c[0]["context"])
    assert a.label_names == ("Anger", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")
    item = a[3]
    assert item["face"].shape == (3, 24, 24) and item["context"].shape == (3, 48, 48)
    assert item["index"] == 3 and item["label"] == int(a.labels[3])


def test_splits_are_different_scenes_and_sizes_are_options():
    train = open_dataset("synth_caer", "train", n=8, data_config=SMALL)
    test = open_dataset("synth_caer", "test", n=8, data_config=SMALL)
    assert train.train and not test.train
    assert all(s.extra["scene"] != t.extra["scene"] for s, t in zip(train.samples, test.samples, strict=True))
    assert len(open_dataset("synth_caer", "val", data_config=SMALL)) == 512
    big = open_dataset("synth_caer", n=2, image_size=96, data_config=SMALL)
    assert render_scene(big.samples[0].extra["scene"]).size == (96, 96)
    with pytest.raises(DataError, match="unknown option.*palette_size"):
        open_dataset("synth_caer", palette_size=3)


def test_cue_structure_and_ceilings_from_the_latents():
    ds = open_dataset("synth_caer", "train", n=700, seed=1, data_config=SMALL)
    names = ds.label_names
    by_mouth: dict[str, Counter] = {}
    for sample in ds.samples:
        scene = sample.extra["scene"]
        mouth, bit = CLASS_CODES[names[sample.label]]
        assert scene.mouth == mouth
        relevant = scene.cues[scene.relevant]
        assert relevant[4] == scene.face_colour  # the relevant cue shares the face's hat colour
        assert sorted(c[4] for c in scene.cues) == sorted(set(c[4] for c in scene.cues))  # distinct colours
        if bit is not None:
            assert relevant[5] == bit  # ... and its bit picks the class inside the pair
        by_mouth.setdefault(scene.mouth, Counter())[sample.label] += 1
    # face-only information: a mouth fixes a pair of classes (Sad alone), so the best face-only rule is
    # right 4/7 of the time with uniform classes
    assert {len(c) for c in by_mouth.values()} == {1, 2} and len(by_mouth) == 4
    face_only = sum(max(c.values()) for c in by_mouth.values()) / len(ds)
    assert abs(face_only - 4 / 7) < 0.05


@pytest.mark.parametrize("cue_style, face_style", [("size", "painted"), ("hollow", "hat")])
def test_the_cues_are_in_the_pixels(cue_style, face_style):
    ds = open_dataset("synth_caer", "test", n=20, seed=2, data_config=SMALL, cue_style=cue_style,
                      face_style=face_style, n_cues=3)
    for i, sample in enumerate(ds.samples):
        scene = sample.extra["scene"]
        image = np.asarray(render_scene(scene)).astype(int)
        x1, y1, x2, y2 = scene.face
        hat = image[y1 + (y2 - y1) // 6, (x1 + x2) // 2]
        assert np.abs(hat - PALETTE[scene.face_colour]).max() < 2
        for cx1, cy1, cx2, cy2, colour, bit in scene.cues:
            centre = image[(cy1 + cy2) // 2, (cx1 + cx2) // 2]
            is_palette = np.abs(centre - PALETTE[colour]).max() < 2
            if cue_style == "hollow":
                assert is_palette == (bit == 0)  # filled square = bit 0, hollow = bit 1
            else:
                assert is_palette and (cx2 - cx1) == (17 if bit else 8)  # 0.26·64 / 0.13·64 px squares
        prepared = ds.prepared(i)
        assert prepared.face_found


def test_random_hues_match_the_face_to_one_cue_only():
    """colours="random": the face and its cue share one hue, drawn per scene; distractors keep MIN_HUE_GAP."""
    ds = open_dataset("synth_caer", "train", n=200, seed=4, data_config=SMALL, colours="random", n_cues=3)
    face_hues = []
    for sample in ds.samples:
        scene = sample.extra["scene"]
        hues = [cue[4] for cue in scene.cues]
        assert scene.colours == "random" and hues[scene.relevant] == scene.face_colour
        for k, hue in enumerate(hues):
            if k != scene.relevant:
                assert min((hue - scene.face_colour) % 360, (scene.face_colour - hue) % 360) >= MIN_HUE_GAP
        image = np.asarray(render_scene(scene)).astype(int)
        x1, y1, x2, y2 = scene.face
        face_pixel = image[y1 + (y2 - y1) // 6, (x1 + x2) // 2]  # above the eyes
        cx1, cy1, cx2, cy2, _, _ = scene.cues[scene.relevant]
        assert np.abs(face_pixel - image[(cy1 + cy2) // 2, (cx1 + cx2) // 2]).max() < 2
        assert np.abs(face_pixel - colour_rgb(scene.face_colour, "random")).max() < 2
        face_hues.append(scene.face_colour)
    assert len(set(face_hues)) > 100  # not a palette in disguise
    with pytest.raises(DataError, match="colours"):
        open_dataset("synth_caer", "train", n=4, colours="rainbow")


def test_generation_is_fast():
    import time

    start = time.perf_counter()
    ds = open_dataset("synth_caer", "train", n=256, data_config=SMALL)
    for i in range(256):
        ds[i]
    assert time.perf_counter() - start < 5.0


def test_memory_and_disk_caches_give_the_same_tensors(tmp_path):
    kw = {"n": 6, "seed": 3, "data_config": SMALL, "train": False}
    plain = open_dataset("synth_caer", **kw)
    memory = open_dataset("synth_caer", cache="memory", **kw)
    disk = open_dataset("synth_caer", cache=str(tmp_path / "c"), **kw)
    for i in range(6):
        for ds in (memory, disk):
            for key in ("face", "context"):
                assert torch.equal(ds[i][key], plain[i][key])
    assert len(list(disk.cache_dir().glob("*.npy"))) == 6
    again = open_dataset("synth_caer", cache=str(tmp_path / "c"), **kw)
    assert again.cache_dir() == disk.cache_dir()
    assert all(torch.equal(again[i]["context"], plain[i]["context"]) for i in range(6))
    # another size or seed never reads those files
    other = open_dataset("synth_caer", cache=str(tmp_path / "c"), **{**kw, "seed": 4})
    assert other.cache_dir() != disk.cache_dir()
    resized = open_dataset("synth_caer", cache=str(tmp_path / "c"), **{**kw, "data_config": DataConfig(face_size=(16, 16))})
    assert resized.cache_dir() != disk.cache_dir() and resized[0]["face"].shape == (3, 16, 16)


def test_n_per_split_mapping():
    assert len(open_dataset("synth_caer", "val", n={"train": 8, "val": 24}, data_config=SMALL)) == 24
    assert len(open_dataset("synth_caer", "train", n={"train": 8, "val": 24}, data_config=SMALL)) == 8
    assert len(open_dataset("synth_caer", "test", n={"train": 8}, data_config=SMALL)) == 512
    with pytest.raises(DataError, match="keys train, val, test, got valid"):
        open_dataset("synth_caer", n={"valid": 8})
    with pytest.raises(DataError, match="n must be an integer"):
        open_dataset("synth_caer", n=2.5)


def test_matching_cue_share_of_uniform_and_peaked_maps():
    from zoo.data.synth import cue_overlap, matching_cue_share

    scenes = [s.extra["scene"] for s in open_dataset("synth_caer", "val", n=32, seed=4, data_config=SMALL).samples]
    relevant, every = cue_overlap(scenes[0], 6, 6)
    x1, y1, x2, y2 = scenes[0].cues[scenes[0].relevant][:4]
    assert relevant.sum() * (64 / 6) ** 2 == pytest.approx((x2 - x1) * (y2 - y1))  # the whole cue, once
    assert every.max() <= 1.0 + 1e-9 and (every >= relevant).all()
    uniform = torch.full((32, 6, 6), 1 / 36)
    share, chance = matching_cue_share(uniform, scenes)
    assert np.allclose(share, chance) and 0.1 < chance.mean() < 0.9
    # all mass on the cell most covered by the matching cue (never covered by the other cue here)
    peaked, usable = torch.zeros(32, 6, 6), []
    for k, scene in enumerate(scenes):
        relevant, every = cue_overlap(scene, 6, 6)
        clean = np.where(np.isclose(relevant, every), relevant, 0)
        i, j = np.unravel_index(np.argmax(clean), clean.shape)
        peaked[k, i, j] = 1.0
        usable.append(clean.max() > 0)
    share, _ = matching_cue_share(peaked, scenes)
    assert sum(usable) > 20 and np.allclose(share[usable], 1.0)
    with pytest.raises(ValueError, match="B×h×w with B = 32"):
        matching_cue_share(uniform[:3], scenes)
