"""``zoo.predict`` / ``zoo-cli predict`` inputs and outputs: paths, folders, globs, PIL, numpy (RGB/BGR),
tensors; batching across images; ``--boxes``; table, ``--json``, ``--csv``; the ``missing_face`` rules;
videos (sampling, tracks, timestamps, annotated video, flat memory) and the webcam path. Every image and
video is generated here; faces are drawn skin-coloured ellipses found by a small colour detector."""

from __future__ import annotations

import csv
import json
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from tiny_face import nan_weights_dir, png, tiny_face_model
from typer.testing import CliRunner

import zoo
import zoo.cli
import zoo.data
from zoo.data import FaceBox
from zoo.data.transforms import MissingFaceError
from zoo.errors import ZooError
from zoo.inference.inputs import expand_inputs, iter_frames, read_boxes_csv
from zoo.inference.predict import iter_predictions
from zoo.inference.tracking import IoUTracker
from zoo.inference.video import VideoError, iter_video_frames

# the models here are untrained on purpose: the tests check plumbing and numbers, not emotions
pytestmark = pytest.mark.filterwarnings("ignore::zoo.errors.UntrainedModelWarning")

SKIN = (230, 190, 160)
SMALL = {"backbone_args": {"channels": [8, 8, 16, 16, 16]},
         "data": {"face_size": [32, 32], "context_size": [48, 48], "context_resize": [56, 64]}}


def draw_faces(size, boxes, background=(60, 110, 170)) -> Image.Image:
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    for x1, y1, x2, y2 in boxes:
        draw.ellipse((x1, y1, x2 - 1, y2 - 1), fill=SKIN)
        cx, h = (x1 + x2) / 2, y2 - y1
        draw.ellipse((cx - h * 0.2, y1 + h * 0.3, cx - h * 0.1, y1 + h * 0.4), fill=(0, 0, 0))
        draw.ellipse((cx + h * 0.1, y1 + h * 0.3, cx + h * 0.2, y1 + h * 0.4), fill=(0, 0, 0))
    return image


def skin_detector(image: Image.Image) -> list[FaceBox]:
    """Boxes of the skin-coloured blobs (the drawn faces), largest first, score 0.99."""
    rgb = np.asarray(image.convert("RGB")).astype(int)
    mask = (np.abs(rgb - np.array(SKIN)).sum(axis=2) < 40).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    boxes = [FaceBox(float(x), float(y), float(x + w), float(y + h), 0.99)
             for x, y, w, h, area in stats[1:] if area >= 30]
    return sorted(boxes, key=lambda b: -b.width * b.height)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return zoo.create("glamor_net", **SMALL).eval()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, model):
    return zoo.save_pretrained(model, tmp_path_factory.mktemp("model") / "m")


@pytest.fixture
def stub_detector(monkeypatch):
    calls = []

    def detect(image, detector="auto", **kwargs):
        calls.append(image.size)
        return skin_detector(image)

    monkeypatch.setattr(zoo.data, "detect_faces", detect)
    return calls


def _cli(args):
    return CliRunner().invoke(zoo.cli.app, args)


def _cli_error(args) -> str:
    """The message of the ZooError a command stopped with (``zoo.cli.main`` prints it and exits 2)."""
    result = _cli(args)
    assert isinstance(result.exception, ZooError), (result.output, result.exception)
    return str(result.exception)


def _probs(entries):
    return [f["probs"][k] for e in entries for f in e["faces"] for k in sorted(f["probs"])]


def make_clip(path, frames=40, fps=10.0, size=(160, 120), start=(20, 30), step=(2, 0), face=(36, 44), extra=None):
    """A video of a face moving ``step`` pixels per frame (and an optional second, still face)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*("mp4v" if str(path).endswith(".mp4") else "MJPG")),
                             fps, size)
    assert writer.isOpened()
    for i in range(frames):
        x, y = start[0] + step[0] * i, start[1] + step[1] * i
        boxes = [(x, y, x + face[0], y + face[1])] + ([extra] if extra else [])
        writer.write(np.asarray(draw_faces(size, boxes))[:, :, ::-1].copy())
    writer.release()
    return path


# ------------------------------------------------------------------------------------------------ inputs


def test_every_input_form_gives_the_same_prediction(tmp_path, model):
    image = draw_faces((120, 90), [(10, 15, 50, 65), (70, 20, 106, 62)])
    path = tmp_path / "two.png"
    image.save(path)
    rgb = np.array(image)
    chw = torch.from_numpy(rgb).permute(2, 0, 1)
    kwargs = {"model": model, "detector": skin_detector, "device": "cpu"}
    reference = zoo.predict(path, **kwargs)
    assert reference[0]["image"] == str(path) and len(reference[0]["faces"]) == 2
    for inputs, extra in [
        (image, {}), (image.convert("RGBA"), {}), (rgb, {}), (rgb[:, :, ::-1].copy(), {"channels": "BGR"}),
        (chw, {}), (chw.float() / 255, {}), (chw.float()[[2, 1, 0]] / 255, {"channels": "BGR"}),
    ]:
        (entry,) = zoo.predict(inputs, **kwargs, **extra)
        assert entry["image"] == "<input 0>"
        assert _probs([entry]) == pytest.approx(_probs(reference), abs=1e-5), type(inputs)
    # a batch (N×H×W×3 array, N×3×H×W tensor) and a mixed list
    batch = zoo.predict([np.stack([rgb, rgb]), str(path), chw[None]], **kwargs)
    assert [e["image"] for e in batch] == ["<input 0[0]>", "<input 0[1]>", str(path), "<input 2[0]>"]
    assert all(_probs([e]) == pytest.approx(_probs(reference), abs=1e-5) for e in batch)
    # the flag matters: BGR pixels read as RGB find no skin
    assert zoo.predict(rgb[:, :, ::-1].copy(), **kwargs)[0]["faces"] == []


@pytest.mark.parametrize("bad, message", [
    (np.zeros((8, 8, 3), np.float32), "must be uint8"),
    (np.zeros((8, 8, 4), np.uint8), "alpha"),
    (torch.full((3, 8, 8), 2.0), r"in \[0, 1\]"),
    (torch.zeros(3, 8, 8, dtype=torch.int32), "uint8 or float"),
    (torch.zeros(5, 8, 8), "3×H×W"),
    (object(), "expected a path, PIL image"),
])
def test_bad_inputs_are_named(bad, message):
    with pytest.raises(ZooError, match=message):
        list(iter_frames([bad]))


def test_folders_are_searched_recursively_and_globs_expand(tmp_path):
    for rel in ("a/b/x.png", "a/y.jpg", "a/c/z.mp4", "top.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    assert expand_inputs([tmp_path / "a"]) == [str(tmp_path / p) for p in ("a/b/x.png", "a/c/z.mp4", "a/y.jpg")]
    assert expand_inputs([str(tmp_path / "**" / "*.png")]) == [str(tmp_path / "a/b/x.png"), str(tmp_path / "top.png")]
    assert expand_inputs([tmp_path / "top.png"]) == [str(tmp_path / "top.png")]
    with pytest.raises(ZooError, match="no file matches"):
        expand_inputs([str(tmp_path / "*.gif")])
    with pytest.raises(ZooError, match="no such image, video or folder"):
        expand_inputs([tmp_path / "missing.jpg"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ZooError, match="holds no image or video"):
        expand_inputs([tmp_path / "empty"])


def test_faces_are_batched_across_images(tmp_path, model, monkeypatch):
    images = [draw_faces((100, 80), [(5 + 5 * i, 10, 35 + 5 * i, 55), (55, 12, 90, 60)]) for i in range(3)]
    single = zoo.predict(images, model=model, detector=skin_detector, device="cpu", batch_size=1)
    sizes = []
    forward = type(model).forward

    def counting(self, face=None, context=None):
        sizes.append(face.shape[0])
        return forward(self, face=face, context=context)

    monkeypatch.setattr(type(model), "forward", counting)
    batched = zoo.predict(images, model=model, detector=skin_detector, device="cpu", batch_size=4)
    assert sizes == [4, 2]  # 6 faces of 3 images in two forward passes
    assert [len(e["faces"]) for e in batched] == [2, 2, 2]
    assert _probs(batched) == pytest.approx(_probs(single), abs=1e-5)


# ------------------------------------------------------------------------------------- CLI outputs, boxes


def test_cli_folder_and_glob_with_table_json_and_csv(tmp_path, model_dir, stub_detector):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    draw_faces((120, 90), [(10, 15, 50, 65), (70, 20, 106, 62)]).save(tmp_path / "in" / "sub" / "a.png")
    draw_faces((120, 90), [(30, 20, 70, 70)]).save(tmp_path / "in" / "b.jpg")
    draw_faces((120, 90), []).save(tmp_path / "empty.png")
    common = ["--model", f"local-dir:{model_dir}", "--device", "cpu", "--batch-size", "2"]

    table = _cli(["predict", str(tmp_path / "in"), str(tmp_path / "empty.png"), *common])
    assert table.exit_code == 0, table.output
    lines = table.stdout.strip().splitlines()
    assert lines[0].split()[:4] == ["image", "face", "box", "emotion"] and "Anger" in lines[0]
    assert [line.split()[0] for line in lines[1:4]] == [str(tmp_path / "in/b.jpg")] + [str(tmp_path / "in/sub/a.png")] * 2
    assert lines[4].startswith(f"{tmp_path / 'empty.png'}: no face found")

    out_csv = tmp_path / "out" / "faces.csv"
    result = _cli(["predict", str(tmp_path / "in" / "**" / "*.png"), str(tmp_path / "in" / "*.jpg"), *common,
                   "--json", "--csv", str(out_csv)])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)
    assert [e["image"] for e in entries] == [str(tmp_path / "in/sub/a.png"), str(tmp_path / "in/b.jpg")]
    rows = list(csv.DictReader(out_csv.open()))
    names = list(zoo.labels.CAER)
    # the one result schema (issue 32): the CSV's names are the JSON's
    assert list(rows[0]) == ["image", "frame", "timestamp", "width", "height", "model", "tag", "detector", "face",
                             "track", "x1", "y1", "x2", "y2", "clipped", "detector_score", "label", "probability",
                             "landmarks", "error", *(f"prob_{n}" for n in names)]
    assert [(r["image"], r["face"]) for r in rows] == [(str(tmp_path / "in/sub/a.png"), "0"),
                                                        (str(tmp_path / "in/sub/a.png"), "1"),
                                                        (str(tmp_path / "in/b.jpg"), "0")]
    for row, face in zip(rows, [f for e in entries for f in e["faces"]], strict=True):
        assert row["frame"] == row["timestamp"] == row["track"] == ""
        assert [float(row[k]) for k in ("x1", "y1", "x2", "y2")] == pytest.approx(face["box"], abs=0.01)
        assert float(row["detector_score"]) == pytest.approx(0.99)
        assert sum(float(row[f"prob_{n}"]) for n in names) == pytest.approx(1.0, abs=1e-4)
        assert row["label"] == max(names, key=lambda n: float(row[f"prob_{n}"]))
        assert float(row["probability"]) == pytest.approx(float(row[f"prob_{row['label']}"]))


def test_cli_boxes_file_skips_detection(tmp_path, model_dir, monkeypatch):
    def no_detection(*args, **kwargs):
        raise AssertionError("detection must not run with --boxes")

    monkeypatch.setattr(zoo.data, "detect_faces", no_detection)
    (tmp_path / "imgs").mkdir()
    draw_faces((120, 90), [(10, 15, 50, 65)]).save(tmp_path / "imgs" / "a.png")
    draw_faces((120, 90), []).save(tmp_path / "imgs" / "b.png")
    boxes = tmp_path / "imgs" / "boxes.csv"
    boxes.write_text("path,x1,y1,x2,y2\na.png,10,15,50,65\na.png,60,10,100,60\nb.png,0,0,0,0\n")
    assert read_boxes_csv(boxes) == {str(tmp_path / "imgs" / "a.png"): [(10, 15, 50, 65), (60, 10, 100, 60)],
                                     str(tmp_path / "imgs" / "b.png"): []}
    common = ["--model", f"local-dir:{model_dir}", "--device", "cpu", "--json"]
    result = _cli(["predict", "--boxes", str(boxes), *common])  # no INPUTS: the images the file lists
    assert result.exit_code == 0, result.output
    a, b = json.loads(result.stdout)
    assert [f["box"] for f in a["faces"]] == [[10, 15, 50, 65], [60, 10, 100, 60]]
    assert [f["detector_score"] for f in a["faces"]] == [1.0, 1.0]
    assert b["faces"] == [] and b["note"].startswith("no face found")
    # with INPUTS, an image the file does not list has no face (detection still does not run)
    draw_faces((120, 90), [(10, 15, 50, 65)]).save(tmp_path / "imgs" / "c.png")
    result = _cli(["predict", str(tmp_path / "imgs" / "c.png"), "--boxes", str(boxes), *common])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["faces"] == []
    boxes.write_text("a.png,10,15,50,65\na.png,50,15,10,65\n")
    message = _cli_error(["predict", "--boxes", str(boxes), *common])
    assert f"{boxes}:2" in message and "x2 < x1" in message
    boxes.write_text("a.png,10,15,50\n")
    assert "expected 5 fields path,x1,y1,x2,y2" in _cli_error(["predict", "--boxes", str(boxes), *common])


def test_cli_rejects_contradictory_options(tmp_path, model_dir):
    common = ["--model", f"local-dir:{model_dir}"]
    assert "Nothing to predict" in _cli_error(["predict", *common])
    assert "--every N or --fps F" in _cli_error(["predict", str(tmp_path), "--every", "2", "--fps", "3", *common])
    draw_faces((60, 60), []).save(tmp_path / "a.png")
    assert "use it with one video or --camera" in _cli_error(
        ["predict", str(tmp_path / "a.png"), "--save-vis", str(tmp_path / "x.mp4"), *common])
    assert "--camera reads the webcam" in _cli_error(["predict", str(tmp_path / "a.png"), "--camera", "0", *common])


# ----------------------------------------------------------------------------------------- missing faces


def test_missing_face_rules(model):
    blank = draw_faces((80, 60), [])
    kwargs = {"detector": skin_detector, "device": "cpu"}
    (entry,) = zoo.predict(blank, model=model, **kwargs)
    assert entry["faces"] == [] and entry["note"] == (
        "no face found; missing_face='whole' (--missing-face whole) classifies the whole image as a face")
    (entry,) = zoo.predict(blank, model=model, missing_face="whole", **kwargs)
    assert len(entry["faces"]) == 1 and entry["faces"][0]["box"] is None and "whole image" in entry["note"]
    (zeros,) = zoo.predict(blank, model=model, missing_face="zeros", **kwargs)
    assert zeros["faces"][0]["probs"] != entry["faces"][0]["probs"]
    with pytest.raises(MissingFaceError, match=r"<input 0>: no face found \(missing_face='error'\)"):
        zoo.predict(blank, model=model, missing_face="error", **kwargs)
    with pytest.raises(ZooError, match="missing_face must be one of"):
        zoo.predict(blank, model=model, missing_face="drop", **kwargs)

    face_only = zoo.create("glamor_net", streams="face", **SMALL)
    with pytest.raises(ZooError, match="no context stream, so it would classify a black image"):
        zoo.predict(blank, model=face_only, missing_face="zeros", **kwargs)
    context_only = zoo.create("glamor_net", streams="context", attention="ca", **SMALL)
    (entry,) = zoo.predict(blank, model=context_only, **kwargs)
    assert entry["faces"] == [] and "context-only model can classify the unmasked scene" in entry["note"]
    (entry,) = zoo.predict(blank, model=context_only, missing_face="zeros", **kwargs)
    assert len(entry["faces"]) == 1 and "unmasked scene" in entry["note"]


def test_cut_off_faces_are_clipped_and_known_boxes_wholly_outside_are_an_error(model):
    image = draw_faces((80, 60), [(50, 10, 95, 60)])  # the face runs off the right border
    (entry,) = zoo.predict(image, model=model, boxes=[[(50, 10, 95, 60)]], device="cpu")
    (face,) = entry["faces"]
    assert face["box"] == [50, 10, 80, 60] and face["clipped"] is True  # reported inside the image (issue 32)
    # a known box is a claim that a face is there; one wholly off the image is a mistake, not "no face found"
    for boxes in ([[(50, 10, 95, 60), (200, 0, 240, 40)]], [[(200, 0, 240, 40)]]):
        with pytest.raises(ZooError, match=r"box \[200.0, 0.0, 240.0, 40.0\] lies wholly outside the 80×60 image"):
            zoo.predict(image, model=model, boxes=boxes, device="cpu")


# ----------------------------------------------------------------------------------------------- videos


def test_iou_tracker_keeps_identities():
    tracker = IoUTracker(iou_threshold=0.3, max_missed=1)
    assert tracker.update([(0, 0, 10, 10), (50, 50, 60, 60)]) == [0, 1]
    assert tracker.update([(52, 51, 62, 61), (1, 0, 11, 10)]) == [1, 0]  # order of detections does not matter
    assert tracker.update([(2, 0, 12, 10)]) == [0]                      # track 1 missed once: kept
    assert tracker.update([(3, 0, 13, 10), (53, 50, 63, 60)]) == [0, 1]
    assert tracker.update([]) == [] and tracker.update([]) == []        # both missed twice: ended
    assert tracker.update([(3, 0, 13, 10)]) == [2]                      # a new track, ids never reused


def test_video_sampling_timestamps_tracks_and_annotated_video(tmp_path, model_dir, stub_detector):
    clip = make_clip(tmp_path / "clip.mp4", frames=40, fps=10.0, step=(1, 0), extra=(110, 20, 146, 64))
    every = list(iter_video_frames(clip, every=3))
    assert [f.index for f in every] == list(range(0, 40, 3)) and every[1].timestamp == pytest.approx(0.3)
    assert every[0].rate == pytest.approx(10 / 3)
    by_fps = list(iter_video_frames(clip, fps=4))
    assert [f.timestamp for f in by_fps] == pytest.approx([0.0, 0.3, 0.5, 0.8, 1.0, 1.3, 1.5, 1.8, 2.0, 2.3, 2.5,
                                                           2.8, 3.0, 3.3, 3.5, 3.8])
    assert len(list(iter_video_frames(clip, max_frames=5))) == 5

    out_csv, out_video = tmp_path / "faces.csv", tmp_path / "vis" / "out.mp4"
    result = _cli(["predict", str(clip), "--model", f"local-dir:{model_dir}", "--device", "cpu", "--every", "2",
                   "--csv", str(out_csv), "--save-vis", str(out_video)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 40  # 20 frames × 2 faces
    assert sorted({int(r["frame"]) for r in rows}) == list(range(0, 40, 2))
    assert all(float(r["timestamp"]) == pytest.approx(int(r["frame"]) / 10) for r in rows)
    moving = [r for r in rows if float(r["x1"]) < 100]
    still = [r for r in rows if float(r["x1"]) >= 100]
    assert len(moving) == len(still) == 20
    assert len({r["track"] for r in moving}) == len({r["track"] for r in still}) == 1  # one identity each
    assert {r["track"] for r in rows} == {"0", "1"}
    assert "#" in result.stdout.splitlines()[1]  # table rows name the frame and time: clip.mp4#0@0.00s

    capture = cv2.VideoCapture(str(out_video))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(5.0)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == 20 and frames[0].shape == (120, 160, 3)
    # the first frame: a green box around the moving face and the attention overlay outside the faces
    original = np.asarray(draw_faces((160, 120), [(20, 30, 56, 74), (110, 20, 146, 64)]))[:, :, ::-1]
    diff = np.abs(frames[0].astype(int) - original.astype(int)).sum(axis=2)
    # the context crop shows x 20–140, y 9–111 of the frame (context_resize 56×64, centre crop 48×48)
    assert diff[85:110, 60:100].mean() > 3 * diff[85:110, 0:15].mean() + 20  # tinted inside, codec noise outside
    edge = frames[0][72:77, 38].astype(int)  # the box's bottom edge (y 74) under the moving face: green (BGR)
    assert (edge[:, 1] - np.maximum(edge[:, 0], edge[:, 2])).max() > 80


def test_webcam_path_reads_a_camera_the_same_way(tmp_path, model_dir, stub_detector, monkeypatch):
    clip = make_clip(tmp_path / "cam.avi", frames=12, fps=30.0)
    real = cv2.VideoCapture
    opened = []

    def fake_capture(source, *args):
        opened.append(source)
        return real(str(clip)) if isinstance(source, int) else real(source, *args)

    monkeypatch.setattr(cv2, "VideoCapture", fake_capture)
    out_csv = tmp_path / "cam.csv"
    result = _cli(["predict", "--camera", "0", "--max-frames", "5", "--model", f"local-dir:{model_dir}",
                   "--device", "cpu", "--csv", str(out_csv), "--save-vis", str(tmp_path / "cam.avi.mp4")])
    assert result.exit_code == 0, result.output
    assert opened[0] == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["image"] for r in rows] == ["camera:0"] * 5 and [r["frame"] for r in rows] == ["0", "1", "2", "3", "4"]
    assert {r["track"] for r in rows} == {"0"}
    assert all(float(r["timestamp"]) >= 0 for r in rows)
    with pytest.raises(VideoError, match="Could not open camera 7"):
        monkeypatch.setattr(cv2, "VideoCapture", real)
        list(iter_video_frames(7))


def test_video_errors(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(VideoError, match="OpenCV could not open this video"):
        list(iter_video_frames(tmp_path / "bad.mp4"))
    with pytest.raises(VideoError, match="no such video file"):
        list(iter_video_frames(tmp_path / "none.mp4"))
    make_clip(tmp_path / "c.mp4", frames=2)
    with pytest.raises(ZooError, match="known boxes apply to images"):
        list(iter_frames([tmp_path / "c.mp4"], boxes={str(tmp_path / "c.mp4"): [(0, 0, 5, 5)]}))
    # known boxes and a video: refused, never silently ignored (issue 32)
    with pytest.raises(ZooError, match="known boxes apply to images"):
        list(iter_frames([tmp_path / "c.mp4"], boxes={"other.png": []}))


def test_memory_stays_flat_on_a_long_video(tmp_path, model):
    """300 frames stream through: the Python heap peak does not grow with the number of frames."""
    clip = make_clip(tmp_path / "long.avi", frames=300, fps=25.0, size=(320, 240), step=(0, 0), face=(60, 70))

    def peak(frames: int) -> int:
        tracemalloc.start()
        count = 0
        for pred in iter_predictions(iter_video_frames(clip, max_frames=frames), model, detector=skin_detector,
                                     device="cpu", batch_size=8):
            count += len(pred.entry["faces"])
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert count == frames
        return top

    short, long = peak(30), peak(300)
    frame_bytes = 320 * 240 * 3
    assert long < short + 20 * frame_bytes, (short, long)  # holding the frames would add 270 × 230 kB


def test_mtcnn_tracks_the_astronaut_through_a_generated_clip(tmp_path, model):
    skimage_data = pytest.importorskip("skimage.data")
    astronaut = Image.fromarray(skimage_data.astronaut()).resize((256, 256))
    clip = tmp_path / "astronaut.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (224, 224))
    for i in range(8):  # the camera pans 4 px per frame
        writer.write(np.asarray(astronaut.crop((4 * i, 8, 4 * i + 224, 232)))[:, :, ::-1].copy())
    writer.release()
    entries = zoo.predict(clip, model=model, detector="mtcnn", device="cpu")
    assert [e["frame"] for e in entries] == list(range(8))
    assert all(len(e["faces"]) == 1 and e["faces"][0]["track"] == 0 for e in entries)
    xs = [e["faces"][0]["box"][0] for e in entries]
    assert xs[0] - xs[-1] == pytest.approx(28, abs=6)  # the face moves left with the pan


def test_zoo_cli_predict_on_a_photo_uses_the_default_model_and_says_so(tmp_path):
    """A whole photo with no --model: the bundled joint face model reads it, and stderr names it."""
    import os
    import subprocess
    import sys

    from zoo.inference.defaults import DEFAULT_MODEL

    assert DEFAULT_MODEL == "fer_cnn.fer2013_expw" and not zoo.create(DEFAULT_MODEL, pretrained=True).config.uses_context
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    (tmp_path / "boxes.csv").write_text(f"{tmp_path / 'photo.png'},40,20,88,68\n")
    run = subprocess.run([sys.executable, "-m", "zoo", "predict", "--boxes", str(tmp_path / "boxes.csv"), "--json"],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr
    assert "model: fer_cnn.fer2013_expw (the default), face only" in run.stderr
    (entry,) = json.loads(run.stdout)
    assert entry["faces"][0]["label"] in zoo.labels.FER2013


def test_non_finite_outputs_are_an_error_and_the_json_is_strict(tmp_path, run_cli):
    image = png(tmp_path / "a.png")
    model = tiny_face_model()
    good = zoo.predict([image], model=model, boxes=[[[5, 5, 30, 30]]], device="cpu")
    assert np.isfinite(good[0]["faces"][0]["probability"])
    with torch.no_grad():
        model.classifier.weight.fill_(float("nan"))  # past every load-time check
    with pytest.raises(ZooError, match=r"a\.png: the model produced NaN or infinite logits"):
        zoo.predict([image], model=model, boxes=[[[5, 5, 30, 30]]], device="cpu")
    # the CLI refuses such weights at load (error line, exit 1) and never prints bare NaN
    directory = nan_weights_dir(tmp_path)
    code, out, err = run_cli(["predict", str(image), "--model", f"local-dir:{directory}", "--json"])
    assert code == 1 and "classifier.weight" in err and "NaN" not in out


def test_predict_json_is_valid_strict_json(tmp_path, monkeypatch, run_cli):
    image = png(tmp_path / "a.png")
    directory = zoo.save_pretrained(tiny_face_model(), tmp_path / "m")
    monkeypatch.setattr(zoo.data, "detect_faces", lambda *a, **k: [FaceBox(5, 5, 30, 30, 3.0)], raising=False)
    code, out, err = run_cli(["predict", str(image), "--model", f"local-dir:{directory}", "--json"])
    assert code == 0, err

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    rows = json.loads(out, parse_constant=refuse)
    assert rows[0]["faces"][0]["label"] in zoo.labels.CAER


def test_save_vis_keeps_every_image_when_stems_repeat(tmp_path):
    a, b = png(tmp_path / "a/x.png", seed=1), png(tmp_path / "b/x.png", seed=2)
    model = tiny_face_model()
    results = zoo.predict([a, b], model=model, boxes=[[[5, 5, 30, 30]], [[5, 5, 30, 30]]], device="cpu",
                          save_vis=tmp_path / "vis")
    paths = [r["vis"] for r in results]  # one picture per photo (issue 32)
    assert len(set(paths)) == 2 and all(Path(p).exists() for p in paths)
    assert sorted(p.name for p in (tmp_path / "vis").iterdir()) == ["x.png", "x_2.png"]
    with pytest.raises(ZooError, match="save_vis .*the folder is not empty. Pass --force \\(overwrite=True\\)"):
        zoo.predict([a], model=model, boxes=[[[5, 5, 30, 30]]], device="cpu", save_vis=tmp_path / "vis")
    again = zoo.predict([a], model=model, boxes=[[[5, 5, 30, 30]]], device="cpu", save_vis=tmp_path / "vis",
                        overwrite=True)
    assert again[0]["vis"] == paths[0]


def test_save_vis_into_an_unwritable_path_is_a_clear_error(tmp_path):
    image = png(tmp_path / "a.png")
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(ZooError, match=r"--save-vis: cannot create the folder .*file/vis"):
        zoo.predict([image], model=tiny_face_model(), boxes=[[[5, 5, 30, 30]]], device="cpu",
                    save_vis=tmp_path / "file/vis")


# ------------------------------------------------------------------------------------ outputs (zoo.outputs)


def test_an_output_that_is_an_input_is_refused_even_with_force_and_the_input_is_kept(tmp_path, model_dir, run_cli,
                                                                                       stub_detector):
    photo = png(tmp_path / "w" / "face.jpg")
    clip = make_clip(tmp_path / "w" / "clip.mp4", frames=4)
    photo_bytes, clip_bytes = photo.read_bytes(), clip.read_bytes()
    model = ["--model", f"local-dir:{model_dir}", "--device", "cpu"]
    for args in ([str(photo), "--csv", str(photo)], [str(tmp_path / "w"), "--csv", str(tmp_path / "w/./face.jpg")],
                 [str(clip), "--save-vis", str(clip)], [str(photo), "--csv", str(photo), "--force"],
                 [str(clip), "--save-vis", str(clip), "--force"],
                 [str(photo), "--csv", str(model_dir / "config.json"), "--force"]):
        code, _, err = run_cli(["predict", *args, *model])
        assert code == 1 and "also an input of the command" in err, (args, err)
    assert photo.read_bytes() == photo_bytes and clip.read_bytes() == clip_bytes
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["clip.mp4", "face.jpg"]  # no temporary left


def test_an_existing_output_is_replaced_only_with_force_and_only_through_a_temporary_file(tmp_path, model_dir,
                                                                                          run_cli, stub_detector):
    photo = png(tmp_path / "a.png")
    out_csv, vis = tmp_path / "out" / "faces.csv", tmp_path / "vis"
    out_csv.parent.mkdir()
    out_csv.write_text("mine\n")
    (vis / "notes.txt").parent.mkdir()
    (vis / "notes.txt").write_text("mine")
    model = ["--model", f"local-dir:{model_dir}", "--device", "cpu"]
    code, _, err = run_cli(["predict", str(photo), *model, "--csv", str(out_csv)])
    assert code == 1 and "the file exists. Pass --force" in err and out_csv.read_text() == "mine\n"
    code, _, err = run_cli(["predict", str(photo), *model, "--save-vis", str(vis)])
    assert code == 1 and "the folder is not empty" in err
    code, _, err = run_cli(["predict", str(photo), *model, "--csv", str(tmp_path / "vis"), "--force"])
    assert code == 1 and "is a folder" in err
    code, out, err = run_cli(["predict", str(photo), *model, "--csv", str(out_csv), "--force"])
    assert code == 0, err
    assert out_csv.read_text().startswith("image,frame") and [p.name for p in out_csv.parent.iterdir()] == ["faces.csv"]


def test_the_save_vis_folder_inside_an_input_folder_is_no_input(tmp_path, model_dir, run_cli):
    photos = tmp_path / "photos"
    for i in range(2):
        png(photos / f"p{i}.png", seed=i)
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("".join(f"{photos / f'p{i}.png'},5,5,30,30\n" for i in range(2)))
    args = ["predict", str(photos), "--model", f"local-dir:{model_dir}", "--device", "cpu", "--boxes", str(boxes),
            "--json", "--save-vis", str(photos / "vis")]
    for extra in ([], ["--force"]):  # the second run finds the first run's figures in photos/vis
        code, out, err = run_cli([*args, *extra])
        assert code == 0, err
        assert [Path(e["image"]).name for e in json.loads(out)] == ["p0.png", "p1.png"]
    assert sorted(p.name for p in (photos / "vis").iterdir()) == ["p0.png", "p1.png"]  # one picture per photo


def test_sampling_values_are_checked_and_bounded(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=4)
    for kwargs, needle in (({"fps": float("inf")}, "fps must be"), ({"fps": float("nan")}, "fps must be"),
                           ({"fps": 1e300}, "fps must be"), ({"max_frames": 0}, "max_frames must be"),
                           ({"max_frames": -1}, "max_frames must be")):
        with pytest.raises(VideoError, match=needle):
            next(iter_video_frames(clip, **kwargs))
    with pytest.raises(VideoError, match="camera must be a webcam index"):
        next(iter_video_frames(-1))


def test_one_unreadable_or_over_size_image_in_a_folder_is_skipped_and_named(tmp_path, model_dir, run_cli, monkeypatch,
                                                                           caplog):
    """The run goes on past them (issue 30: 18); each is recorded with its error and the exit code is 1 (issue 32)."""
    import logging

    import zoo.data.images

    photos = tmp_path / "photos"
    png(photos / "a.png", size=(40, 40))
    png(photos / "big.png", size=(60, 60))
    (photos / "broken.png").write_bytes(b"not a png")
    monkeypatch.setattr(zoo.data.images, "MAX_IMAGE_PIXELS", 2000)  # big.png (3600 px) is over the limit
    boxes = tmp_path / "boxes.csv"
    boxes.write_text(f"{photos / 'a.png'},5,5,30,30\n")
    with caplog.at_level(logging.WARNING, logger="zoo"):
        code, out, err = run_cli(["predict", str(photos), "--model", f"local-dir:{model_dir}", "--device", "cpu",
                                  "--boxes", str(boxes), "--json"])
    assert code == 1, err
    entries = {Path(e["image"]).name: e for e in json.loads(out)}
    assert sorted(entries) == ["a.png", "big.png", "broken.png"]
    assert len(entries["a.png"]["faces"]) == 1 and entries["a.png"].get("error") is None
    assert "more than" in entries["big.png"]["error"] and entries["broken.png"]["error"]
    assert "skipped" in caplog.text and "big.png" in caplog.text and "broken.png" in caplog.text
    assert "2 of 3 inputs failed" in err
    code, _, err = run_cli(["predict", str(photos / "big.png"), "--model", f"local-dir:{model_dir}"])
    assert code == 1 and "more than" in err  # named alone, the image is the error
