"""Run settings that change the training split only: a seeded subset and synthetic label noise.

``data.train_subset: {"size": N | "fraction": f, "seed": s}`` keeps a seeded, class-stratified subset of the
training split (for CPU-sized experiments); ``data.label_noise: {"fraction": r, "seed": s, "mode":
"uniform"|"per_class", "transition": "uniform"|"proportional"}`` flips labels with
:func:`zoo.ldl.noise.flip_labels` (LDLVA's synthetic-noise experiments, Le et al., WACV 2023). The subset is taken first, the noise
is drawn on it. Both are recorded in the run directory (``train_subset.json``: the kept indices of the
original split; ``label_noise.json``: which samples were flipped, clean and noisy label) and, on resume, read
back and checked against the data, so a resumed run trains on exactly the same labels. Validation data is
never changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.ldl.noise import NOISE_MODES, TRANSITIONS, LabelNoise, LabelNoiseError, NoisyLabels, flip_labels
from zoo.training.settings import RecipeError

SUBSET_FILE = "train_subset.json"
NOISE_FILE = "label_noise.json"


class TrainSubset(torch.utils.data.Dataset):
    """Rows ``indices`` of ``dataset``; items carry ``"index"`` = position in the subset (the targets' row).

    Per-sample arrays of the dataset (tensors or numpy arrays with one row per sample, e.g. AffectNet's ``va``
    or FER+'s ``label_distribution``) are served for the kept rows only.
    """

    def __init__(self, dataset: Any, indices: torch.Tensor) -> None:
        self.dataset = dataset
        self.indices = torch.as_tensor(indices, dtype=torch.long)
        self.labels = torch.as_tensor(dataset.labels, dtype=torch.long)[self.indices]

    def __len__(self) -> int:
        return int(self.indices.numel())

    def __getattr__(self, name: str) -> Any:
        if name in ("dataset", "indices"):
            raise AttributeError(name)
        value = getattr(self.dataset, name)
        if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim and value.shape[0] == len(self.dataset):
            return value[self.indices.numpy()] if isinstance(value, np.ndarray) else value[self.indices]
        return value

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = dict(self.dataset[int(self.indices[i])])
        item["index"] = int(i)
        return item


def stratified_subset(labels: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """Sorted indices of ``size`` samples, each class kept in proportion (largest remainders), seeded."""
    labels = torch.as_tensor(labels, dtype=torch.long)
    n = labels.numel()
    counts = torch.bincount(labels)
    exact = counts.double() * size / n
    take = exact.floor().long()
    short = size - int(take.sum())
    take[torch.argsort(exact - take.double(), descending=True)[:short]] += 1
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=g)
    shuffled = labels[order]
    # rank of each shuffled sample within its class: keep it if rank < take[class]
    by_class = torch.argsort(shuffled, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty(n, dtype=torch.long)
    rank[by_class] = torch.arange(n) - starts[shuffled[by_class]]
    return order[rank < take[shuffled]].sort().values


def _subset_indices(settings: dict[str, Any], labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
    unknown = set(settings) - {"size", "fraction", "seed"}
    if unknown or ("size" in settings) == ("fraction" in settings):
        raise RecipeError(f"data.train_subset must be {{'size': N}} or {{'fraction': f}} with an optional 'seed', "
                          f"got {settings!r}.")
    n = labels.numel()
    size = int(settings["size"]) if "size" in settings else round(float(settings["fraction"]) * n)
    if not 1 <= size <= n:
        raise RecipeError(f"data.train_subset keeps {size} samples; the training split has {n} (use 1..{n}).")
    seed = int(settings.get("seed", 0))
    return stratified_subset(labels, size, seed), {"size": size, "seed": seed, "source_samples": n}


def apply_train_settings(dataset: Any, data_settings: dict[str, Any], out: Path | None, resume: bool = False,
                         write: bool = True) -> Any:
    """The training set after ``data.train_subset`` and ``data.label_noise``; records both under ``out``
    (when ``write``: the main process).

    ``resume=True`` loads the records from ``out`` and checks them instead of drawing again.
    """
    subset = data_settings.get("train_subset")
    if subset:
        labels = torch.as_tensor(dataset.labels, dtype=torch.long)
        record = out / SUBSET_FILE if out is not None else None
        if resume and record is not None and record.is_file():
            saved = json.loads(record.read_text())
            indices = torch.tensor(saved["indices"], dtype=torch.long)
            if saved.get("source_samples") != labels.numel():
                raise RecipeError(f"{record}: made for a training split of {saved.get('source_samples')} samples, "
                                  f"this one has {labels.numel()}; resume with the data the run started with.")
        else:
            indices, info = _subset_indices(dict(subset), labels)
            if record is not None and write:
                out.mkdir(parents=True, exist_ok=True)
                record.write_text(json.dumps({**info, "indices": indices.tolist()}))
        dataset = TrainSubset(dataset, indices)
    noise = data_settings.get("label_noise")
    if noise:
        dataset = NoisyLabels(dataset, _noise(dataset, dict(noise), out, resume, write))
    return dataset


def _noise(dataset: Any, settings: dict[str, Any], out: Path | None, resume: bool, write: bool) -> LabelNoise:
    unknown = set(settings) - {"fraction", "seed", "mode", "transition"}
    if unknown or "fraction" not in settings:
        raise RecipeError(f"data.label_noise needs 'fraction' (0..1) and takes 'seed', 'mode' ({'|'.join(NOISE_MODES)}),"
                          f" 'transition' ({'|'.join(TRANSITIONS)}); got {settings!r}.")
    clean = torch.as_tensor(dataset.labels, dtype=torch.long)
    record = out / NOISE_FILE if out is not None else None
    if resume and record is not None and record.is_file():
        noise = LabelNoise.load(record, clean)
        wanted = (float(settings["fraction"]), int(settings.get("seed", 0)), settings.get("mode", "uniform"),
                  settings.get("transition", "uniform"))
        if (noise.rate, noise.seed, noise.mode, noise.transition) != wanted:
            raise LabelNoiseError(f"{record} records noise {noise.rate, noise.seed, noise.mode, noise.transition}, "
                                  f"the run config asks for {wanted}; resume with the run's own settings.")
        return noise
    noise = flip_labels(clean, float(settings["fraction"]), int(dataset.num_classes), seed=int(settings.get("seed", 0)),
                        mode=settings.get("mode", "uniform"), transition=settings.get("transition", "uniform"))
    if record is not None and write:
        out.mkdir(parents=True, exist_ok=True)
        noise.save(record)
    return noise


class MixedDataset(torch.utils.data.Dataset):
    """Datasets of one class order, each repeated a number of times per epoch, as one training set.

    ``labels`` holds every row's label; items carry ``"index"`` = the row (each repeat is its own row), and
    ``provenance`` lists each part's (``dataset.provenance`` when the reader records one) with its repeat.
    """

    def __init__(self, parts: list[tuple[Any, int, str]]) -> None:
        first = parts[0][0]
        for dataset, _, spec in parts[1:]:
            if tuple(dataset.label_names) != tuple(first.label_names):
                raise RecipeError(f"data.mix: {spec!r} has the classes {list(dataset.label_names)}, the training "
                                  f"split {list(first.label_names)}; mix only datasets of the same class order.")
        self.parts = parts
        self.label_names = tuple(first.label_names)
        self.num_classes = len(self.label_names)
        sizes = [len(d) * repeat for d, repeat, _ in parts]
        self.offsets = np.cumsum([0, *sizes])
        self.labels = torch.cat([torch.as_tensor(d.labels, dtype=torch.long).repeat(repeat) for d, repeat, _ in parts])
        self.provenance = [{"spec": spec, "repeat": repeat, "samples": len(d),
                            **dict(getattr(d, "provenance", None) or {})} for d, repeat, spec in parts]

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, i: int) -> dict[str, Any]:
        part = int(np.searchsorted(self.offsets, i, side="right")) - 1
        dataset = self.parts[part][0]
        item = dict(dataset[(int(i) - int(self.offsets[part])) % len(dataset)])
        item["index"] = int(i)
        return item


def mix_training_data(dataset: Any, data_settings: dict[str, Any], spec: str, open_part: Any) -> Any:
    """The training set with ``data.repeat`` and ``data.mix`` applied (unchanged when neither is set);
    ``open_part(spec, split, options)`` opens one mixed-in dataset as a training split."""
    mix = data_settings.get("mix") or []
    repeat = int(data_settings.get("repeat") or 1)
    if not mix and repeat == 1:
        return dataset
    parts = [(dataset, repeat, spec)]
    for part in mix:
        opened = open_part(part["spec"], part.get("split", "train"), dict(part.get("options") or {}))
        parts.append((opened, int(part.get("repeat", 1)), part["spec"]))
    return MixedDataset(parts)
