"""Every dataset reader on small fixture trees written here in the exact on-disk formats of each dataset;
bad annotations and folders give errors naming them, or counted skips with on_error='skip'."""

from __future__ import annotations

import csv
import os
import time

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_face import png

import zoo
from zoo.config import DataConfig
from zoo.data import AnnotationError, DataError, ImageReadError, UnknownClassError, open_dataset
from zoo.data.records import DataWarning

SMALL = DataConfig(face_size=(8, 8), context_size=(12, 12), context_resize=(14, 16))
# readers announce skips and missing faces with a DataWarning; tests that care use pytest.warns
pytestmark = pytest.mark.filterwarnings("ignore::zoo.data.records.DataWarning")


def _png(path, size=(24, 32), value=None, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8) if value is None else np.full((*size, 3), value, np.uint8)
    Image.fromarray(pixels).save(path)


CAER = ["Anger", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"]


def _caer_tree(root, train_anger="Angry", per_class=2, crop=True, ext="png"):
    """CAER-S: train/<Class>/NNNN.png (train uses Angry, test Anger, as larrylu's files) + crop/ boxes."""
    for split, anger in (("train", train_anger), ("test", "Anger")):
        for ci, cls in enumerate([anger, *CAER[1:]]):
            for k in range(per_class):
                name = f"{k + 1:04d}"
                _png(root / split / cls / f"{name}.{ext}", seed=ci * 10 + k)
                if crop:
                    box = root / "crop" / split / cls / f"{name}.txt"
                    box.parent.mkdir(parents=True, exist_ok=True)
                    box.write_text("0,0,0,0\n" if (ci, k) == (2, 1) else "4,2,14,12\n")


def test_caer_s_crop_files_angry_and_anger(tmp_path):
    _caer_tree(tmp_path)
    with pytest.warns(DataWarning, match="no_face_zeros=1"):
        ds = open_dataset(f"caer_s:{tmp_path}", "train", data_config=SMALL)
    assert len(ds) == 14 and ds.num_classes == 7 and ds.label_names == tuple(CAER)
    assert ds.labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]
    item = ds[0]
    assert item["face"].shape == (3, 8, 8) and item["context"].shape == (3, 12, 12)
    assert item["label"] == 0 and item["index"] == 0
    assert ds.samples[0].box.as_tuple() == (4, 2, 14, 12)
    assert ds.samples[5].box is None and ds.report.counts["no_face_zeros"] == 1
    assert ds.train and not open_dataset(f"caer_s:{tmp_path}", "test", data_config=SMALL).train
    faces_only = open_dataset(f"caer_s:{tmp_path}", "test", data_config=SMALL, streams="face", missing_face="skip")
    assert len(faces_only) == 13 and set(faces_only[0]) == {"face", "label", "index"}


def test_caer_s_seeded_val_split(tmp_path):
    _caer_tree(tmp_path, per_class=4)
    kw = {"data_config": SMALL, "val_fraction": 0.25, "split_seed": 3, "missing_face": "zeros"}
    with pytest.warns(DataWarning):
        train = open_dataset(f"caer_s:{tmp_path}", "train", **kw)
        val = open_dataset(f"caer_s:{tmp_path}", "val", **kw)
        val_again = open_dataset(f"caer_s:{tmp_path}", "val", **kw)
        other = open_dataset(f"caer_s:{tmp_path}", "val", **{**kw, "split_seed": 4})
    assert len(train) == 21 and len(val) == 7
    train_paths = {s.path for s in train.samples}
    val_paths = [s.path for s in val.samples]
    assert not train_paths & set(val_paths)
    assert val_paths == [s.path for s in val_again.samples]
    assert val_paths != [s.path for s in other.samples]
    assert not val.train


def test_caer_s_list_file(tmp_path):
    _caer_tree(tmp_path, crop=False)
    lines = [f"train/{cls}/{k + 1:04d}.png,{ci},{3 + k},2,{13 + k},12" for ci, cls in enumerate(["Angry", *CAER[1:]]) for k in range(2)]
    lines.append("test/Anger/0001.png,0,1,1,5,5")  # a line of the other split in the same file: ignored
    (tmp_path / "boxes.txt").write_text("\n".join(lines) + "\n")
    ds = open_dataset(f"caer_s:{tmp_path}", "train", data_config=SMALL, boxes=str(tmp_path / "boxes.txt"))
    assert len(ds) == 14 and ds.samples[1].box.as_tuple() == (4, 2, 14, 12)
    # default location <root>/<split>.txt, paths relative to the split folder (ndkhanh360 form)
    (tmp_path / "test.txt").write_text("Anger/0001.png,0,1,1,5,5\nSurprise/0002.png,6,0,0,24,32\n")
    test = open_dataset(f"caer_s:{tmp_path}", "test", data_config=SMALL)
    assert len(test) == 2 and test.labels.tolist() == [0, 6]


@pytest.mark.parametrize(
    "line, message",
    [
        ("train/Happy/0001.png,3,10,5,4,12", "x2 < x1"),
        ("train/Happy/0001.png,3,4,5", "expected 6 fields"),
        ("train/Happy/0001.png,3,a,b,c,d", "expected numbers"),
        ("train/Happy/0001.png,2,4,2,14,12", "does not match the folder"),
        ("train/Happy/0099.png,3,4,2,14,12", "listed but not found"),
        ("train/Joy/0001.png,3,4,2,14,12", "unknown class folder 'Joy'"),
    ],
)
def test_caer_s_bad_list_rows(tmp_path, line, message):
    _caer_tree(tmp_path, crop=False, per_class=1)
    good = "train/Sad/0001.png,5,4,2,14,12"
    (tmp_path / "train.txt").write_text(f"{good}\n{line}\n")
    with pytest.raises((AnnotationError, UnknownClassError, ImageReadError), match=message) as info:
        open_dataset(f"caer_s:{tmp_path}", "train", data_config=SMALL)
    assert "train.txt:2" in str(info.value)
    with pytest.warns(DataWarning, match="skipped=1"):
        ds = open_dataset(f"caer_s:{tmp_path}", "train", data_config=SMALL, on_error="skip")
    assert len(ds) == 1 and ds.report.skipped[0][0].endswith("train.txt:2")


def test_caer_s_unknown_class_folder_is_named(tmp_path):
    _caer_tree(tmp_path, per_class=1)
    _png(tmp_path / "train" / "Contempt" / "0001.png")
    with pytest.raises(UnknownClassError, match="unknown class folder.*'Contempt'"):
        open_dataset(f"caer_s:{tmp_path}", "train", data_config=SMALL)
    with pytest.warns(DataWarning, match="unknown class folder"):
        ds = open_dataset(f"caer_s:{tmp_path}", "train", data_config=SMALL, on_error="skip")
    assert len(ds) == 7 and -1 not in ds.labels.tolist()


def test_caer_s_bad_box_file_and_missing_boxes(tmp_path):
    _caer_tree(tmp_path, per_class=1)
    (tmp_path / "crop" / "train" / "Happy" / "0001.txt").write_text("20,2,4,12\n")
    with pytest.raises(AnnotationError, match=r"0001\.txt.*x2 < x1"):
        open_dataset(f"caer_s:{tmp_path}", "train", data_config=SMALL)
    (tmp_path / "crop" / "train" / "Happy" / "0001.txt").unlink()
    with pytest.raises(AnnotationError, match="no face box file"):
        open_dataset(f"caer_s:{tmp_path}", "train", data_config=SMALL)
    _caer_tree(tmp_path / "nobox", per_class=1, crop=False)
    with pytest.raises(DataError, match="boxes='detect'"):
        open_dataset(f"caer_s:{tmp_path / 'nobox'}", "train", data_config=SMALL)


def test_caer_s_corrupt_image_raises_at_load_or_is_skipped_with_verify(tmp_path):
    _caer_tree(tmp_path, per_class=1)
    (tmp_path / "train" / "Fear" / "0001.png").write_bytes(b"\x89PNG broken")
    ds = open_dataset(f"caer_s:{tmp_path}", "train", data_config=SMALL)
    with pytest.raises(ImageReadError, match=r"Fear/0001\.png"):
        ds[2]
    with pytest.warns(DataWarning, match="skipped=1"):
        ds = open_dataset(f"caer_s:{tmp_path}", "train", data_config=SMALL, verify=True, on_error="skip")
    assert len(ds) == 6 and 2 not in ds.labels.tolist()


def test_caer_s_detected_boxes_are_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    _caer_tree(tmp_path / "d", per_class=1, crop=False)
    calls = []

    def fake_detector(**args):
        def detect(image):
            calls.append(image.size)
            from zoo.data import FaceBox

            return [FaceBox(1, 1, 5, 5, 0.5), FaceBox(2, 2, 12, 12, 3.0)]

        return detect

    from zoo.data import detection
    from zoo.registry.hookspecs import hookimpl
    from zoo.registry.plugins import register_plugin, unregister_plugin

    class Plugin:
        @hookimpl
        def register_face_detectors(self, register):
            register("fake", fake_detector)

    register_plugin(Plugin(), "fake-detector")
    try:
        ds = open_dataset(f"caer_s:{tmp_path / 'd'}", "train", data_config=SMALL, boxes="detect", detector="fake")
        assert len(calls) == 7 and len(ds) == 7
        assert ds.samples[0].box.as_tuple() == (2, 2, 12, 12)  # the best-scoring face only
        ds2 = open_dataset(f"caer_s:{tmp_path / 'd'}", "train", data_config=SMALL, boxes="detect", detector="fake")
        assert len(calls) == 7 and ds2.samples[0].box == ds.samples[0].box  # read from the cache
        assert list((tmp_path / "cache" / "boxes").glob("*.json"))
        # generic folder reader: one sample per detected face, each with its own masked context
        multi = open_dataset(f"folder:{tmp_path / 'd'}", "train", data_config=SMALL, detector="fake",
                             label_names=["Angry", *CAER[1:]])
        assert len(multi) == 14
        a, b = multi[0], multi[1]
        assert not torch.equal(a["context"], b["context"])
    finally:
        unregister_plugin("fake-detector")
        detection._DETECTORS.clear()


def test_ncaer_s_layout(tmp_path):
    for split in ("train", "val", "test"):
        for cls in CAER:
            _png(tmp_path / "images" / split / cls / "v1_p0.jpg")
            box = tmp_path / "crop" / split / cls / "v1_p0.txt"
            box.parent.mkdir(parents=True, exist_ok=True)
            box.write_text("2,3,10,11")
    for split in ("train", "val", "test"):
        ds = open_dataset(f"ncaer_s:{tmp_path}", split, data_config=SMALL)
        assert len(ds) == 7 and ds.samples[0].box.as_tuple() == (2, 3, 10, 11)


def _affectnet(root):
    header = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
              "expression", "valence", "arousal"]
    rows = []
    for i, code in enumerate([0, 1, 6, 7, 8, 10, 3]):
        rel = f"{i}/img{i}.jpg"
        _png(root / "Manually_Annotated_Images" / rel, size=(40, 40), seed=i)
        rows.append([rel, 4, 6, 20, 24, "1;2;3", code, 0.1 * i, -0.1 * i])
    for name in ("training.csv", "validation.csv"):
        with open(root / name, "w", newline="") as f:
            csv.writer(f).writerows([header, *rows])
    return header, rows


def test_affectnet(tmp_path):
    header, rows = _affectnet(tmp_path)
    ds = open_dataset(f"affectnet:{tmp_path}", "train", data_config=SMALL, streams="face")
    assert ds.label_names[:2] == ("Neutral", "Happy") and ds.num_classes == 7
    assert ds.labels.tolist() == [0, 1, 6, 3]  # codes 7 (Contempt), 8 and 10 dropped
    assert ds.report.counts["dropped_expression_7"] == 1 and ds.report.counts["dropped_expression_10"] == 1
    assert ds.samples[0].box.as_tuple() == (4, 6, 24, 30)  # x, y, w, h -> x1, y1, x2, y2
    assert torch.allclose(ds.va[2], torch.tensor([0.2, -0.2])) and ds.va.shape == (4, 2)
    eight = open_dataset(f"affectnet:{tmp_path}", "val", data_config=SMALL, num_classes=8)
    assert eight.labels.tolist() == [0, 1, 6, 7, 3] and eight.label_names[7] == "Contempt"
    assert ds[1]["face"].shape == (3, 8, 8)
    with open(tmp_path / "training.csv", "a", newline="") as f:
        csv.writer(f).writerow(["x/y.jpg", 4, 6, "wide", 24, "", 1, 0, 0])
    with pytest.raises(AnnotationError, match=r"training\.csv:9.*malformed"):
        open_dataset(f"affectnet:{tmp_path}", "train", data_config=SMALL)


def test_rafdb_label_remapping(tmp_path):
    base = tmp_path / "basic"
    lines = []
    for i, code in enumerate(range(1, 8)):
        name = f"train_{i + 1:05d}.jpg"
        _png(base / "Image" / "aligned" / f"train_{i + 1:05d}_aligned.jpg", size=(16, 16))
        lines.append(f"{name} {code}")
    _png(base / "Image" / "aligned" / "test_0001_aligned.jpg", size=(16, 16))
    lines.append("test_0001.jpg 4")
    (base / "EmoLabel").mkdir(parents=True)
    (base / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    ds = open_dataset(f"rafdb:{tmp_path}", "train", data_config=SMALL, streams="face")
    # 1 Surprise, 2 Fear, 3 Disgust, 4 Happiness, 5 Sadness, 6 Anger, 7 Neutral -> AffectNet indices
    assert ds.labels.tolist() == [3, 4, 5, 1, 2, 6, 0]
    assert [ds.label_names[i] for i in ds.labels.tolist()] == ["Surprise", "Fear", "Disgust", "Happy", "Sad", "Anger", "Neutral"]
    test = open_dataset(f"rafdb:{tmp_path}", "test", data_config=SMALL)
    assert test.labels.tolist() == [1]
    assert (test[0]["context"] < -1.5).all()  # the whole image is the face: the context is fully masked
    (base / "EmoLabel" / "list_patition_label.txt").write_text("train_00001.jpg 9\n")
    with pytest.raises(AnnotationError, match="label 1-7"):
        open_dataset(f"rafdb:{tmp_path}", "train", data_config=SMALL)


def test_sfew_folders(tmp_path):
    for split in ("Train", "Val"):
        for cls in ["Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"]:
            _png(tmp_path / split / cls / "a.png", size=(16, 16))
    ds = open_dataset(f"sfew:{tmp_path}", "train", data_config=SMALL, streams="face")
    names = [ds.label_names[i] for i in ds.labels.tolist()]
    assert sorted(names) == sorted(["Anger", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"])
    assert names[0] == "Anger" and ds.labels[0] == 6  # AffectNet order: Anger is index 6
    assert len(open_dataset(f"sfew:{tmp_path}", "val", data_config=SMALL)) == 7


def test_fer2013_folders_and_csv(tmp_path):
    for split in ("train", "test"):
        for cls in ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]:
            _png(tmp_path / "folders" / split / cls / "im.jpg", size=(48, 48))
    ds = open_dataset(f"fer2013:{tmp_path / 'folders'}", "train", data_config=SMALL, streams="face")
    assert ds.labels.tolist() == [0, 1, 2, 3, 6, 4, 5]  # folders sorted; neutral is FER2013 code 6
    rows = [["emotion", "pixels", "Usage"]]
    for i, usage in enumerate(["Training", "Training", "PublicTest", "PrivateTest"]):
        rows.append([i, " ".join(str((i * 7 + j) % 256) for j in range(48 * 48)), usage])
    with open(tmp_path / "fer2013.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    train = open_dataset(f"fer2013:{tmp_path}", "train", data_config=DataConfig(face_size=(48, 48), mean=(0, 0, 0), std=(1, 1, 1)), streams="face")
    assert train.labels.tolist() == [0, 1] and len(open_dataset(f"fer2013:{tmp_path}", "val", data_config=SMALL)) == 1
    face = (train[1]["face"] * 255).round()
    assert face[0, 0, 1] == 8 and torch.equal(face[0], face[2])  # pixel (0,1) of row 1 = 1*7+1; grey -> RGB
    with open(tmp_path / "fer2013.csv", "a", newline="") as f:
        csv.writer(f).writerow([3, "1 2 3", "Training"])
    with pytest.raises(AnnotationError, match=r"fer2013\.csv:6.*square"):
        open_dataset(f"fer2013:{tmp_path}", "train", data_config=SMALL)


def test_ferplus_majority_and_distribution(tmp_path):
    rows = [["emotion", "pixels", "Usage"]]
    for _ in range(4):
        rows.append([0, " ".join(["128"] * 16), "Training"])
    with open(tmp_path / "fer2013.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    votes = [
        ["Usage", "Image name", "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF"],
        ["Training", "fer0000000.png", 0, 8, 2, 0, 0, 0, 0, 0, 0, 0],  # Happiness, 8 of 10
        ["Training", "fer0000001.png", 4, 0, 0, 4, 2, 0, 0, 0, 0, 0],  # no majority -> dropped
        ["Training", "", 10, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # removed by FER+ -> dropped
        ["Training", "fer0000003.png", 0, 0, 0, 0, 0, 0, 0, 1, 0, 9],  # not a face -> dropped
    ]
    with open(tmp_path / "fer2013new.csv", "w", newline="") as f:
        csv.writer(f).writerows(votes)
    ds = open_dataset(f"ferplus:{tmp_path}", "train", data_config=SMALL, streams="face")
    assert len(ds) == 1 and ds.labels.tolist() == [1] and ds.label_names[1] == "Happiness" and ds.num_classes == 8
    assert torch.allclose(ds.label_distribution[0], torch.tensor([0, 0.8, 0.2, 0, 0, 0, 0, 0]))
    assert torch.allclose(ds[0]["label_distribution"], ds.label_distribution[0])
    assert ds.report.counts["dropped_no_majority"] == 2 and ds.report.counts["dropped_no_image_name"] == 1


def _ferplus_folders(root, rows_by_split):
    """Microsoft's FERPlus layout as generate_training_data.py leaves it: data/FER2013<Split>/ with PNGs and a
    headerless label.csv, rows ``fer0000000.png,"(0, 0, 48, 48)",`` + 10 vote counts."""
    for folder, rows in rows_by_split.items():
        d = root / "data" / folder
        d.mkdir(parents=True)
        lines = []
        for i, (name, votes) in enumerate(rows):
            Image.fromarray(np.full((48, 48), 10 * i + 5, np.uint8)).save(d / name)  # grey 48×48 PNG
            lines.append(f'{name},"(0, 0, 48, 48)",' + ",".join(str(v) for v in votes))
        (d / "label.csv").write_text("\n".join(lines) + "\n")


def test_ferplus_microsoft_folder_layout(tmp_path):
    _ferplus_folders(tmp_path, {
        "FER2013Train": [
            ("fer0000000.png", [0, 8, 2, 0, 0, 0, 0, 0, 0, 0]),  # Happiness, 8 of 10
            ("fer0000001.png", [4, 0, 0, 4, 2, 0, 0, 0, 0, 0]),  # no majority -> dropped
            ("fer0000003.png", [0, 0, 0, 0, 0, 0, 0, 1, 0, 9]),  # not a face -> dropped
            ("fer0000004.png", [1, 0, 0, 0, 0, 0, 0, 6, 3, 0]),  # Contempt, 6 of 10
        ],
        "FER2013Valid": [("fer0028638.png", [4, 0, 0, 0, 1, 0, 0, 4, 1, 0]),  # 4 of 10: dropped
                         ("fer0028639.png", [7, 0, 0, 0, 2, 0, 0, 1, 0, 0])],
        "FER2013Test": [("fer0032220.png", [0, 0, 0, 0, 0, 10, 0, 0, 0, 0])],
    })
    for spec in (f"ferplus:{tmp_path}", f"ferplus:{tmp_path / 'data'}"):  # the repo root or its data/ folder
        ds = open_dataset(spec, "train", data_config=DataConfig(face_size=(48, 48), mean=(0, 0, 0), std=(1, 1, 1)),
                          streams="face")
        assert ds.labels.tolist() == [1, 7] and ds.num_classes == 8 and ds.label_names[7] == "Contempt"
        assert ds.report.counts["dropped_no_majority"] == 2
        assert torch.allclose(ds.label_distribution[0], torch.tensor([0, 0.8, 0.2, 0, 0, 0, 0, 0]))
        assert torch.allclose(ds.label_distribution[1], torch.tensor([1, 0, 0, 0, 0, 0, 0, 6]) / 7)
        face = (ds[1]["face"] * 255).round()
        assert face.shape == (3, 48, 48) and (face == 35).all()  # fer0000004.png, grey value 35 on 3 channels
        assert ds.samples[0].box.as_tuple() == (0, 0, 48, 48)
    val = open_dataset(f"ferplus:{tmp_path}", "val", data_config=SMALL)
    assert val.labels.tolist() == [0] and val.samples[0].path.endswith("FER2013Valid/fer0028639.png")
    assert open_dataset(f"ferplus:{tmp_path}", "test", data_config=SMALL).labels.tolist() == [5]
    # generate_training_data.py's own rows (image name + 10 counts, no rectangle) are read as well
    (tmp_path / "data" / "FER2013Test" / "label.csv").write_text("fer0032220.png,0,0,0,0,0,10,0,0,0,0\n")
    assert open_dataset(f"ferplus:{tmp_path}", "test", data_config=SMALL).labels.tolist() == [5]
    with open(tmp_path / "data" / "FER2013Test" / "label.csv", "a") as f:
        f.write('fer0099999.png,"(0, 0, 48, 48)",0,0,0,0,0,10,0,0,0,0\n')
    with pytest.raises(ImageReadError, match=r"label\.csv:2.*fer0099999\.png"):
        open_dataset(f"ferplus:{tmp_path}", "test", data_config=SMALL)
    (tmp_path / "data" / "FER2013Test" / "label.csv").write_text('fer0032220.png,"(0, 0, 48)",0,0,0,0,0,10,0,0,0,0\n')
    with pytest.raises(AnnotationError, match=r"\(x, y, w, h\)"):
        open_dataset(f"ferplus:{tmp_path}", "test", data_config=SMALL)
    with pytest.raises(DataError, match="FER2013Train"):
        open_dataset(f"ferplus:{tmp_path / 'data' / 'FER2013Valid'}", "train", data_config=SMALL)


def test_generic_folder_and_csv(tmp_path):
    for cls in ("calm", "excited"):
        for k in range(3):
            _png(tmp_path / "f" / cls / f"{k}.png", size=(16, 16))
    train = open_dataset(f"folder:{tmp_path / 'f'}", "train", data_config=SMALL, val_fraction=0.34)
    val = open_dataset(f"folder:{tmp_path / 'f'}", "val", data_config=SMALL, val_fraction=0.34)
    assert train.label_names == ("calm", "excited") and len(train) + len(val) == 6 and len(val) == 2
    with pytest.raises(UnknownClassError, match="'excited'"):
        open_dataset(f"folder:{tmp_path / 'f'}", "train", data_config=SMALL, val_fraction=0.5, label_names=["calm", "sad"])

    (tmp_path / "f" / "labels.csv").write_text(
        "path,label,x1,y1,x2,y2,split\ncalm/0.png,calm,1,1,9,9,train\nexcited/1.png,excited,0,0,16,16,train\n"
        "excited/2.png,excited,0,0,16,16,test\n"
    )
    ds = open_dataset(f"csv:{tmp_path / 'f' / 'labels.csv'}", "train", data_config=SMALL)
    assert ds.labels.tolist() == [0, 1] and ds.samples[0].box.as_tuple() == (1, 1, 9, 9)
    assert ds[0]["face"].shape == (3, 8, 8)
    (tmp_path / "f" / "ints.csv").write_text("path,label\ncalm/0.png,1\n")
    with pytest.raises(DataError, match="label_names"):
        open_dataset(f"csv:{tmp_path / 'f' / 'ints.csv'}", "train")
    assert open_dataset(f"csv:{tmp_path / 'f' / 'ints.csv'}", "train", label_names=["a", "b"]).labels.tolist() == [1]
    (tmp_path / "f" / "bad.csv").write_text("path,label,x1,y1,x2,y2\ncalm/0.png,calm,9,1,1,9\ncalm/1.png,calm,1,1,9,9\n")
    with pytest.raises(AnnotationError, match=r"bad\.csv:2.*x2 < x1"):
        open_dataset(f"csv:{tmp_path / 'f' / 'bad.csv'}", "train", label_names=["calm", "x"])
    with pytest.warns(DataWarning):
        assert len(open_dataset(f"csv:{tmp_path / 'f' / 'bad.csv'}", "train", label_names=["calm", "x"], on_error="skip")) == 1


def test_spec_and_option_errors(tmp_path):
    from zoo.data import DatasetSpecError

    with pytest.raises(DatasetSpecError, match="Unknown dataset 'caer_z'"):
        open_dataset("caer_z:/x")
    with pytest.raises(DataError, match="needs a path"):
        open_dataset("caer_s")
    with pytest.raises(DataError, match="does not exist"):
        open_dataset(f"caer_s:{tmp_path / 'nope'}")
    _caer_tree(tmp_path, per_class=1)
    with pytest.raises(DataError, match="unknown option.*colour"):
        open_dataset(f"caer_s:{tmp_path}", colour=True)
    with pytest.raises(DataError, match="no folder for split 'val'"):
        open_dataset(f"caer_s:{tmp_path}", "val")


def test_votes_csv_gives_reference_distributions_in_class_order(tmp_path):
    """FER+-style vote counts (neutral, happiness, ..., contempt, unknown, NF) for FER2013 class folders."""
    root = tmp_path / "fer"
    for cls in ["angry", "happy", "neutral"]:
        _png(root / "val" / cls / "a.jpg", size=(48, 48))
    with open(tmp_path / "votes.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
                    "unknown", "NF"])
        w.writerow(["val/angry/a.jpg", 1, 0, 0, 0, 6, 1, 0, 2, 0, 0])   # contempt dropped: 8 class votes
        w.writerow(["val/happy/a.jpg", 0, 0, 0, 0, 0, 0, 0, 3, 5, 2])   # no vote for any class -> NaN
    with pytest.warns(DataWarning, match="no_votes=2"):
        ds = open_dataset(f"fer2013:{root}", "val", data_config=SMALL, streams="face", votes=str(tmp_path / "votes.csv"))
    # FER2013 order: Angry, Disgust, Fear, Happy, Sad, Surprise, Neutral
    assert torch.allclose(ds[0]["distribution"], torch.tensor([6, 1, 0, 0, 0, 0, 1]) / 8)
    assert torch.isnan(ds[1]["distribution"]).all() and torch.isnan(ds[2]["distribution"]).all()  # happy; neutral has no row
    from zoo.training.metrics import distribution_metrics

    probs = torch.tensor([[0.5, 0.5, 0, 0, 0, 0, 0], [1.0, 0, 0, 0, 0, 0, 0], [1.0, 0, 0, 0, 0, 0, 0]])
    m = distribution_metrics(probs, ds.label_distribution)
    expected_kl = 6 / 8 * np.log((6 / 8) / 0.5) + 1 / 8 * np.log((1 / 8) / 0.5) + 1 / 8 * np.log((1 / 8) / 1e-10)
    assert m["reference_samples"] == 1 and m["majority_agreement"] == 1.0
    assert m["kl"] == pytest.approx(expected_kl, rel=1e-6)
    with open(tmp_path / "bad.csv", "w") as f:
        f.write("path,neutral,happiness\nx,1,2\n")
    with pytest.raises(AnnotationError, match=r"bad\.csv: needs a 'path' column and a vote column for every class; "
                                              r"no column for Angry"):
        open_dataset(f"fer2013:{root}", "val", data_config=SMALL, votes=str(tmp_path / "bad.csv"))


def test_disk_cache_sees_an_image_replaced_at_the_same_path(tmp_path):
    for cls in ("a", "b"):
        png(tmp_path / "data/train" / cls / "x.png", value=10)
    cfg = DataConfig(face_size=(8, 8), context_size=(8, 8), context_resize=(8, 8), mean=(0, 0, 0), std=(1, 1, 1))
    kw = {"data_config": cfg, "streams": "face", "cache": str(tmp_path / "cache")}
    first = open_dataset(f"folder:{tmp_path / 'data'}", "train", **kw)[0]["face"]
    target = tmp_path / "data/train/a/x.png"
    png(target, size=(40, 40), value=200)  # same path and size, other pixels
    os.utime(target, ns=(time.time_ns(), time.time_ns() + 10**9))
    second = open_dataset(f"folder:{tmp_path / 'data'}", "train", **kw)[0]["face"]
    assert torch.allclose(first, torch.full_like(first, 10 / 255), atol=1e-6)
    assert torch.allclose(second, torch.full_like(second, 200 / 255), atol=1e-6)


def test_disk_cache_sees_a_replaced_image_with_its_mtime_restored_and_rebuilds_a_damaged_file(tmp_path):
    """``cp -p`` / ``rsync -t`` put the old mtime on a new file of the same size; a damaged cache file is rebuilt
    with a warning, not a raw ValueError."""
    from zoo.data.records import DataWarning

    for cls in ("a", "b"):
        png(tmp_path / "data/train" / cls / "x.png", value=10)
    cfg = DataConfig(face_size=(8, 8), context_size=(8, 8), context_resize=(8, 8), mean=(0, 0, 0), std=(1, 1, 1))
    kw = {"data_config": cfg, "streams": "face", "cache": str(tmp_path / "cache")}
    spec = f"folder:{tmp_path / 'data'}"
    first = open_dataset(spec, "train", **kw)[0]["face"]
    target = tmp_path / "data/train/a/x.png"
    before = target.stat()
    png(tmp_path / "other.png", value=200)
    assert (tmp_path / "other.png").stat().st_size == before.st_size
    os.replace(tmp_path / "other.png", target)  # a new file at the path, same size ...
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # ... with the old mtime restored
    second = open_dataset(spec, "train", **kw)
    assert torch.allclose(first, torch.full_like(first, 10 / 255), atol=1e-6)
    assert torch.allclose(second[0]["face"], torch.full_like(first, 200 / 255), atol=1e-6)
    cached = second.cache_dir() / "0.npy"
    cached.write_bytes(b"not a numpy file")
    third = open_dataset(spec, "train", **kw)
    with pytest.warns(DataWarning, match=r"0\.npy is damaged .* rebuilt from the image"):
        again = third[0]["face"]
    assert torch.allclose(again, torch.full_like(first, 200 / 255), atol=1e-6)
    assert third[0]["face"].shape == (3, 8, 8)  # the rebuilt file reads back


def test_class_names_differing_in_case_or_spaces_do_not_make_phantom_classes(tmp_path):
    for cls in ("Happy", "happy", "Sad"):
        png(tmp_path / "folders/train" / cls / "x.png")
    with pytest.raises(DataError, match=r"'Happy' and 'happy' differ only in case"):
        open_dataset(f"folder:{tmp_path / 'folders'}", "train")
    png(tmp_path / "csv/x.png")
    rows = ["path,label", "x.png,happy", "x.png, happy", "x.png,Sad ", "x.png,Sad"]
    (tmp_path / "csv/labels.csv").write_text("\n".join(rows) + "\n")
    ds = open_dataset(f"csv:{tmp_path / 'csv/labels.csv'}", "train")
    assert ds.label_names == ("Sad", "happy") and ds.labels.tolist() == [1, 1, 0, 0]
    (tmp_path / "csv/labels.csv").write_text("\n".join([*rows, "x.png,Happy"]) + "\n")
    with pytest.raises(DataError, match=r"'Happy' and 'happy' differ only in case"):
        open_dataset(f"csv:{tmp_path / 'csv/labels.csv'}", "train")


def test_boxes_outside_the_image_and_nan_boxes_are_checked_at_open(tmp_path):
    from zoo.data.transforms import MissingFaceError

    png(tmp_path / "x.png", size=(40, 50))  # 50 wide, 40 high
    rows = ["path,label,x1,y1,x2,y2", "x.png,a,1,1,20,20", "x.png,b,60,10,90,30", "x.png,b,-30,-30,-1,-1"]
    (tmp_path / "l.csv").write_text("\n".join(rows) + "\n")
    ds = open_dataset(f"csv:{tmp_path / 'l.csv'}", "train", streams="face")
    assert ds.report.counts["box_outside_image"] == 2 and ds.report.counts["no_face_zeros"] == 2
    assert [s.box is None for s in ds.samples] == [False, True, True]
    skipped = open_dataset(f"csv:{tmp_path / 'l.csv'}", "train", streams="face", missing_face="skip")
    assert len(skipped) == 1
    with pytest.raises(MissingFaceError, match=r"x\.png: face box \(60, 10, 90, 30\) lies outside the 50×40 image"):
        open_dataset(f"csv:{tmp_path / 'l.csv'}", "train", streams="face", missing_face="error")
    (tmp_path / "n.csv").write_text("path,label,x1,y1,x2,y2\nx.png,a,1,1,20,20\nx.png,b,nan,1,20,20\n")
    with pytest.raises(AnnotationError, match=r"n\.csv:3: face box x1=nan.*NaN or infinite"):
        open_dataset(f"csv:{tmp_path / 'n.csv'}", "train", streams="face")


def test_on_error_skip_alone_skips_unreadable_images_and_options_and_bom_are_checked(tmp_path):
    for cls in ("calm", "excited"):
        for k in range(2):
            _png(tmp_path / "f" / "train" / cls / f"{k}.png", size=(16, 16))
    (tmp_path / "f" / "train" / "calm" / "broken.png").write_bytes(b"not a png")
    spec = f"folder:{tmp_path / 'f'}"
    with pytest.warns(DataWarning, match="skipped=1"):
        ds = open_dataset(spec, "train", data_config=SMALL, on_error="skip")
    assert len(ds) == 4 and all(ds[i]["face"].shape == (3, 8, 8) for i in range(len(ds)))  # nothing raises later
    with pytest.raises(DataError, match=r"split_seed must be an integer >= 0, got 'abc'"):
        open_dataset(spec, "train", data_config=SMALL, val_fraction=0.5, split_seed="abc")
    (tmp_path / "f" / "bom.csv").write_bytes("\ufeffpath,label\ntrain/calm/0.png,calm\n".encode())
    assert open_dataset(f"csv:{tmp_path / 'f' / 'bom.csv'}", "train").label_names == ("calm",)
    with pytest.raises(zoo.ZooError, match="names no user's home directory"):
        zoo.create("local-dir:~no_such_user_xyz/model")
