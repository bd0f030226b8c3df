"""MTCNN face detection: Zhang, Zhang, Li & Qiao, *Joint Face Detection and Alignment Using Multitask
Cascaded Convolutional Networks*, IEEE Signal Processing Letters 23(10), 2016.

Three networks in a cascade (§II.A, Fig. 1 and Fig. 2 of the paper):

1. an image pyramid; **P-Net**, fully convolutional, scores every 12×12 window (stride 2) of every level and
   regresses its box; non-maximum suppression (NMS) merges the candidates;
2. **R-Net** re-scores the candidates cropped to 24×24, regresses the boxes again, NMS;
3. **O-Net** re-scores 48×48 crops, regresses the boxes a last time and gives five landmarks (eyes, nose,
   mouth corners); a last NMS with the overlap measured against the smaller box ("min" overlap).

Box regression (eq. 2 of the paper) predicts the offsets of the true box's corners relative to the window's
width and height. Between stages the boxes are made square around their centre, and windows that reach
outside the image are zero-padded (black) as in the authors' code
(kpzhang93/MTCNN_face_detection_alignment@58e8adb0c6aa3dcdde7b09ebc414f22b8c88e18a:code/codes/MTCNNv1/detect_face.m,
which also resizes each pyramid level from the previous one for large images, as done here).
Pixels enter the networks as ``(x - 127.5) / 128``.

**Weights.** The networks are those of the paper, trained by its authors and converted to PyTorch by the
``facenet-pytorch`` project (MIT licence); ``zoo/data/weights/mtcnn/`` holds them as safetensors with their
origin and licence (see the README there). The tensor names and layouts are that project's: in R-Net and
O-Net the last feature map is flattened in (W, H, C) order before the dense layer, which
:func:`_flatten_whc` reproduces.

**Speed.** P-Net over the pyramid is the cost, set by the smallest face searched for. Two limits bound it:
a minimum face size relative to the image (``min_face_fraction`` of the shorter side) and a maximum working
resolution (``min_face`` pixels counted in the image downscaled to ``max_size`` on its longer side). The
pyramid's first level is ``12 / smallest face`` of the photo; R-Net and O-Net crop each window from the
smallest pyramid level that holds it at twice their input size (or from the photo).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from zoo.data.boxes import FaceBox
from zoo.errors import DataError

#: where the converted weights ship inside the package
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights" / "mtcnn"
NETS = ("pnet", "rnet", "onet")


def _flatten_whc(x: torch.Tensor) -> torch.Tensor:
    """B×C×H×W -> B×(W·H·C): the flattening order the converted dense weights expect."""
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


def _add_stages(net: nn.Module, widths: tuple[int, ...], kernels: tuple[int, ...], pools: tuple[int, ...]) -> None:
    """``conv<i>`` (``widths[i-1] -> widths[i]`` channels, ``kernels[i-1]``²), ``prelu<i>`` and, where
    ``pools[i-1]`` is not 0, ``pool<i>`` (that size, stride 2, ceil mode): the converted weights' names."""
    for i, (cin, cout, kernel, pool) in enumerate(zip(widths[:-1], widths[1:], kernels, pools, strict=True), 1):
        setattr(net, f"conv{i}", nn.Conv2d(cin, cout, kernel))
        setattr(net, f"prelu{i}", nn.PReLU(cout))
        if pool:
            setattr(net, f"pool{i}", nn.MaxPool2d(pool, 2, ceil_mode=True))


def _run_stages(net: nn.Module, x: torch.Tensor, count: int) -> torch.Tensor:
    """``pool<i>(prelu<i>(conv<i>(x)))`` for i = 1..count (no pooling where a stage has none)."""
    for i in range(1, count + 1):
        x = getattr(net, f"prelu{i}")(getattr(net, f"conv{i}")(x))
        pool = getattr(net, f"pool{i}", None)
        if pool is not None:
            x = pool(x)
    return x


class PNet(nn.Module):
    """Proposal network (paper Fig. 2): 12×12 receptive field, stride 2; face probability and box offsets."""

    def __init__(self) -> None:
        super().__init__()
        _add_stages(self, (3, 10, 16, 32), kernels=(3, 3, 3), pools=(2, 0, 0))
        self.conv4_1 = nn.Conv2d(32, 2, 1)  # face / non-face logits
        self.conv4_2 = nn.Conv2d(32, 4, 1)  # box offsets dx1, dy1, dx2, dy2

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` B×3×H×W normalised -> (face probability B×h×w, offsets B×4×h×w)."""
        x = _run_stages(self, x, 3)
        return torch.softmax(self.conv4_1(x), dim=1)[:, 1], self.conv4_2(x)


class RNet(nn.Module):
    """Refine network (paper Fig. 2): 24×24 input; face probability and box offsets."""

    def __init__(self) -> None:
        super().__init__()
        _add_stages(self, (3, 28, 48, 64), kernels=(3, 3, 2), pools=(3, 3, 0))
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` N×3×24×24 -> (face probability N, offsets N×4)."""
        x = self.prelu4(self.dense4(_flatten_whc(_run_stages(self, x, 3))))
        return torch.softmax(self.dense5_1(x), dim=1)[:, 1], self.dense5_2(x)


class ONet(nn.Module):
    """Output network (paper Fig. 2): 48×48 input; face probability, box offsets, five landmarks."""

    def __init__(self) -> None:
        super().__init__()
        _add_stages(self, (3, 32, 64, 64, 128), kernels=(3, 3, 3, 2), pools=(3, 3, 2, 0))
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)  # x of the 5 landmarks, then their y, relative to the box

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x`` N×3×48×48 -> (face probability N, offsets N×4, landmarks N×10)."""
        x = self.prelu5(self.dense5(_flatten_whc(_run_stages(self, x, 4))))
        return torch.softmax(self.dense6_1(x), dim=1)[:, 1], self.dense6_2(x), self.dense6_3(x)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept boxes, best score first.

    The best box is kept and every other box overlapping it by more than ``threshold`` is dropped; repeat.
    Overlap is intersection over union (``mode="union"``) or over the smaller box's area (``"min"``, the
    MTCNN authors' last stage: it also removes a small box lying inside a larger one).
    """
    if mode not in ("union", "min"):
        raise ValueError(f"nms mode must be 'union' or 'min', got {mode!r}.")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    x1, y1, x2, y2 = boxes.T
    area = np.maximum(x2 - x1, 0.0) * np.maximum(y2 - y1, 0.0)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        inter = np.maximum(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0.0)
        inter *= np.maximum(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0.0)
        denom = np.minimum(area[best], area[rest]) if mode == "min" else area[best] + area[rest] - inter
        order = rest[inter <= threshold * np.maximum(denom, 1e-12)]
    return np.asarray(keep, dtype=np.int64)


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Paper eq. 2 inverted: corners moved by the predicted offsets times the box width / height."""
    w = (boxes[:, 2] - boxes[:, 0])[:, None]
    h = (boxes[:, 3] - boxes[:, 1])[:, None]
    return boxes[:, :4] + offsets * np.concatenate([w, h, w, h], axis=1)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Each box made square (side = its longer side) around its centre."""
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)


def _resize(array: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    shrink = width < array.shape[1] or height < array.shape[0]
    return cv2.resize(array, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _normalise(batch: np.ndarray) -> torch.Tensor:
    """N×H×W×3 uint8 / float -> N×3×H×W float tensor scaled as the networks were trained, (x − 127.5)/128."""
    # N×H×W×C memory viewed as N×C×H×W is channels_last: PReLU, max-pool and the small convolutions run
    # several times faster in that layout on CPU than in NCHW
    return torch.from_numpy((np.asarray(batch, dtype=np.float32) - 127.5) * 0.0078125).permute(0, 3, 1, 2)


def _crops(levels: list[np.ndarray], boxes: np.ndarray, size: int) -> np.ndarray:
    """Square windows resized to ``size``×``size``; parts outside the image are zero-padded (black).

    ``levels`` is the image and its pyramid, largest first. Each window is cut from the smallest level in which
    it still spans at least ``2 × size`` pixels (or from the image itself), so that a window covering half the
    photo costs no more than a small one.
    """
    height, width = levels[0].shape[:2]
    out = np.zeros((len(boxes), size, size, 3), dtype=np.uint8)
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    for i, box in enumerate(boxes[:, :4]):
        level = levels[0]
        for candidate in levels[1:]:
            if sides[i] * candidate.shape[1] / width < 2 * size:
                break
            level = candidate
        lh, lw = level.shape[:2]
        x1, y1, x2, y2 = (int(round(v)) for v in box * (lw / width, lh / height, lw / width, lh / height))
        w, h = x2 - x1, y2 - y1
        if w < 1 or h < 1:
            continue
        sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, lw), min(y2, lh)
        if (sx1, sy1, sx2, sy2) == (x1, y1, x2, y2):
            out[i] = _resize(level[y1:y2, x1:x2], size, size)
            continue
        window = np.zeros((h, w, 3), dtype=np.uint8)
        if sx2 > sx1 and sy2 > sy1:
            window[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = level[sy1:sy2, sx1:sx2]
        out[i] = _resize(window, size, size)
    return out


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_present(weights_dir: str | os.PathLike[str] | None = None) -> bool:
    """True when ``pnet``/``rnet``/``onet.safetensors`` are in ``weights_dir`` (default: the packaged ones)."""
    folder = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    return all((folder / f"{name}.safetensors").is_file() for name in NETS)


def convert_facenet_pytorch_weights(source_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> dict:
    """Write ``pnet/rnet/onet.safetensors`` from facenet-pytorch's ``data/{pnet,rnet,onet}.pt`` state dicts.

    The ``.pt`` files are read with ``torch.load(weights_only=True)`` (no pickle code runs), checked by loading
    them strictly into :class:`PNet` / :class:`RNet` / :class:`ONet`, and written unchanged. Returns the
    sha256 of every source file, to record where the weights came from.
    """
    from safetensors.torch import save_file

    source_dir, out_dir = Path(source_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    digests = {}
    for name, cls in zip(NETS, (PNet, RNet, ONet), strict=True):
        src = source_dir / f"{name}.pt"
        if not src.is_file():
            raise DataError(f"{src} not found: point source_dir at facenet_pytorch/data of an unpacked "
                            f"facenet-pytorch wheel (pip download --no-deps facenet-pytorch).")
        state = torch.load(src, map_location="cpu", weights_only=True)
        cls().load_state_dict(state, strict=True)
        save_file({k: v.contiguous() for k, v in state.items()}, str(out_dir / f"{name}.safetensors"))
        digests[f"{name}.pt"] = file_sha256(src)
    return digests


def load_networks(weights_dir: str | os.PathLike[str] | None = None) -> tuple[PNet, RNet, ONet]:
    """The three networks with their weights, in eval mode; a clear error when the files are missing."""
    from safetensors.torch import load_file

    folder = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    if not weights_present(folder):
        missing = [f"{n}.safetensors" for n in NETS if not (folder / f"{n}.safetensors").is_file()]
        raise DataError(
            f"MTCNN weights missing in {folder}: {', '.join(missing)}. They ship with emotion-zoo "
            f"(zoo/data/weights/mtcnn); reinstall the package, or convert them from facenet-pytorch's "
            f"pnet/rnet/onet.pt with zoo.data.mtcnn.convert_facenet_pytorch_weights(SRC, DIR) and pass "
            f"weights_dir=DIR. Without them use detector='haar'."
        )
    nets = []
    for name, cls in zip(NETS, (PNet, RNet, ONet), strict=True):
        net = cls()
        try:
            net.load_state_dict(load_file(str(folder / f"{name}.safetensors")), strict=True)
        except RuntimeError as exc:
            raise DataError(f"{folder / f'{name}.safetensors'} does not fit {cls.__name__}: {exc}") from None
        nets.append(net.eval().requires_grad_(False))
    return tuple(nets)  # type: ignore[return-value]


class MTCNNFaceDetector:
    """The MTCNN cascade as a ``face_detector``: ``detector(image) -> list[FaceBox]``, best first.

    ``score`` is O-Net's face probability (0–1). Arguments:

    * ``thresholds``: the face probability each stage needs (the authors' code: 0.6, 0.7, 0.7); the last is
      the smallest score a returned face has;
    * ``factor``: the pyramid's scale step (authors: 0.709, i.e. the area halves per level);
    * ``min_face``: smallest face searched for, in pixels of the working image; ``min_face_fraction``: the
      same relative to the working image's shorter side (the larger of the two wins);
    * ``max_size``: ``min_face`` counts pixels of the image as if downscaled to this longer side (0 = the
      original size), so a large photo is not searched for faces of 20 pixels;
    * ``nms_thresholds``: P-Net within a scale, P-Net across scales, R-Net, O-Net ("min" overlap).
    """

    def __init__(
        self,
        weights_dir: str | os.PathLike[str] | None = None,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        min_face: float = 20.0,
        min_face_fraction: float = 0.03,
        max_size: int = 1280,
        nms_thresholds: tuple[float, float, float, float] = (0.5, 0.7, 0.7, 0.7),
        device: str = "cpu",
    ) -> None:
        if not 0.0 < factor < 1.0:
            raise DataError(f"MTCNN factor must be in (0, 1), got {factor}.")
        if min_face < 12:
            raise DataError(f"MTCNN min_face must be at least 12 pixels (P-Net's window), got {min_face}.")
        if len(tuple(thresholds)) != 3 or len(tuple(nms_thresholds)) != 4:
            raise DataError("MTCNN needs 3 stage thresholds and 4 NMS thresholds.")
        self.pnet, self.rnet, self.onet = (n.to(device) for n in load_networks(weights_dir))
        self.device = torch.device(device)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.factor = float(factor)
        self.min_face = float(min_face)
        self.min_face_fraction = float(min_face_fraction)
        self.max_size = int(max_size)
        self.nms_thresholds = tuple(float(t) for t in nms_thresholds)

    def __call__(self, image: Image.Image) -> list[FaceBox]:
        boxes, _ = self.detect(image)
        return boxes

    def scales(self, height: int, width: int) -> list[float]:
        """Pyramid scales for an image: 12 / (smallest face) × factor^k while the level still fits P-Net.

        The smallest face (original pixels) is ``max(min_face / r, min_face_fraction × shorter side)`` with
        ``r = min(1, max_size / longer side)``: ``min_face`` counts pixels of the image downscaled to
        ``max_size``.
        """
        short, long = min(height, width), max(height, width)
        ratio = min(1.0, self.max_size / long) if self.max_size else 1.0
        min_face = max(self.min_face / ratio, self.min_face_fraction * short)
        scale, scales = 12.0 / min_face, []
        while short * scale >= 12:
            scales.append(scale)
            scale *= self.factor
        return scales

    @torch.inference_mode()
    def detect(self, image: Image.Image | np.ndarray) -> tuple[list[FaceBox], np.ndarray]:
        """Faces (best first) and their landmarks (N×5×2: left eye, right eye, nose, mouth corners; pixels)."""
        array = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
        if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
            raise DataError(f"MTCNN expects an RGB image (H×W×3 uint8), got {array.shape} {array.dtype}.")
        boxes, points = self._cascade(array)
        faces = [FaceBox(float(b[0]), float(b[1]), float(b[2]), float(b[3]), float(b[4]),
                         landmarks=tuple((float(x), float(y)) for x, y in p)) for b, p in zip(boxes, points, strict=True)]
        return faces, points

    @torch.inference_mode()
    def landmarks(self, image: Image.Image | np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """O-Net's five landmarks inside given boxes (N×4 x1, y1, x2, y2 pixels; e.g. a dataset's labelled
        faces or another detector's), each box made square first as the cascade does: (N×5×2 pixels, N face
        probabilities). The probability says how face-like O-Net found the window, i.e. how far to trust the
        points."""
        array = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
        if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
            raise DataError(f"MTCNN expects an RGB image (H×W×3 uint8), got {array.shape} {array.dtype}.")
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros((0, 5, 2)), np.zeros(0)
        windows = _square(boxes)
        windows = np.round(windows)  # _crops cuts whole pixels: keep the landmark frame the crop's
        prob, _, marks = (t.cpu().numpy() for t in self.onet(_normalise(_crops([array], windows, 48)).to(self.device)))
        w = (windows[:, 2] - windows[:, 0])[:, None]
        h = (windows[:, 3] - windows[:, 1])[:, None]
        points = np.stack([windows[:, :1] + marks[:, :5] * w, windows[:, 1:2] + marks[:, 5:] * h], axis=2)
        return points, prob

    def _stage1(self, image: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """P-Net over the pyramid -> (candidate boxes N×5: x1, y1, x2, y2, score, regressed and squared;
        the image and its pyramid levels, largest first)."""
        height, width = image.shape[:2]
        found, levels = [], [image]
        for scale in self.scales(height, width):
            # each level is resized from the previous one (area-averaged): cheaper than from the original
            level = _resize(levels[-1], int(np.ceil(width * scale)), int(np.ceil(height * scale)))
            if level.shape[1] < width:
                levels.append(level)
            prob, offsets = self.pnet(_normalise(level[None]).to(self.device))
            prob, offsets = prob[0].cpu().numpy(), offsets[0].cpu().numpy()
            ys, xs = np.nonzero(prob >= self.thresholds[0])
            if len(ys) == 0:
                continue
            # a P-Net output cell (y, x) sees the 12×12 window at (2x, 2y) of the level, i.e. of its own size
            sx, sy = width / level.shape[1], height / level.shape[0]
            windows = np.stack([2 * xs * sx, 2 * ys * sy, (2 * xs + 12) * sx, (2 * ys + 12) * sy], axis=1)
            cand = np.concatenate([windows, prob[ys, xs][:, None], offsets[:, ys, xs].T], axis=1)
            found.append(cand[nms(cand[:, :4], cand[:, 4], self.nms_thresholds[0])])
        if not found:
            return np.zeros((0, 5)), levels
        cand = np.concatenate(found)
        cand = cand[nms(cand[:, :4], cand[:, 4], self.nms_thresholds[1])]
        return np.concatenate([_square(_regress(cand[:, :4], cand[:, 5:9])), cand[:, 4:5]], axis=1), levels

    def _cascade(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        none = np.zeros((0, 5)), np.zeros((0, 5, 2))
        boxes, levels = self._stage1(image)
        if len(boxes) == 0:
            return none
        # stage 2: R-Net on 24×24 windows
        prob, offsets = (t.cpu().numpy() for t in self.rnet(_normalise(_crops(levels, boxes, 24)).to(self.device)))
        keep = prob >= self.thresholds[1]
        boxes, offsets = np.concatenate([boxes[keep, :4], prob[keep, None]], axis=1), offsets[keep]
        if len(boxes) == 0:
            return none
        keep = nms(boxes[:, :4], boxes[:, 4], self.nms_thresholds[2])
        boxes = np.concatenate([_square(_regress(boxes[keep], offsets[keep])), boxes[keep, 4:5]], axis=1)
        # stage 3: O-Net on 48×48 windows
        prob, offsets, marks = (t.cpu().numpy() for t in self.onet(_normalise(_crops(levels, boxes, 48)).to(self.device)))
        keep = prob >= self.thresholds[2]
        if not keep.any():
            return none
        windows, offsets, marks = boxes[keep, :4], offsets[keep], marks[keep]
        w = (windows[:, 2] - windows[:, 0])[:, None]
        h = (windows[:, 3] - windows[:, 1])[:, None]
        points = np.stack([windows[:, :1] + marks[:, :5] * w, windows[:, 1:2] + marks[:, 5:] * h], axis=2)
        boxes = np.concatenate([_regress(windows, offsets), prob[keep, None]], axis=1)
        keep = nms(boxes[:, :4], boxes[:, 4], self.nms_thresholds[3], mode="min")
        return boxes[keep], points[keep]
