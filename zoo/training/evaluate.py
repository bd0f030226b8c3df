"""Evaluation: metrics of a model on a dataset split, gathered over DDP ranks (``zoo.evaluate``, and the
engine's per-epoch validation). Test-time augmentation ``tta="flip"`` is reported apart.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from zoo import runtime as D
from zoo.data import open_dataset
from zoo.errors import ZooError
from zoo.factory import create_for_inference
from zoo.training.metrics import DISTRIBUTION_KEY, classification_metrics, distribution_metrics
from zoo.training.settings import RecipeError, check_eval_settings


class _IndexSampler(Sampler[int]):
    def __init__(self, indices: list[int]) -> None:
        self.indices = indices

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def check_dataset_matches(dataset: Any, model: nn.Module, spec: str) -> None:
    cfg = model.config
    if int(dataset.num_classes) != cfg.num_classes:
        raise ZooError(
            f"Dataset {spec!r} has {dataset.num_classes} classes ({', '.join(dataset.label_names)}) but the model "
            f"has {cfg.num_classes}; pass num_classes={dataset.num_classes} (and label_names) as overrides."
        )
    if cfg.label_names is not None and tuple(cfg.label_names) != tuple(dataset.label_names):
        raise ZooError(
            f"Dataset {spec!r} orders its classes {list(dataset.label_names)} but the model expects "
            f"{list(cfg.label_names)}; training would mislabel them. Override label_names (e.g. "
            f"'label_names={json.dumps(list(dataset.label_names))}') or use a model of this dataset's family."
        )


def to_device(batch: dict[str, Any], device: torch.device, memory_format=torch.contiguous_format) -> dict[str, Any]:
    moved = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device, non_blocking=True)
            if value.ndim == 4:
                value = value.contiguous(memory_format=memory_format)
        moved[key] = value
    return moved


def eval_loader(dataset: Any, batch_size: int, info: D.DistInfo, num_workers: int = 0) -> DataLoader:
    """Each rank takes indices ``rank::world`` (no padding, so no sample counts twice)."""
    indices = list(range(info.rank, len(dataset), info.world_size))
    return DataLoader(dataset, batch_size=batch_size, sampler=_IndexSampler(indices), num_workers=num_workers)


TTA_MODES = ("none", "flip")


@torch.no_grad()
def run_evaluation(model: nn.Module, loader: DataLoader, info: D.DistInfo, autocast, memory_format,
                   num_classes: int, label_names: tuple[str, ...], tta: str = "none") -> dict[str, Any]:
    """Metrics over the whole loader, gathered from every rank.

    ``tta="flip"``: each sample's probabilities are the mean over the input and its horizontal mirror
    (face and context mirrored together); the metrics then use ``log`` of that mean as logits.
    """
    if tta not in TTA_MODES:
        raise RecipeError(f"tta must be one of {', '.join(TTA_MODES)}, got {tta!r}.")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    index, labels, logits, refs = [], [], [], []
    for batch in loader:
        batch = to_device(batch, device, memory_format)
        with autocast():
            output = model(face=batch.get("face"), context=batch.get("context"))
            out_logits = output.logits.float()
            if tta == "flip":
                mirrored = {k: batch[k].flip(-1) if batch.get(k) is not None else None for k in ("face", "context")}
                flipped = model(**mirrored).logits.float()
                out_logits = ((out_logits.softmax(1) + flipped.softmax(1)) / 2).log()
        logits.append(out_logits.cpu())
        labels.append(batch["label"].cpu())
        index.append(batch["index"].cpu() if "index" in batch else torch.arange(len(batch["label"])))
        if DISTRIBUTION_KEY in batch:
            refs.append(batch[DISTRIBUTION_KEY].float().cpu())
    model.train(was_training)
    local = (torch.cat(index), torch.cat(labels), torch.cat(logits), torch.cat(refs) if refs else None)
    parts = D.gather_objects(local, info)
    index = torch.cat([p[0] for p in parts])
    order = index.argsort()
    labels = torch.cat([p[1] for p in parts])[order]
    logits = torch.cat([p[2] for p in parts])[order]
    metrics = classification_metrics(labels, logits.argmax(1), num_classes, label_names)
    if parts[0][3] is not None:
        metrics.update(distribution_metrics(logits.softmax(1), torch.cat([p[3] for p in parts])[order]))
    return metrics


def evaluate(
    model: Any,
    data: str,
    split: str = "val",
    batch_size: int = 64,
    device: str = "auto",
    options: dict[str, Any] | None = None,
    amp: str = "none",
    _dist: D.DistInfo | None = None,
    tta: str = "none",
) -> dict[str, Any]:
    """Validation metrics of ``model`` (an EmotionModel, a preset with published weights, ``local-dir:DIR``,
    ``hf-hub:REPO``) on dataset ``data``; ``tta="flip"`` averages the prediction with the mirrored input's."""

    check_eval_settings(batch_size, amp)
    info = _dist or D.DistInfo(device=D.resolve_device(device))
    model_obj = create_for_inference(model, allow_untrained=True) if isinstance(model, str) else model
    model_obj = model_obj.to(info.device)
    dataset = open_dataset(data, split, data_config=model_obj.config.data, train=False,
                           streams=model_obj.config.data_streams, **(options or {}))
    check_dataset_matches(dataset, model_obj, data)
    def autocast():
        return D.autocast(info.device, amp)

    loader = eval_loader(dataset, batch_size, info)
    metrics = run_evaluation(model_obj, loader, info, autocast, torch.contiguous_format,
                             model_obj.config.num_classes, model_obj.label_names, tta=tta)
    return {**metrics, "dataset": data, "split": split, "tta": tta,
            "model": model if isinstance(model, str) else None}
