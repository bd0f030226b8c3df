"""Run settings on the training split: ``data.train_subset`` and ``data.label_noise`` (zoo.training.train_data)."""

from __future__ import annotations

import json

import pytest
import tiny_training as T
import torch

from zoo.ldl.noise import LabelNoiseError
from zoo.training import train_data
from zoo.training.engine import train
from zoo.training.recipes import RecipeError
from zoo.training.train_data import TrainSubset, apply_train_settings, stratified_subset


class Labelled(torch.utils.data.Dataset):
    def __init__(self, labels: list[int], num_classes: int = 3) -> None:
        self.labels = torch.tensor(labels)
        self.va = torch.arange(2 * len(labels), dtype=torch.float32).view(-1, 2)  # per-sample, like AffectNet's
        self.num_classes = num_classes
        self.label_names = tuple(f"c{i}" for i in range(num_classes))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"face": torch.full((1,), float(i)), "label": int(self.labels[i]), "index": i}


def test_stratified_subset_keeps_class_proportions_and_is_seeded():
    labels = torch.tensor([0] * 10 + [1] * 30 + [2] * 60)[torch.randperm(100, generator=torch.Generator().manual_seed(1))]
    idx = stratified_subset(labels, 20, seed=3)
    assert idx.numel() == 20 and torch.equal(idx, idx.unique())  # sorted, no repeats
    assert torch.bincount(labels[idx], minlength=3).tolist() == [2, 6, 12]
    assert torch.equal(idx, stratified_subset(labels, 20, seed=3))
    assert not torch.equal(idx, stratified_subset(labels, 20, seed=4))
    # largest remainders: 7 of (10, 30, 60) -> exact 0.7, 2.1, 4.2 -> 1, 2, 4
    assert torch.bincount(labels[stratified_subset(labels, 7, seed=0)], minlength=3).tolist() == [1, 2, 4]


def test_subset_items_are_reindexed_for_per_sample_targets(tmp_path):
    ds = apply_train_settings(Labelled([0, 1, 2] * 10), {"train_subset": {"size": 9, "seed": 0}}, tmp_path)
    assert isinstance(ds, TrainSubset) and len(ds) == 9 and ds.num_classes == 3
    item = ds[4]
    assert item["index"] == 4 and item["face"].item() == float(ds.indices[4])  # row 4 of the subset
    assert item["label"] == int(ds.labels[4])
    assert torch.equal(ds.va, ds.dataset.va[ds.indices]) and ds.label_names == ("c0", "c1", "c2")
    saved = json.loads((tmp_path / "train_subset.json").read_text())
    assert saved["indices"] == ds.indices.tolist() and saved["source_samples"] == 30
    with pytest.raises(RecipeError, match="train_subset"):
        apply_train_settings(Labelled([0, 1]), {"train_subset": {"size": 5}}, None)


def test_label_noise_flips_exact_fraction_keeps_clean_label_and_is_reproducible(tmp_path):
    clean = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0] * 4  # 40 samples
    settings = {"label_noise": {"fraction": 0.3, "seed": 5, "mode": "uniform"}}
    ds = apply_train_settings(Labelled(clean), settings, tmp_path / "a")
    flipped = (ds.labels != torch.tensor(clean)).nonzero().flatten()
    assert flipped.numel() == 12  # round(0.3 * 40)
    for i in range(len(ds)):
        item = ds[i]
        assert item["clean_label"] == clean[i] and item["label"] == int(ds.labels[i])
    record = json.loads((tmp_path / "a" / "label_noise.json").read_text())
    assert record["flipped_index"] == flipped.tolist() and record["rate"] == 0.3 and record["seed"] == 5
    assert record["clean_label"] == [clean[i] for i in flipped.tolist()]
    again = apply_train_settings(Labelled(clean), settings, tmp_path / "b")
    assert torch.equal(again.labels, ds.labels)
    other = apply_train_settings(Labelled(clean), {"label_noise": {"fraction": 0.3, "seed": 6}}, None)
    assert not torch.equal(other.labels, ds.labels)
    # resuming reads the record back and refuses settings that differ from it
    with pytest.raises(LabelNoiseError, match="label_noise.json"):
        apply_train_settings(Labelled(clean), {"label_noise": {"fraction": 0.3, "seed": 6}}, tmp_path / "a", resume=True)
    with pytest.raises(RecipeError, match="fraction"):
        apply_train_settings(Labelled(clean), {"label_noise": {"rate": 0.3}}, None)


def test_engine_trains_on_noisy_subset_and_resume_reuses_the_record(tiny_plugin, tmp_path, monkeypatch):
    """Subset then noise on the training split; a per-sample target (λ per row) indexes the subset; resume
    re-applies the recorded flips instead of drawing new ones."""
    overrides = T.tiny_overrides(**{
        "backbone": "caer_cnn", "model_args.backbone_args": T.TINY_CNN, "target": "tiny_stateful",
        "model_args.target_args": {}, "epochs": 1,
        "data.train_subset": {"size": 42, "seed": 1}, "data.label_noise": {"fraction": 0.5, "seed": 2},
    })
    out = tmp_path / "run"
    train("ldlva_resnet18", data="tiny:affectnet7", out=out, overrides=overrides)
    record = json.loads((out / "label_noise.json").read_text())
    assert record["num_samples"] == 42 and len(record["flipped_index"]) == 21
    subset = json.loads((out / "train_subset.json").read_text())
    assert len(subset["indices"]) == 42 and subset["source_samples"] == T.SIZES["train"]
    config = json.loads((out / "run_config.json").read_text())
    assert config["data"]["label_noise"] == {"fraction": 0.5, "seed": 2}

    def no_redraw(*args, **kwargs):
        raise AssertionError("resume must reuse label_noise.json")

    monkeypatch.setattr(train_data, "flip_labels", no_redraw)
    result = train("ldlva_resnet18", data="tiny:affectnet7", out=out, overrides={**overrides, "epochs": 2},
                   resume=True)
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert json.loads((out / "label_noise.json").read_text()) == record
