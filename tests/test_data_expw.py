"""The ``expw:`` reader on a generated fixture in ExpW's exact format (``label.lst`` + ``Images/``): one sample
per face with its own masked context, a validation split carved by photo, and every bad line an error naming
the file and line (or a counted skip)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from expw_fixture import write_expw

from zoo.config import DataConfig
from zoo.data import AnnotationError, ImageReadError, open_dataset
from zoo.data.records import DataWarning

# mean 0, std 1: items are the pixels / 255, so the drawn values can be read back
PLAIN = DataConfig(face_size=(8, 8), context_size=(24, 32), context_resize=(24, 32), mean=(0, 0, 0), std=(1, 1, 1))


@pytest.fixture
def expw_root(tmp_path):
    write_expw(tmp_path)
    return tmp_path


def test_one_sample_per_face_with_its_box_label_and_own_masked_context(expw_root):
    ds = open_dataset(f"expw:{expw_root}", "all", data_config=PLAIN)
    # 28 photos, every 4th with two faces: 35 faces
    assert len(ds) == 35 and ds.label_names == ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
    first, second = ds.samples[0], ds.samples[1]
    assert first.extra["photo"] == second.extra["photo"] == "happy_people_0.jpg"
    assert (first.box.x1, first.box.y1, first.box.x2, first.box.y2) == (4, 6, 20, 22)  # left, top, right, bottom
    assert (first.label, second.label) == (0, 3)
    for index in (0, 1):  # the face square is 100 + 20·label bright
        face = ds[index]["face"]
        assert face.mean().item() == pytest.approx((100 + 20 * ds.samples[index].label) / 255, abs=0.02)
    context = ds[0]["context"]  # 24×32 context of a 48×64 photo: half scale
    assert context[:, 4:10, 3:9].max().item() < 0.02  # this face masked ...
    assert context[:, 4:10, 18:24].mean().item() == pytest.approx(160 / 255, abs=0.03)  # ... the other one not
    assert ds.provenance["label_file_sha256"] == hashlib.sha256((expw_root / "label.lst").read_bytes()).hexdigest()
    assert (ds.provenance["photos"], ds.provenance["faces"]) == (28, 35)


def test_validation_is_carved_by_photo_seeded_and_recorded(expw_root):
    train = open_dataset(f"expw:{expw_root}", "train", data_config=PLAIN)
    val = open_dataset(f"expw:{expw_root}", "val", data_config=PLAIN)
    photos = {split: {s.extra["photo"] for s in ds.samples} for split, ds in (("train", train), ("val", val))}
    assert not photos["train"] & photos["val"] and len(photos["train"] | photos["val"]) == 28
    assert len(photos["val"]) == round(0.2 * 28) == 6 and len(train) + len(val) == 35
    assert val.provenance == {**val.provenance, "photos": 6, "faces": len(val), "val_fraction": 0.2, "split_seed": 0,
                              "split_by": "photo", "photos_in_file": 28}
    again = open_dataset(f"expw:{expw_root}", "val", data_config=PLAIN)
    other = open_dataset(f"expw:{expw_root}", "val", data_config=PLAIN, split_seed=1, val_fraction=0.5)
    assert [s.extra["photo"] for s in again.samples] == [s.extra["photo"] for s in val.samples]
    assert {s.extra["photo"] for s in other.samples} != photos["val"] and other.provenance["photos"] == 14


BAD_LINES = [
    ("happy_people_1.jpg 5 6 4 20", AnnotationError, "5 fields, expected 8"),
    ("happy_people_1.jpg 5 6 4 20 x 50.0 1", AnnotationError, "malformed number"),
    ("happy_people_1.jpg 5 6 4 20 22 50.0 7", AnnotationError, "label 7 is outside 0..6"),
    ("happy_people_1.jpg 5 6 40 90 22 50.0 1", AnnotationError, "does not fit the 64×48 image"),
    ("happy_people_1.jpg 5 6 20 4 22 50.0 1", AnnotationError, "empty or inverted"),
    ("no_such_photo.jpg 0 6 4 20 22 50.0 1", ImageReadError, "missing or unreadable"),
    ("happy_people_0.jpg 1 6 4 20 22 50.0 1", AnnotationError, "face 1 of happy_people_0.jpg is already on line 2"),
    # one photo however spelled, one face however numbered, one face under one id; names stay inside Images/
    ("./happy_people_0.jpg 1 6 4 20 22 50.0 1", AnnotationError, "face 1 of happy_people_0.jpg is already on line 2"),
    ("happy_people_0.jpg 01 6 4 20 22 50.0 1", AnnotationError, "face 1 of happy_people_0.jpg is already on line 2"),
    ("happy_people_0.jpg 7 6 4 20 22 50.0 3", AnnotationError, "has the box of the face on line 1"),
    ("../happy_people_1.jpg 0 6 4 20 22 50.0 1", AnnotationError, "points outside the dataset's Images/ folder"),
    ("/etc/happy_people_1.jpg 0 6 4 20 22 50.0 1", AnnotationError, "points outside the dataset's Images/ folder"),
    ("happy_people_1.jpg 5 -1e308 -1e308 1e308 1e308 50.0 1", AnnotationError, "does not fit the 64×48 image"),
    ("happy_people_1.jpg 5 6 4 4.001 6.001 50.0 1", AnnotationError, "less than a pixel"),
]


@pytest.mark.parametrize("line,error,message", BAD_LINES)
def test_a_bad_line_is_an_error_naming_file_and_line_or_a_counted_skip(expw_root, line, error, message):
    lines = (expw_root / "label.lst").read_text().splitlines()
    lines.insert(2, line)  # line 3 of the file
    (expw_root / "label.lst").write_text("\n".join(lines) + "\n")
    with pytest.raises(error, match=rf"label\.lst:3: .*{message}"):
        open_dataset(f"expw:{expw_root}", "all", data_config=PLAIN)
    with pytest.warns(DataWarning, match="skipped=1"):
        ds = open_dataset(f"expw:{expw_root}", "all", data_config=PLAIN, on_error="skip")
    assert len(ds) == 35 and ds.report.skipped[0][0].endswith("label.lst:3")


def test_a_box_overhanging_by_rounding_is_clipped_to_the_image(expw_root):
    lines = (expw_root / "label.lst").read_text().splitlines()
    lines[1] = "happy_people_0.jpg 1 30 50 65 49 50.0 2"  # 1 px past the 64×48 photo's right and bottom edges
    (expw_root / "label.lst").write_text("\n".join(lines) + "\n")
    ds = open_dataset(f"expw:{expw_root}", "all", data_config=PLAIN)
    assert ds.samples[1].box.as_tuple() == (50, 30, 64, 48)


def test_missing_images_folder_and_label_file_are_named(tmp_path):
    with pytest.raises(Exception, match="label.lst not found"):
        open_dataset(f"expw:{tmp_path}", "all")
    (tmp_path / "label.lst").write_text("a.jpg 0 1 1 5 5 1.0 0\n")
    with pytest.raises(Exception, match="no Images/"):
        open_dataset(f"expw:{tmp_path}", "all")


def test_face_margin_grows_the_crop_but_not_the_mask(expw_root):
    tight = open_dataset(f"expw:{expw_root}", "all", data_config=PLAIN)[2]
    grown = open_dataset(f"expw:{expw_root}", "all", data_config=DataConfig(**{**PLAIN.__dict__, "face_margin": 0.25}))[2]
    # the 16-px face square fills the tight crop; with a 4-px margin on each side it covers the middle 16/24
    assert tight["face"].std().item() < 0.02 and grown["face"].std().item() > 0.05
    assert np.allclose(tight["context"].numpy(), grown["context"].numpy())


def test_a_fifo_or_an_over_size_image_is_named_not_a_hang(expw_root, monkeypatch):
    import os

    import zoo.data.images

    lines = (expw_root / "label.lst").read_text().splitlines()
    os.mkfifo(expw_root / "Images" / "fifo.jpg")
    lines.insert(2, "fifo.jpg 0 6 4 20 22 50.0 1")
    (expw_root / "label.lst").write_text("\n".join(lines) + "\n")
    with pytest.raises(ImageReadError, match=r"label\.lst:3: .*fifo\.jpg is missing or unreadable \(or not a regular"):
        open_dataset(f"expw:{expw_root}", "all", data_config=PLAIN)
    del lines[2]
    (expw_root / "label.lst").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(zoo.data.images, "MAX_IMAGE_PIXELS", 1000)
    monkeypatch.setattr("zoo.data.readers.MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageReadError, match=r"label\.lst:1: .*64×48 = 3,072 pixels, more than"):
        open_dataset(f"expw:{expw_root}", "all", data_config=PLAIN)
