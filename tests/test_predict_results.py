"""Predict as a tool people rely on: bad inputs never lose finished work, one result schema (JSON, CSV, the
Python value, a DataFrame) with landmarks, one annotated picture per photo, progress on stderr, one options
object, and the bugs found by trying it as a new user (each test below failed before the fix)."""

from __future__ import annotations

import csv
import json
import sys
import warnings
from dataclasses import FrozenInstanceError

import numpy as np
import pytest
from PIL import Image
from tiny_face import png, tiny_face_model
from typer.testing import CliRunner

import zoo
import zoo.cli
from zoo.data import FaceBox
from zoo.errors import UntrainedModelWarning, ZooError
from zoo.inference import batching
from zoo.inference.inputs import InputSkippedWarning, iter_frames
from zoo.inference.options import PredictOptions
from zoo.inference.results import CSV_COLUMNS, FrameResult, Predictions, csv_header
from zoo.inference.tracking import IoUTracker
from zoo.inference.video import Frame
from zoo.viz import face_colour

NAMES = list(zoo.labels.CAER)
MARKS = ((12.0, 14.0), (22.0, 14.0), (17.0, 19.0), (13.0, 24.0), (21.0, 24.0))


def _detector(image):
    """Two faces with MTCNN-style landmarks, best first, whatever the image."""
    return [FaceBox(5, 5, 30, 30, 0.98, landmarks=MARKS), FaceBox(34, 8, 58, 34, 0.9, landmarks=MARKS)]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return zoo.save_pretrained(tiny_face_model(), tmp_path_factory.mktemp("m") / "tiny")


@pytest.fixture
def messy(tmp_path):
    """A folder with a good photo, a text file and a truncated JPEG."""
    folder = tmp_path / "messy"
    png(folder / "ok.png", size=(40, 64), seed=1)
    (folder / "notes.txt").write_text("not an image")
    good = tmp_path / "whole.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 64, 3), dtype=np.uint8)).save(good)
    (folder / "truncated.jpg").write_bytes(good.read_bytes()[:200])
    return folder


def _cli(args):
    return CliRunner().invoke(zoo.cli.app, args)


# ----------------------------------------------------------------------------------- errors per input


def test_a_corrupt_file_in_a_folder_keeps_the_finished_rows_records_the_error_and_exits_1(tmp_path, messy,
                                                                                          model_dir, monkeypatch):
    monkeypatch.setattr(zoo.data, "detect_faces", lambda image, detector="auto", **k: _detector(image))
    out = tmp_path / "messy.csv"
    result = _cli(["predict", str(messy), "--model", f"local-dir:{model_dir}", "--device", "cpu", "--csv", str(out)])
    assert result.exit_code == 1, result.output
    rows = list(csv.DictReader(out.open()))
    assert [(r["image"], r["face"], r["error"] != "") for r in rows] == [
        (str(messy / "ok.png"), "0", False), (str(messy / "ok.png"), "1", False),
        (str(messy / "truncated.jpg"), "", True)]
    assert "could not be decoded" in rows[2]["error"]
    assert "1 of 2 inputs failed" in result.stderr and "truncated.jpg" in result.stderr
    assert f"their rows in {out} have an 'error'" in result.stderr
    assert f"{messy / 'ok.png'}" in result.stdout  # the table still shows the good photo
    # the rows went to a temporary file as produced, renamed into place at the end (zoo.outputs): none is left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["messy", "messy.csv", "whole.jpg"]


def test_python_predict_skips_or_raises_as_on_error_says(messy, model_dir):
    model = f"local-dir:{model_dir}"
    with pytest.warns(InputSkippedWarning, match=r"skipped .*truncated\.jpg"):
        results = zoo.predict(messy, model=model, detector=_detector, device="cpu")  # a folder: skipped by default
    assert [r.get("error") is not None for r in results] == [False, True]
    assert results.errors[0].image == str(messy / "truncated.jpg") and results.errors[0].faces == ()
    with pytest.warns(InputSkippedWarning):
        assert len(zoo.predict(messy, model=model, detector=_detector, device="cpu", on_error="skip")) == 2
    with pytest.raises(ZooError, match="could not be decoded"):
        zoo.predict(messy, model=model, detector=_detector, device="cpu", on_error="raise")
    with pytest.raises(ZooError, match="could not be decoded"):  # a file named directly raises by default
        zoo.predict(messy / "truncated.jpg", model=model, detector=_detector, device="cpu")
    with pytest.raises(ZooError, match="on_error must be one of"):
        zoo.predict(messy, model=model, on_error="ignore")


def test_frames_finished_before_a_failure_are_handed_on_first(model_dir):
    image = Image.new("RGB", (64, 40), (90, 90, 90))

    def frames():
        yield Frame("a.png", image, boxes=[(5, 5, 30, 30)])
        raise ZooError("b.png: broken")

    model = zoo.create(f"local-dir:{model_dir}")
    got = []
    with pytest.raises(ZooError, match="broken"):
        for pred in batching.classify_frames(frames(), model, PredictOptions(device="cpu", batch_size=32)):
            got.append(pred.result.image)
    assert got == ["a.png"]  # the batch held a.png's face when b.png failed: it is not lost

    got.clear()
    frames_then_no_face = [Frame("a.png", image, boxes=[(5, 5, 30, 30)]), Frame("b.png", image, boxes=[])]
    with pytest.raises(ZooError, match=r"b\.png: no face found"):
        for pred in batching.classify_frames(frames_then_no_face, model,
                                             PredictOptions(device="cpu", missing_face="error")):
            got.append(pred.result.image)
    assert got == ["a.png"]  # an error in the loop itself hands the finished frames on too


# ---------------------------------------------------------------------------------------- the schema


def test_one_schema_in_json_csv_python_and_pandas_with_landmarks(tmp_path, model_dir, monkeypatch):
    image = png(tmp_path / "two.png", size=(40, 64))
    results = zoo.predict(image, model=f"local-dir:{model_dir}", detector=_detector, device="cpu")
    assert isinstance(results, Predictions) and isinstance(results, list)
    (entry,) = results
    assert {k: entry[k] for k in ("image", "width", "height", "model", "tag", "detector")} == {
        "image": str(image), "width": 64, "height": 40, "model": "caer_net_s", "tag": None, "detector": "_detector"}
    assert [f["face"] for f in entry["faces"]] == [0, 1]
    assert [f["detector_score"] for f in entry["faces"]] == [0.98, 0.9]
    assert entry["faces"][0]["landmarks"] == [list(p) for p in MARKS]
    assert set(entry["faces"][0]) == {"face", "box", "detector_score", "label", "probability", "probs", "landmarks"}
    frame = results.frames[0]
    assert frame.to_json() == entry and FrameResult.from_json(entry, NAMES).to_json() == entry
    with pytest.raises(FrozenInstanceError):
        frame.faces[0].label = "x"  # type: ignore[misc]
    assert frame.faces[0].landmarks == MARKS

    df = results.to_pandas()
    assert list(df.columns) == csv_header(NAMES) == [*CSV_COLUMNS, *(f"prob_{n}" for n in NAMES)]
    assert len(df) == 2 and list(df["face"]) == [0, 1] and list(df["detector_score"]) == [0.98, 0.9]
    assert df.loc[0, "landmarks"] == "12.0;14.0 22.0;14.0 17.0;19.0 13.0;24.0 21.0;24.0"
    assert df.loc[0, "probability"] == pytest.approx(df.loc[0, f"prob_{df.loc[0, 'label']}"])
    assert frame.to_csv_row(1, NAMES)[CSV_COLUMNS.index("face")] == 1

    from zoo.inference.options import PredictOutputs

    again = zoo.predict(image, model=f"local-dir:{model_dir}", detector=_detector, device="cpu",
                        outputs=PredictOutputs(csv=tmp_path / "faces.csv"))
    rows = list(csv.DictReader((tmp_path / "faces.csv").open()))
    assert [r["face"] for r in rows] == ["0", "1"] and list(rows[0]) == list(df.columns)
    assert again == results
    with pytest.raises(ZooError, match="prints JSON in zoo-cli predict"):
        zoo.predict(image, model=f"local-dir:{model_dir}", outputs=PredictOutputs(as_json=True))

    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pip install 'emotion-zoo\[pandas\]'"):
        results.to_pandas()


def test_the_cli_json_and_csv_carry_the_same_fields(tmp_path, model_dir, monkeypatch):
    monkeypatch.setattr(zoo.data, "detect_faces", lambda image, detector="auto", **k: _detector(image))
    image = png(tmp_path / "two.png", size=(40, 64))
    out = tmp_path / "f.csv"
    result = _cli(["predict", str(image), "--model", f"local-dir:{model_dir}", "--device", "cpu", "--json",
                   "--csv", str(out)])
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.stdout)
    rows = list(csv.DictReader(out.open()))
    for row, face in zip(rows, entry["faces"], strict=True):
        assert int(row["face"]) == face["face"] and float(row["detector_score"]) == face["detector_score"]
        assert float(row["probability"]) == pytest.approx(face["probability"], abs=1e-6)
        assert row["model"] == entry["model"] == "caer_net_s" and row["width"] == "64"


# ------------------------------------------------------------------------------------------- pictures


def test_save_vis_writes_one_annotated_picture_per_photo_with_a_box_per_face(tmp_path, model_dir):
    image = png(tmp_path / "two.png", size=(40, 64), value=128)
    (entry,) = zoo.predict(image, model=f"local-dir:{model_dir}", detector=_detector, device="cpu",
                           save_vis=tmp_path / "vis")
    assert sorted(p.name for p in (tmp_path / "vis").iterdir()) == ["two.png"]
    picture = np.asarray(Image.open(entry["vis"]).convert("RGB"))
    assert picture.shape[1] >= 64 and picture.shape[0] > 40  # the photo, then the probability bars
    for face in entry["faces"]:  # each face's box edge in its colour (the web app's drawing)
        x1, y1, x2, y2 = (round(v) for v in face["box"])
        colour = tuple(int(face_colour(face["face"])[i:i + 2], 16) for i in (1, 3, 5))
        assert tuple(picture[(y1 + y2) // 2, x2 - 1]) == colour


def test_no_vis_attention_leaves_video_frames_untinted(tmp_path, model_dir, monkeypatch):
    import cv2

    from zoo.inference import writers
    from zoo.inference.options import PredictOutputs

    clip = tmp_path / "clip.avi"
    out = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (64, 48))
    for _ in range(3):
        out.write(np.full((48, 64, 3), 100, np.uint8))
    out.release()
    calls = []
    monkeypatch.setattr(writers, "attention_overlay", lambda *a, **k: calls.append(1))
    common = {"model": f"local-dir:{model_dir}", "detector": lambda image: [FaceBox(5, 5, 30, 30, 0.9)],
              "device": "cpu"}
    zoo.predict(clip, outputs=PredictOutputs(save_vis=tmp_path / "off", vis_attention=False), **common)
    assert calls == [] and (tmp_path / "off" / "clip_vis.mp4").is_file()
    zoo.predict(clip, outputs=PredictOutputs(save_vis=tmp_path / "on"), **common)
    assert len(calls) == 3


def test_predict_help_shows_the_new_options():
    result = _cli(["predict", "--help"])
    for option in ("--on-error", "--quiet", "--vis-attention", "--no-vis-attention", "--tta"):
        assert option in result.stdout


# ------------------------------------------------------------------------------------------- progress


def test_progress_goes_to_stderr_when_asked_and_stays_off_otherwise(tmp_path, model_dir, capsys):
    from zoo.inference.run import predict_and_write

    image = png(tmp_path / "a.png", size=(40, 64))
    common = {"model": f"local-dir:{model_dir}", "detector": _detector, "device": "cpu", "echo": lambda t: None}
    predict_and_write([image], progress=True, **common)
    assert "frame/s" in capsys.readouterr().err  # the bar (log lines may go to stderr as well)
    predict_and_write([image], progress=None, **common)  # stderr is no terminal here: no bar
    assert "frame/s" not in capsys.readouterr().err


def test_eval_shows_progress_on_stderr_when_asked(tmp_path, capsys):
    for i, name in enumerate(NAMES):
        png(tmp_path / "d" / "val" / name / "0.png", size=(32, 32), seed=i)
    metrics = zoo.evaluate(tiny_face_model(), f"folder:{tmp_path / 'd'}", batch_size=4, device="cpu", progress=True)
    assert metrics["num_samples"] == 7 and "batch/s" in capsys.readouterr().err
    zoo.evaluate(tiny_face_model(), f"folder:{tmp_path / 'd'}", batch_size=4, device="cpu")
    assert "batch/s" not in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- the bugs


def test_clipped_boxes_are_reported_inside_the_image(model_dir):
    image = Image.new("RGB", (64, 40), (90, 90, 90))
    (entry,) = zoo.predict(image, model=f"local-dir:{model_dir}", boxes=[[(-10, -8, 30, 30)]], device="cpu")
    assert entry["faces"][0]["box"] == [0, 0, 30, 30] and entry["faces"][0]["clipped"] is True


def test_tracks_survive_sampled_frames():
    """Three faces moving 0.6 box widths between the frames the tracker sees (every=5 of a walk)."""
    tracker = IoUTracker(0.3, 5)
    ids = set()
    for step in range(6):
        shift = step * 24
        ids.update(tracker.update([(10 + shift, 10, 50 + shift, 50, 1.0), (10 + shift, 100, 50 + shift, 140, 1.0),
                                   (10 + shift, 190, 50 + shift, 230, 1.0)]))
    assert ids == {0, 1, 2}


def test_boxes_with_a_video_input_are_refused(tmp_path):
    (tmp_path / "c.mp4").write_bytes(b"")
    with pytest.raises(ZooError, match="known boxes apply to images, not to videos"):
        list(iter_frames([tmp_path / "c.mp4"], boxes={str(tmp_path / "a.png"): []}))


def test_pull_of_a_packaged_model_says_it_ships_with_the_package():
    result = _cli(["pull", "fer_cnn.expw"])
    assert result.exit_code == 0, result.output
    assert "fer_cnn.expw: shipped with the package" in result.stdout


def test_the_web_app_takes_auto_as_its_detector():
    pytest.importorskip("gradio")
    from zoo.apps.webapp import build_app

    demo = build_app(model="glamor_net")
    (dropdown,) = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "detector"]
    assert ("auto", "auto") in [tuple(c) for c in dropdown.choices] and dropdown.value == "auto"


def test_the_web_app_analysis_uses_the_shared_face_schema(tmp_path):
    from zoo.apps.webapp import analyse

    model = tiny_face_model()
    analysis = analyse(png(tmp_path / "a.png", size=(40, 64)), model, detector=_detector)
    assert [f.face for f in analysis.faces] == [0, 1]  # numbered from 0, as the CLI and zoo.predict
    face = analysis.faces[0].as_dict()
    assert face["detector_score"] == 0.98 and face["landmarks"] == [list(p) for p in MARKS]


def test_export_metadata_records_grayscale():
    from zoo.inference.export import ExportableModel, export_metadata

    model = zoo.create("fer_cnn")
    meta = export_metadata(model, ExportableModel(model), dynamic_batch=True, batch_size=1)
    assert meta["grayscale"] is model.config.data.grayscale is True


def test_allow_untrained_warns_once(tmp_path):
    from zoo.inference.run import predict_and_write

    image = png(tmp_path / "a.png", size=(40, 64))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predict_and_write([image], model="caer_net_s", allow_untrained=True, detector=lambda im: [FaceBox(5, 5, 30, 30)],
                          device="cpu",
                          echo=lambda t: None)
    assert len([w for w in caught if issubclass(w.category, UntrainedModelWarning)]) == 1
