"""``ldlva_resnet18_affectnet`` end to end on a generated AffectNet folder: the reader's valence-arousal reach
``ldl_va``'s ``auxiliary="dataset"`` through the one attribute name (``zoo.data.VA_ATTRIBUTE``)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

import zoo
from zoo.data import VA_ATTRIBUTE, open_dataset
from zoo.ldl.knn import nearest_neighbors
from zoo.ldl.similarity import local_similarity, relative_similarity
from zoo.training.checkpoint import load_checkpoint

HEADER = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
          "expression", "valence", "arousal"]
TINY = {"backbone": "caer_cnn", "model_args.backbone_args": {"channels": [8, 8, 16, 16, 16]},
        "model_args.data": {"face_size": [32, 32]}, "epochs": 1, "batch_size": 7, "progress": False,
        "device": "cpu", "seed": 0}
pytestmark = pytest.mark.filterwarnings("ignore::zoo.data.records.DataWarning")  # the dropped code-8 rows


def _affectnet_folder(root, per_class=3):
    """AffectNet's layout: Manually_Annotated_Images/<dir>/<file> + training.csv / validation.csv rows with
    face_x, face_y, face_width, face_height, landmarks, expression (0-6 here, plus a dropped 8), valence, arousal."""
    rng = np.random.default_rng(0)
    rows = {"training.csv": [], "validation.csv": []}
    for csv_name, n in (("training.csv", per_class), ("validation.csv", 1)):
        for code in range(7):
            for k in range(n):
                rel = f"{code}/{csv_name[0]}{code}_{k}.jpg"
                path = root / "Manually_Annotated_Images" / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(path)
                angle = 2 * np.pi * code / 7
                va = (0.8 * np.cos(angle) + 0.05 * k, 0.8 * np.sin(angle) - 0.03 * k)
                rows[csv_name].append([rel, 2, 3, 30, 32, "1;2;3", code, round(va[0], 3), round(va[1], 3)])
        rows[csv_name].append(["x/none.jpg", 0, 0, 1, 1, "", 8, -2, -2])  # code 8 (None): dropped before loading
    for name, body in rows.items():
        with open(root / name, "w", newline="") as f:
            csv.writer(f).writerows([HEADER, *body])
    return rows


def test_affectnet_reader_exposes_va_under_the_shared_name(tmp_path):
    rows = _affectnet_folder(tmp_path)
    ds = open_dataset(f"affectnet:{tmp_path}", "train", streams="face")
    assert VA_ATTRIBUTE == "va" and not hasattr(ds, "valence_arousal")
    expected = torch.tensor([[float(r[7]), float(r[8])] for r in rows["training.csv"] if r[6] != 8])
    assert torch.equal(getattr(ds, VA_ATTRIBUTE), expected)


def test_ldlva_affectnet_recipe_trains_with_dataset_va(tmp_path):
    rows = _affectnet_folder(tmp_path / "affectnet")
    out = tmp_path / "run"
    result = zoo.train("ldlva_resnet18_affectnet", data=f"affectnet:{tmp_path / 'affectnet'}", out=out,
                       overrides={**TINY, "model_args.target_args.auxiliary": "dataset"})
    assert len(result.history) == 1 and np.isfinite(result.history[0]["train_loss"])
    config = json.loads((out / "run_config.json").read_text())
    assert config["recipe"] == "ldlva_resnet18_affectnet"
    assert config["model_args"]["target_args"]["auxiliary"] == "dataset"
    # the neighbours and similarities the target trained with are those of the CSV's valence-arousal columns
    tensors, _ = load_checkpoint(out / "checkpoints" / "last")
    va = torch.tensor([[float(r[7]), float(r[8])] for r in rows["training.csv"] if r[6] != 8])
    idx, _ = nearest_neighbors(va, 8)
    assert torch.equal(tensors["target.neighbors"], idx)
    kind = config["model_args"]["target_args"].get("similarity", "gaussian")
    expected = relative_similarity(local_similarity(va, va[idx], kind, 0.5, log=True))
    assert torch.allclose(tensors["target.similarity"], expected, atol=1e-6)
    # balanced class weights from the 3-per-class training labels: all 1
    assert torch.allclose(tensors["target.class_weights"], torch.ones(7))


def test_dataset_va_names_the_attribute_when_missing():
    from zoo.ldl.auxiliary import AuxiliarySpaceError, dataset_va

    class NoVA:
        def __len__(self):
            return 3

    with pytest.raises(AuxiliarySpaceError, match="no 'va' attribute"):
        dataset_va(NoVA())
