"""The pieces of ``zoo.predict`` / ``zoo-cli predict`` one at a time: the writers (table, CSV, JSON stream), the
loop's parts (finding faces, track ids, missing faces, the batcher), ``predict_and_write`` (Ctrl-C, closing
files, the summary) and the eval plots. No model is trained; the batcher runs on a stand-in model."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from tiny_face import png, tiny_face_model

import zoo
from zoo.data import FaceBox
from zoo.data.transforms import MissingFaceError
from zoo.errors import ZooError
from zoo.inference import batching, run
from zoo.inference.batching import FaceBatcher, Prediction, VideoTracks, face_entries, find_faces, no_face
from zoo.inference.inputs import read_boxes_csv
from zoo.inference.options import PredictOptions
from zoo.inference.tracking import IoUTracker, box_iou
from zoo.inference.video import Frame
from zoo.inference.writers import CsvWriter, JsonStreamWriter, PredictionTable
from zoo.training.eval_plots import write_eval_plots

NAMES = ["Happy", "Sad"]


def face(index, box, label, probs, score=0.99, **extra):
    return {"face": index, "box": box, "detector_score": score, **extra, "label": label, "probability": max(probs),
            "probs": dict(zip(NAMES, probs, strict=True))}


PHOTO = {"image": "a.png", "faces": [face(0, [10.4, 20.6, 50.0, 60.2], "Happy", [0.75, 0.25]),
                                     face(1, None, "Sad", [0.125, 0.875], score=None)]}
FRAME = {"image": "clip.mp4", "frame": 3, "timestamp": 0.3,
         "faces": [face(0, [1.0, 2.0, 3.0, 4.0], "Sad", [0.4, 0.6], track=7)]}
EMPTY_PHOTO = {"image": "empty.png", "faces": [], "note": "no face found"}
EMPTY_FRAME = {"image": "clip.mp4", "frame": 4, "timestamp": 0.4, "faces": []}


# ---------------------------------------------------------------------------------------------- writers


def test_the_table_prints_a_header_once_then_a_line_per_face():
    lines: list[str] = []
    table = PredictionTable(NAMES, ["a.png", "empty.png"], lines.append)
    for entry in (EMPTY_PHOTO, PHOTO, EMPTY_FRAME, PHOTO):
        table.write(entry)
    table.close()
    row = "{:<9}  {:<4}  {:<19}  {:<7}  {:<5}  {}"
    assert lines == [
        "empty.png: no face found",  # a still without a face: its note, before any header
        row.format("image", "face", "box", "emotion", "Happy", "Sad"),
        row.format("a.png", "0", "10,21,50,60", "Happy", "0.750", "0.250"),
        row.format("a.png", "1", "-", "Sad", "0.125", "0.875"),
        # a video frame without a face prints nothing; the header is not repeated
        row.format("a.png", "0", "10,21,50,60", "Happy", "0.750", "0.250"),
        row.format("a.png", "1", "-", "Sad", "0.125", "0.875"),
    ]


def test_the_table_makes_room_for_frame_and_time_when_an_input_may_be_a_video():
    lines: list[str] = []
    table = PredictionTable(NAMES, ["clip.mp4"], lines.append)
    assert table.widths == [len("clip.mp4") + 16, 4, 19, len("emotion"), 5, 5]
    table.write(FRAME)
    assert lines[1].split() == ["clip.mp4#3@0.30s", "0", "1,2,3,4", "Sad#7", "0.400", "0.600"]
    assert PredictionTable(NAMES, ["camera:0"], lines.append).widths[0] == len("camera:0") + 16
    assert PredictionTable(NAMES, ["a.png"], lines.append).widths[0] == len("image")


def test_the_csv_writer_writes_one_rounded_row_per_face_as_entries_arrive(tmp_path):
    path = tmp_path / "out" / "faces.csv"
    writer = CsvWriter(path, NAMES)
    writer.write(PHOTO)
    # rows are flushed as they arrive, into a temporary file beside the CSV that close() renames into place
    assert writer._atomic.temp.read_text().count("\n") == 3 and not path.exists()
    writer.write(EMPTY_PHOTO)
    writer.write(FRAME)
    writer.close()
    assert sorted(p.name for p in path.parent.iterdir()) == ["faces.csv"]
    assert writer.rows == 3
    assert path.read_text().splitlines() == [
        # the one result schema (issue 32): det_score -> detector_score, score -> probability, source -> image
        "image,frame,timestamp,width,height,model,tag,detector,face,track,x1,y1,x2,y2,clipped,detector_score,label,"
        "probability,landmarks,error,prob_Happy,prob_Sad",
        "a.png,,,,,,,,0,,10.4,20.6,50.0,60.2,False,0.99,Happy,0.75,,,0.75,0.25",
        "a.png,,,,,,,,1,,,,,,False,,Sad,0.875,,,0.125,0.875",
        "clip.mp4,3,0.3,,,,,,0,7,1.0,2.0,3.0,4.0,False,0.99,Sad,0.6,,,0.4,0.6",
    ]


def test_the_json_stream_is_one_valid_array_however_many_entries():
    chunks: list[str] = []
    writer = JsonStreamWriter(chunks.append)
    writer.close()
    assert chunks == ["[]"]
    chunks.clear()
    writer = JsonStreamWriter(chunks.append)
    writer.write(PHOTO)
    writer.write(FRAME)
    writer.close()
    assert chunks[0].startswith("[\n  {") and chunks[1].startswith(",\n  {") and chunks[2] == "\n]"
    assert json.loads("\n".join(chunks)) == [PHOTO, FRAME]


def test_the_json_stream_refuses_nan():
    with pytest.raises(ValueError):
        JsonStreamWriter(lambda text: None).write({"image": "a.png", "faces": [{"probability": float("nan")}]})


# ----------------------------------------------------------------------------------------- the loop's parts


def test_find_faces_keeps_known_boxes_refuses_those_off_the_image_and_keeps_detections_above_min_score(monkeypatch):
    image = Image.new("RGB", (100, 80))
    known = Frame("a.png", image, boxes=[(10, 10, 40, 40), (90, 70, 130, 120)])
    assert find_faces(known, "auto", 0.5) == [(10, 10, 40, 40, 1.0), (90, 70, 130, 120, 1.0)]  # the second is cut off
    off = Frame("a.png", image, boxes=[(10, 10, 40, 40), (200, 200, 240, 240)])  # a known box wholly off the image
    with pytest.raises(ZooError, match=r"a\.png: the known face box \[200.0, 200.0, 240.0, 240.0\] lies wholly outside"):
        find_faces(off, "auto", 0.5)
    monkeypatch.setattr(zoo.data, "detect_faces",
                        lambda img, detector: [FaceBox(1, 2, 30, 40, 0.9), FaceBox(50, 5, 80, 40, 0.3)])
    assert find_faces(Frame("a.png", image), "auto", 0.5) == [(1, 2, 30, 40, 0.9)]
    assert len(find_faces(Frame("a.png", image), "auto", 0.0)) == 2


def test_face_entries_mark_cut_off_faces_and_carry_track_ids():
    frame = Frame("a.png", Image.new("RGB", (100, 80)))
    (inside, _), (cut, box) = face_entries(frame, [(10, 10, 40, 40, 0.9), (-5, 50, 30, 90, 0.8)], [4, 9])
    # the reported box of a cut-off face is clipped to the image (issue 32); the model still gets the box found
    assert inside == {"face": 0, "box": [10, 10, 40, 40], "detector_score": 0.9, "landmarks": None, "track": 4}
    assert cut == {"face": 1, "box": [0, 50, 30, 80], "detector_score": 0.8, "landmarks": None, "track": 9,
                   "clipped": True}
    assert box == {"x1": -5, "y1": 50, "x2": 30, "y2": 90, "score": 0.8}
    assert "track" not in face_entries(frame, [(10, 10, 40, 40, 0.9)], None)[0][0]


def test_video_tracks_keep_one_tracker_per_source():
    tracks = VideoTracks()
    image = Image.new("RGB", (100, 80))
    box = [(10, 10, 40, 40, 0.9)]
    first = tracks.ids(Frame("a.mp4", image, index=0, rate=5), box)
    assert tracks.ids(Frame("a.mp4", image, index=1, rate=5), [(12, 10, 42, 40, 0.9)]) == first
    assert tracks.ids(Frame("b.mp4", image, index=0, rate=5), box) == first  # b.mp4 counts from the start


@pytest.mark.parametrize("a, b, expected", [
    ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),                # the same box
    ((0, 0, 10, 10), (5, 0, 15, 10), 50 / 150),           # half of each: 50 / (100 + 100 - 50)
    ((0, 0, 10, 10), (0, 0, 5, 5), 25 / 100),             # one inside the other
    ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),               # touching edges
    ((0, 0, 0, 10), (0, 0, 0, 10), 0.0),                  # empty boxes
])
def test_box_iou_is_intersection_over_union(a, b, expected):
    assert box_iou(a, b) == pytest.approx(expected) and box_iou(b, a) == pytest.approx(expected)


def test_a_track_is_matched_by_at_most_one_face_per_frame():
    tracker = IoUTracker(iou_threshold=0.3)
    assert tracker.update([(0, 0, 10, 10)]) == [0]
    # both faces overlap track 0 (IoU 0.83 and 0.67): the better one keeps it, the other starts track 1
    assert tracker.update([(0, 0, 10, 12), (0, 0, 10, 15)]) == [0, 1]
    assert tracker.update([(0, 0, 10, 15), (0, 0, 10, 12)]) == [1, 0]


def test_no_face_follows_the_missing_face_policy():
    cfg = SimpleNamespace(uses_face=True, uses_context=True)
    frame = Frame("a.png", Image.new("RGB", (10, 10)))
    entry: dict = {}
    assert no_face(frame, entry, "skip", cfg) == [] and entry["note"].startswith("no face found; missing_face='whole'")
    assert "--missing-face whole" in entry["note"]  # the CLI's spelling too (issue 32)
    assert no_face(frame, entry, "whole", cfg) == [({"face": 0, "box": None, "detector_score": None,
                                                     "landmarks": None}, None)]
    assert "missing_face='whole'" in entry["note"]
    assert no_face(frame, entry, "zeros", cfg)[0][1] is None and "black face" in entry["note"]
    with pytest.raises(MissingFaceError, match=r"clip\.mp4 frame 2: no face found"):
        no_face(Frame("clip.mp4", frame.image, index=2), {}, "error", cfg)


class StandInModel:
    """Answers each face with the probabilities it is told; counts its forward passes."""

    def __init__(self, probs):
        self.probs = iter(probs)
        self.batches: list[int] = []
        self.label_names = NAMES
        self.config = SimpleNamespace(uses_face=True, uses_context=False)

    def __call__(self, face, context):
        self.batches.append(face.shape[0])
        probs = torch.tensor([next(self.probs) for _ in range(face.shape[0])])
        return SimpleNamespace(probs=probs, logits=probs.log(), fusion_weights=None, attention=None)


def _queued(batcher, name, faces):
    pred = Prediction({"image": name, "faces": [{"face": i} for i in range(faces)]}, None, None,
                      attention=[None] * faces, remaining=faces)
    batcher.add_frame(pred)
    return pred


def test_the_batcher_classifies_full_batches_and_hands_frames_on_in_order():
    net = StandInModel([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    batcher = FaceBatcher(net, torch.device("cpu"), batch_size=2)
    a, empty, b = _queued(batcher, "a", 1), _queued(batcher, "empty", 0), _queued(batcher, "b", 2)
    batcher.add_face(a, 0, {"face": torch.zeros(3, 4, 4)})
    assert net.batches == [] and list(batcher.ready()) == []  # a waits for a full batch
    batcher.add_face(b, 0, {"face": torch.zeros(3, 4, 4)})
    assert net.batches == [2] and list(batcher.ready()) == [a, empty]  # b still has a face to go
    batcher.add_face(b, 1, {"face": torch.zeros(3, 4, 4)})
    batcher.flush()
    assert net.batches == [2, 1] and list(batcher.ready()) == [b]
    assert a.entry["faces"][0] == {"face": 0, "label": "Happy", "probability": pytest.approx(0.9),
                                   "probs": {"Happy": pytest.approx(0.9), "Sad": pytest.approx(0.1)}}
    assert [f["label"] for f in b.entry["faces"]] == ["Sad", "Happy"]


def test_the_batcher_refuses_non_finite_outputs_naming_the_inputs():
    net = StandInModel([[float("nan"), 0.5]])
    batcher = FaceBatcher(net, torch.device("cpu"), batch_size=1)
    pred = _queued(batcher, "bad.png", 1)
    with pytest.raises(ZooError, match=r"bad\.png: the model produced NaN or infinite logits"):
        batcher.add_face(pred, 0, {"face": torch.zeros(3, 4, 4)})


def test_the_loop_checks_its_settings_when_iterated():
    # the settings travel as one PredictOptions (issue 32), checked when it is made
    with pytest.raises(ZooError, match="batch_size must be at least 1, got 0"):
        PredictOptions(batch_size=0)
    with pytest.raises(ZooError, match="on_error must be one of auto, skip, raise"):
        PredictOptions(on_error="ignore")
    with pytest.raises(ZooError, match="this model has no context stream"):
        next(batching.classify_frames([], tiny_face_model(), PredictOptions(device="cpu", missing_face="zeros")))


# ------------------------------------------------------------------------------------- predict_and_write


@pytest.fixture
def tiny_model_dir(tmp_path):
    return zoo.save_pretrained(tiny_face_model(), tmp_path / "m")


def test_predict_and_write_streams_into_every_writer_and_returns_a_summary(tmp_path, tiny_model_dir):
    images = [png(tmp_path / "a.png", seed=1), png(tmp_path / "b.png", seed=2)]
    boxes = tmp_path / "boxes.csv"
    boxes.write_text(f"{images[0]},5,5,30,30\n{images[0]},2,2,20,20\n{images[1]},0,0,0,0\n")
    out: list[str] = []
    summary = run.predict_and_write(model=f"local-dir:{tiny_model_dir}", boxes=boxes, device="cpu", as_json=True,
                                    csv_out=tmp_path / "faces.csv", echo=out.append)
    assert summary == run.PredictSummary(frames=2, faces=2, csv_rows=2, stopped=False)
    entries = json.loads("\n".join(out))
    assert [e["image"] for e in entries] == [str(p) for p in images] and entries[1]["faces"] == []
    assert len((tmp_path / "faces.csv").read_text().splitlines()) == 1 + 2


def test_ctrl_c_stops_predict_and_write_with_its_files_closed(tmp_path, tiny_model_dir, monkeypatch):
    image = png(tmp_path / "a.png")

    def interrupted_frames(inputs, **kwargs):
        yield Frame(str(image), Image.open(image).convert("RGB"), boxes=[(5, 5, 30, 30)])
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "iter_frames", interrupted_frames)
    out: list[str] = []
    err: list[str] = []
    summary = run.predict_and_write([str(image)], model=f"local-dir:{tiny_model_dir}", device="cpu", batch_size=1,
                                    as_json=True, csv_out=tmp_path / "faces.csv", echo=out.append, echo_err=err.append)
    assert summary == run.PredictSummary(frames=1, faces=1, csv_rows=1, stopped=True)
    assert err == ["stopped"]
    assert [e["image"] for e in json.loads("\n".join(out))] == [str(image)]  # the array was closed
    assert len((tmp_path / "faces.csv").read_text().splitlines()) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "faces.csv", "m"]  # renamed into place


def test_an_error_mid_run_keeps_the_finished_rows_yet_replaces_a_file_only_with_force(tmp_path, tiny_model_dir,
                                                                                      monkeypatch):
    """Rows go to a temporary file as they are produced, renamed into place in a ``finally`` (also when the run
    fails: issue 32's finished work), while an existing CSV is replaced only with ``force`` (issue 30)."""
    image = png(tmp_path / "a.png")
    out_csv = tmp_path / "faces.csv"
    out_csv.write_text("mine\n")

    def failing_frames(inputs, **kwargs):
        yield Frame(str(image), Image.open(image).convert("RGB"), boxes=[(5, 5, 30, 30)])
        raise ZooError("b.png: broken")

    monkeypatch.setattr(run, "iter_frames", failing_frames)
    args = {"model": f"local-dir:{tiny_model_dir}", "device": "cpu", "batch_size": 1, "csv_out": out_csv,
            "echo": lambda text: None}
    with pytest.raises(ZooError, match="the file exists. Pass --force"):
        run.predict_and_write([str(image)], **args)
    assert out_csv.read_text() == "mine\n"
    with pytest.raises(ZooError, match="also an input of the command"):
        run.predict_and_write([str(image)], **{**args, "csv_out": image}, force=True)
    with pytest.raises(ZooError, match="b.png: broken"):
        run.predict_and_write([str(image)], **args, force=True)
    rows = out_csv.read_text().splitlines()
    assert len(rows) == 2 and rows[0].startswith("image,") and rows[1].startswith(f"{image},")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "faces.csv", "m"]  # no temporary file left


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "Nothing to predict: give images, videos, folders or globs, --boxes FILE, or --camera N."),
    ({"inputs": ["a.png"], "camera": 0}, "--camera reads the webcam; give no INPUTS and no --boxes with it."),
    ({"inputs": ["a.png"], "every": 2, "fps": 3.0}, "Give --every N or --fps F, not both."),
    ({"inputs": ["a.png", "b.mp4"], "save_vis": "out.mp4"},
     "--save-vis out.mp4 is a video file: use it with one video or --camera; for images give a folder."),
])
def test_predict_and_write_refuses_contradictory_options_before_loading_a_model(kwargs, message, monkeypatch):
    monkeypatch.setattr(run, "create_for_inference", lambda *a, **k: pytest.fail("the model must not load"))
    with pytest.raises(ZooError) as error:
        run.predict_and_write(**kwargs)
    assert str(error.value) == message


def test_a_boxes_file_without_rows_is_refused(tmp_path):
    path = tmp_path / "boxes.csv"
    path.write_text("path,x1,y1,x2,y2\n# a comment\n\n")
    with pytest.raises(ZooError, match=r"no rows path,x1,y1,x2,y2 found"):
        read_boxes_csv(path)


# ------------------------------------------------------------------------------------------------ eval plots


def test_eval_plots_draw_the_confusion_matrix_and_a_runs_training_curves(tmp_path):
    metrics = {"confusion": [[3, 1], [0, 4]], "per_class_recall": {"Happy": 0.75, "Sad": 1.0}, "num_samples": 8}
    assert write_eval_plots("fer_cnn", metrics, tmp_path / "p") == [tmp_path / "p" / "confusion.png"]
    run_dir = tmp_path / "run"
    (run_dir / "best").mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text("".join(
        json.dumps({"epoch": e, "train_loss": 1.0 / e, "val": {"accuracy": 0.5 + 0.1 * e}}) + "\n" for e in (1, 2)))
    paths = write_eval_plots(f"local-dir:{run_dir / 'best'}", metrics, tmp_path / "q")
    assert paths == [tmp_path / "q" / "confusion.png", tmp_path / "q" / "training_curves.png"]
    assert all(p.stat().st_size > 5_000 for p in paths)
