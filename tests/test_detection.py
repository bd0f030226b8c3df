"""Face detectors: MTCNN (networks, weights, cascade, pyramid limits), Haar's NMS and minimum score, the
``auto`` default, and the detector benchmark's matching rules. Images are synthetic or skimage's astronaut."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import zoo
from zoo.data import FaceBox, detect_faces, mtcnn
from zoo.data import detection as det
from zoo.errors import DataError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    skimage_data = pytest.importorskip("skimage.data")
    return Image.fromarray(skimage_data.astronaut())  # public domain, ships inside scikit-image


def _iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


def test_weights_ship_as_package_data_with_their_origin():
    assert mtcnn.weights_present()
    folder = mtcnn.WEIGHTS_DIR
    assert folder == REPO / "zoo" / "data" / "weights" / "mtcnn"
    total = sum((folder / f"{n}.safetensors").stat().st_size for n in mtcnn.NETS)
    assert 1.5e6 < total < 2.5e6
    readme = (folder / "README.md").read_text()
    assert "facenet_pytorch-2.6.0-py3-none-any.whl" in readme and len(re.findall(r"`[0-9a-f]{64}`", readme)) == 4
    licence = (folder / "LICENSE").read_text()
    assert licence.count("MIT License") == 3 and "Permission is hereby granted" in licence
    pyproject = (REPO / "pyproject.toml").read_text()
    assert "data/weights/mtcnn/*.safetensors" in pyproject and "data/weights/mtcnn/LICENSE" in pyproject
    # a quick integrity check: the state dicts load strictly into our networks
    pnet, rnet, onet = mtcnn.load_networks()
    assert sum(p.numel() for p in pnet.parameters()) == 6632
    assert not any(p.requires_grad for p in onet.parameters())


def test_networks_reproduce_the_reference_implementation():
    """Numbers from facenet-pytorch 2.6.0's own PNet/RNet/ONet on the same input (computed once, by hand):
    they pin the layer order, the PReLU placement and the (W, H, C) flattening before the dense layers."""
    pnet, rnet, onet = mtcnn.load_networks()
    x = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(1234)) * 2 - 1
    with torch.no_grad():
        prob, reg = pnet(x[:, :, :16, :14])
        assert prob.shape == (2, 3, 2)
        assert prob.flatten()[:3].tolist() == pytest.approx([0.0073963, 0.0278285, 0.0068596], abs=1e-6)
        assert reg[0, :, 0, 0].tolist() == pytest.approx([0.2241263, 0.0342021, 0.0528456, -0.0069295], abs=1e-6)
        prob, reg = rnet(x[:, :, 10:34, 5:29])
        assert prob.tolist() == pytest.approx([0.0153757, 0.0209975], abs=1e-6)
        assert reg[0].tolist() == pytest.approx([0.1302463, -0.0082961, -0.0834883, -0.0148904], abs=1e-6)
        prob, reg, marks = onet(x)
        assert prob.tolist() == pytest.approx([0.00052020, 0.00241834], abs=1e-7)
        assert reg[0].tolist() == pytest.approx([0.0541030, -0.0104877, -0.1667416, 0.0221454], abs=1e-6)
        assert marks[0, :4].tolist() == pytest.approx([0.2923920, 0.6985317, 0.4725270, 0.2234253], abs=1e-6)


def test_mtcnn_finds_the_astronaut_face_with_landmarks(astronaut):
    detector = mtcnn.MTCNNFaceDetector()
    faces, points = detector.detect(astronaut)
    assert len(faces) == 1 and points.shape == (1, 5, 2)
    face = faces[0]
    # the face is at about x 180–268, y 60–174 of the 512×512 image (checked by eye)
    assert _iou((face.x1, face.y1, face.x2, face.y2), (180, 60, 268, 174)) > 0.7
    assert face.score > 0.99
    (left_eye, right_eye, nose, mouth_left, mouth_right) = points[0]
    assert left_eye[0] < nose[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    assert all(face.x1 < x < face.x2 and face.y1 < y < face.y2 for x, y in points[0])
    # the registered detector and detect_faces give the same box; "auto" picks MTCNN here
    assert detect_faces(astronaut, "mtcnn") == faces
    assert detect_faces(astronaut) == faces


def test_mtcnn_on_blank_tiny_and_grey_inputs():
    detector = det.get_face_detector("mtcnn")
    assert detector(Image.new("RGB", (160, 120), (128, 128, 128))) == []
    assert detector(Image.new("RGB", (10, 10))) == []  # smaller than P-Net's 12×12 window: no pyramid level
    assert detector(Image.new("L", (64, 64))) == []    # converted to RGB
    with pytest.raises(DataError, match="H×W×3 uint8"):
        detector.detect(np.zeros((20, 20), dtype=np.uint8))


def test_mtcnn_pyramid_is_limited_by_relative_face_size_and_working_resolution():
    detector = mtcnn.MTCNNFaceDetector()
    scales = detector.scales(1280, 1920)
    # smallest face: max(20 px at 1280 wide -> 30 px, 3% of 1280 = 38.4 px) -> first level 12 / 38.4
    assert scales[0] == pytest.approx(12 / 38.4)
    assert all(b / a == pytest.approx(0.709) for a, b in zip(scales, scales[1:], strict=False))
    assert 1280 * scales[-1] >= 12 > 1280 * scales[-1] * 0.709
    # a 4000×3000 photo: 20 px counted at 1280 wide = 62.5 px; 3% of 3000 = 90 px wins
    assert mtcnn.MTCNNFaceDetector().scales(3000, 4000)[0] == pytest.approx(12 / 90)
    # a 4000×1000 panorama: 20 px counted at 1280 wide = 62.5 px beats 3% of 1000 = 30 px, so max_size decides
    assert detector.scales(1000, 4000)[0] == pytest.approx(12 / 62.5)
    assert mtcnn.MTCNNFaceDetector(max_size=2000).scales(1000, 4000)[0] == pytest.approx(12 / 40)  # 20 px × 2
    assert mtcnn.MTCNNFaceDetector(max_size=0).scales(1000, 4000)[0] == pytest.approx(12 / 30)  # 3% wins
    # without the limits a small image is searched from 20 px faces up
    free = mtcnn.MTCNNFaceDetector(min_face_fraction=0.0, max_size=0)
    assert free.scales(342, 548)[0] == pytest.approx(12 / 20)
    with pytest.raises(DataError, match="at least 12"):
        mtcnn.MTCNNFaceDetector(min_face=8)


def test_nms_union_and_min_overlap():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [2, 2, 6, 6]], dtype=float)
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    # union: the small inner box (IoU 0.16 with the first) survives; the shifted copy (IoU 0.68) does not
    assert mtcnn.nms(boxes, scores, 0.5).tolist() == [3, 0, 2]
    # min: the inner box lies wholly inside the first, so the first (lower score) is dropped by it
    assert mtcnn.nms(boxes, scores, 0.5, mode="min").tolist() == [3, 2]
    assert mtcnn.nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []
    with pytest.raises(ValueError, match="union"):
        mtcnn.nms(boxes, scores, 0.5, mode="max")


def test_haar_merges_overlapping_boxes_and_drops_low_scores(monkeypatch):
    raw = [FaceBox(100, 100, 200, 200, 8.0), FaceBox(105, 104, 205, 204, 6.0),  # the face twice
           FaceBox(300, 50, 340, 90, 2.5),                                      # texture, low score
           FaceBox(10, 10, 60, 60, 4.0)]                                         # a second face
    haar = det.HaarFaceDetector()
    monkeypatch.setattr(haar, "raw", lambda image: sorted(raw, key=lambda b: -b.score))
    assert haar(Image.new("RGB", (400, 300))) == [raw[0], raw[3]]
    loose = det.HaarFaceDetector(nms_threshold=1.0, min_score=None)
    monkeypatch.setattr(loose, "raw", lambda image: sorted(raw, key=lambda b: -b.score))
    assert len(loose(Image.new("RGB", (400, 300)))) == 4
    with pytest.raises(DataError, match="nms_mode"):
        det.HaarFaceDetector(nms_mode="max")


def test_haar_still_finds_the_astronaut(astronaut):
    faces = detect_faces(astronaut, "haar")
    assert len(faces) == 1 and faces[0].score >= 3.0
    assert _iou(faces[0].as_tuple(), (180, 60, 268, 174)) > 0.5


def test_auto_is_mtcnn_with_weights_and_haar_without(monkeypatch, tmp_path):
    assert "mtcnn" in zoo.list_components("face_detector")["face_detector"]
    assert det.default_face_detector() == "mtcnn"
    assert det.resolve_detector_name(None) == det.resolve_detector_name("auto") == "mtcnn"
    assert det.resolve_detector_name("haar") == "haar"
    monkeypatch.setattr(mtcnn, "WEIGHTS_DIR", tmp_path)
    assert det.default_face_detector() == "haar"
    with pytest.raises(DataError, match=r"MTCNN weights missing .*pnet.safetensors.*detector='haar'"):
        mtcnn.MTCNNFaceDetector()


def test_convert_facenet_pytorch_weights_round_trip(tmp_path):
    """The conversion reads .pt state dicts with weights_only=True and writes the same tensors."""
    src = tmp_path / "data"
    src.mkdir()
    for name, cls in zip(mtcnn.NETS, (mtcnn.PNet, mtcnn.RNet, mtcnn.ONet), strict=True):
        torch.manual_seed(0)
        torch.save(cls().state_dict(), src / f"{name}.pt")
    digests = mtcnn.convert_facenet_pytorch_weights(src, tmp_path / "out")
    assert digests["pnet.pt"] == hashlib.sha256((src / "pnet.pt").read_bytes()).hexdigest()
    nets = mtcnn.load_networks(tmp_path / "out")
    torch.manual_seed(0)
    assert torch.equal(nets[0].conv1.weight, mtcnn.PNet().conv1.weight)
    (src / "rnet.pt").unlink()
    with pytest.raises(DataError, match="rnet.pt not found"):
        mtcnn.convert_facenet_pytorch_weights(src, tmp_path / "out2")


def test_benchmark_annotations_and_matching_rules(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_detection", REPO / "benchmarks" / "bench_detection.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    annotations = bench.read_annotations()
    assert len(annotations) == 14 and sum(len(a["face"]) for a in annotations.values()) == 34
    faces = [(0, 0, 100, 100), (200, 0, 300, 100)]
    dets = [(5, 5, 100, 100, 0.9), (0, 0, 95, 95, 0.8),  # one face found twice: the second is false
            (400, 0, 440, 40, 0.7), (600, 0, 640, 40, 0.6)]  # the last lies in the ignore region
    m = bench.match(dets, faces, ignore=[(580, 0, 700, 100)])
    assert m == {"found": [0], "false": [1, 2], "ignored": [3], "missed": [1]}
    assert bench.main(["--scenes", str(tmp_path / "absent")]) == 0  # no photos: exits cleanly


def test_a_detector_returning_tuples_or_nan_boxes_gives_checked_boxes_or_a_clear_error():
    """A plugin's detector may return tuples, dicts or FaceBoxes; each is checked (NaN is an error naming it)."""
    image = Image.new("RGB", (40, 30))
    found = detect_faces(image, detector=lambda img: [(1, 2, 11, 12, 0.5), {"x1": 0, "y1": 0, "x2": 9, "y2": 9}])
    assert found == [FaceBox(0, 0, 9, 9, 1.0), FaceBox(1, 2, 11, 12, 0.5)]
    for bad in ([FaceBox(float("nan"), 0, 5, 5, 0.9)], [(1, 2, float("nan"), 4)], [(1, 2)], 5):
        with pytest.raises(DataError, match="face detector .* returned"):
            detect_faces(image, detector=lambda img, bad=bad: bad)
