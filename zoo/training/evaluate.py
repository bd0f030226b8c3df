"""Evaluation: metrics of a model on a dataset split, gathered over DDP ranks (``zoo.evaluate``, and the
engine's per-epoch validation). Test-time augmentation ``tta="flip"`` is reported apart.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from zoo import runtime
from zoo.data import open_dataset
from zoo.data.classes import ClassMatch, match_class_names
from zoo.data.records import SplitNotFoundError
from zoo.errors import ZooError
from zoo.inference.loading import create_for_inference
from zoo.training.metrics import DISTRIBUTION_KEY, classification_metrics, distribution_metrics
from zoo.training.settings import RecipeError, check_eval_settings

logger = logging.getLogger(__name__)
#: the split ``zoo.evaluate`` reads when none is asked for
DEFAULT_EVAL_SPLIT = "val"


class _IndexSampler(Sampler[int]):
    def __init__(self, indices: list[int]) -> None:
        self.indices = indices

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def check_dataset_matches(dataset: Any, model: nn.Module, spec: str) -> None:
    """Training: the dataset's classes must be the model's, in the model's order (each output learns the class
    at its index). A mismatch is an error whose advice gives the model the dataset's classes; it never renames
    classes to fit, which would teach an output a class under another class's name. (:func:`match_training_classes`
    first maps classes that are the model's under another spelling.)"""
    cfg = model.config
    names = list(dataset.label_names)
    override = f"'label_names={json.dumps(names)}'"
    if int(dataset.num_classes) != cfg.num_classes:
        raise ZooError(
            f"Dataset {spec!r} has {dataset.num_classes} classes ({', '.join(names)}) but the model has "
            f"{cfg.num_classes} ({', '.join(model.label_names)}); training needs one output per dataset class. "
            f"Build the model for this dataset: num_classes={dataset.num_classes} {override} (the dataset's names in "
            f"its order; the classifier is then trained for them). To measure a trained model on this data, use "
            f"zoo.evaluate / zoo-cli eval, which map the classes by name."
        )
    if cfg.label_names is not None and tuple(cfg.label_names) != tuple(names):
        first = next(i for i, (a, b) in enumerate(zip(cfg.label_names, names, strict=True)) if a != b)
        raise ZooError(
            f"Dataset {spec!r} has the classes {names} but the model {list(cfg.label_names)}; training would teach "
            f"the model's output {cfg.label_names[first]!r} the dataset's class {names[first]!r}. Train the model on "
            f"the dataset's classes in the dataset's order: {override} (this names each output after the class it "
            f"learns; the data are not relabelled), or use a model of this dataset's family. To measure a trained "
            f"model on this data, use zoo.evaluate / zoo-cli eval, which map the classes by name."
        )


def match_training_classes(dataset: Any, model: nn.Module, spec: str) -> Any:
    """Training (fine-tuning a trained head): the dataset relabelled onto the model's classes by name, as
    evaluation matches them (ignoring case, with the synonyms Anger/Angry, Happiness/Happy, ...), the head kept
    in its own order. Every dataset class must be a different model class (model classes the data lacks are
    fine); otherwise :func:`check_dataset_matches` says what to do. A model without class names, or with the
    dataset's own, trains on the dataset as it is."""
    cfg = model.config
    names = tuple(dataset.label_names)
    if cfg.label_names is None or tuple(cfg.label_names) == names:
        check_dataset_matches(dataset, model, spec)
        return dataset
    match = match_class_names(names, cfg.label_names)
    targets = [t for t in match.targets if t is not None]
    if match.unmatched or len(targets) != len(names) or len(set(targets)) != len(targets):
        check_dataset_matches(dataset, model, spec)  # raises, with the advice
    renamed = [f"{a}→{b}" for a, b in match.mapping.items() if a != b]
    logger.info("%s: the dataset's classes matched to the model's by name (%s); the model's class order is kept",
                spec, ", ".join(renamed) or "same names")
    return _MappedClasses(dataset, match)


class _MappedClasses(Dataset):
    """The samples of ``base`` whose class maps onto a model class (:class:`ClassMatch`), labelled in the model's
    order; a reference distribution (FER+ votes) is summed onto the model's classes, the dropped classes' votes
    left out (the distribution metrics renormalise)."""

    def __init__(self, base: Any, match: ClassMatch) -> None:
        lookup = torch.tensor([-1 if t is None else t for t in match.targets], dtype=torch.long)
        mapped = lookup[torch.as_tensor(base.labels).long()]
        self.base = base
        self.indices = torch.nonzero(mapped >= 0).flatten().tolist()
        self.labels = mapped[self.indices]
        self.label_names = match.model_names
        self.num_classes = len(match.model_names)
        self.project = torch.zeros(len(match.targets), self.num_classes)
        for source, target in enumerate(match.targets):
            if target is not None:
                self.project[source, target] = 1.0

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.base[self.indices[index]])
        item["label"] = int(self.labels[index])
        item["index"] = index
        for key in (DISTRIBUTION_KEY, "label_distribution"):
            if key in item:
                item[key] = torch.as_tensor(item[key]).float() @ self.project
        return item


def match_dataset_classes(dataset: Any, model: nn.Module, spec: str,
                          class_map: Mapping[str, str | None] | None = None) -> ClassMatch:
    """Evaluation: each dataset class onto a model class by name (:func:`zoo.data.classes.match_class_names`),
    or by index for a model without class names when the counts agree. Names that cannot be matched, and no
    ``class_map`` saying what they are, are an error listing both name lists."""
    names = tuple(dataset.label_names)
    cfg = model.config
    if cfg.label_names is None and class_map is None and len(names) == cfg.num_classes:
        logger.info("%s: the model has no class names; its outputs are taken as the dataset's classes in order (%s)",
                    spec, ", ".join(names))
        return ClassMatch(names, model.label_names, tuple(range(len(names))), (), ())
    match = match_class_names(names, model.label_names, class_map)
    unmatched_model = match.unmatched_model if class_map is None else ()
    if match.unmatched or unmatched_model:
        what = []
        if match.unmatched:
            what.append(f"the dataset's {', '.join(map(repr, match.unmatched))} "
                        f"{'matches' if len(match.unmatched) == 1 else 'match'} no model class")
        if unmatched_model:
            what.append(f"the model's {', '.join(map(repr, unmatched_model))} "
                        f"{'is' if len(unmatched_model) == 1 else 'are'} no class of the dataset nor an emotion the "
                        f"synonym table knows")
        example = json.dumps({name: "MODEL_CLASS" for name in (match.unmatched or names[:1])})
        raise ZooError(
            f"Dataset {spec!r} has the classes {list(names)} and the model {list(model.label_names)}: "
            f"{'; '.join(what)} (names are compared ignoring case, with the synonyms Anger/Angry, Happiness/Happy, "
            f"Sadness/Sad, Surprised/Surprise, Fearful/Fear, Disgusted/Disgust). Say which model class each dataset "
            f"class is, or null to leave it out: class_map={{...}} in zoo.evaluate, --class-map '{example}' (JSON or "
            f"a JSON file) in zoo-cli eval."
        )
    return match


def apply_class_match(dataset: Any, match: ClassMatch, spec: str) -> tuple[Any, dict[str, int]]:
    """``dataset`` relabelled in the model's order without the dropped classes, and the samples dropped per class."""
    if match.is_identity:
        return dataset, {}
    labels = torch.as_tensor(dataset.labels).long()
    dropped = {name: int((labels == i).sum()) for i, name in enumerate(match.dataset_names) if name in match.dropped}
    renamed = [f"{a}→{b}" for a, b in match.mapping.items() if b is not None and a.casefold() != b.casefold()]
    logger.info("%s: %d dataset classes onto the model's %d by name%s%s", spec, len(match.dataset_names),
                len(match.model_names), f" ({', '.join(renamed)})" if renamed else "",
                "".join(f"; left out {name} ({n} sample{'' if n == 1 else 's'}): the model has no such class"
                        for name, n in dropped.items()))
    mapped = _MappedClasses(dataset, match)
    if not len(mapped):
        raise ZooError(f"Dataset {spec!r}: no samples left after dropping {', '.join(dropped)}, the classes the model "
                       f"({', '.join(match.model_names)}) lacks; evaluate it on data with its classes.")
    return mapped, dropped


def open_eval_split(data: str, split: str | None, **options: Any) -> tuple[Any, str]:
    """The dataset at ``split``; ``None`` means ``val``, or the only split a split-folder dataset has (FER2013
    PrivateTest shipped as ``test/`` alone), said in a log line. Several splits and none of them ``val`` is the
    reader's error listing them."""
    if split is not None:
        return open_dataset(data, split, **options), split
    try:
        return open_dataset(data, DEFAULT_EVAL_SPLIT, **options), DEFAULT_EVAL_SPLIT
    except SplitNotFoundError as exc:
        if len(exc.splits) != 1:
            raise
        only = exc.splits[0]
    logger.info("%s: no split asked for and no %r split; using the only split found, %r", data, DEFAULT_EVAL_SPLIT,
                only)
    return open_dataset(data, only, **options), only


def to_device(batch: dict[str, Any], device: torch.device, memory_format=torch.contiguous_format) -> dict[str, Any]:
    moved = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device, non_blocking=True)
            if value.ndim == 4:
                value = value.contiguous(memory_format=memory_format)
        moved[key] = value
    return moved


def eval_loader(dataset: Any, batch_size: int, info: runtime.DistInfo, num_workers: int = 0) -> DataLoader:
    """Each rank takes indices ``rank::world`` (no padding, so no sample counts twice)."""
    indices = list(range(info.rank, len(dataset), info.world_size))
    return DataLoader(dataset, batch_size=batch_size, sampler=_IndexSampler(indices), num_workers=num_workers)


TTA_MODES = ("none", "flip")


@torch.no_grad()
def run_evaluation(model: nn.Module, loader: DataLoader, info: runtime.DistInfo, autocast, memory_format,
                   num_classes: int, label_names: tuple[str, ...], tta: str = "none",
                   progress: bool | None = False) -> dict[str, Any]:
    """Metrics over the whole loader, gathered from every rank.

    ``tta="flip"``: each sample's probabilities are the mean over the input and its horizontal mirror
    (face and context mirrored together); the metrics then use ``log`` of that mean as logits. ``progress``: a
    bar over the batches on stderr (None: when stderr is a terminal).
    """
    if tta not in TTA_MODES:
        raise RecipeError(f"tta must be one of {', '.join(TTA_MODES)}, got {tta!r}.")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    index, labels, logits, refs = [], [], [], []
    bar = runtime.progress_bar(progress if info.rank == 0 else False, total=len(loader), unit="batch", desc="eval")
    for batch in loader:
        bar.update(1)
        batch = to_device(batch, device, memory_format)
        with autocast():
            output = model(face=batch.get("face"), context=batch.get("context"))
            # calibrated log-probabilities (log softmax(z / T)): the argmax is the logits', the distribution
            # metrics see what predict shows
            out_logits = output.probs.log()
            if tta == "flip":
                mirrored = {k: batch[k].flip(-1) if batch.get(k) is not None else None for k in ("face", "context")}
                flipped = model(**mirrored).probs
                out_logits = ((out_logits.exp() + flipped) / 2).log()
        logits.append(out_logits.cpu())
        labels.append(batch["label"].cpu())
        index.append(batch["index"].cpu() if "index" in batch else torch.arange(len(batch["label"])))
        if DISTRIBUTION_KEY in batch:
            refs.append(batch[DISTRIBUTION_KEY].float().cpu())
    bar.close()
    model.train(was_training)
    local = (torch.cat(index), torch.cat(labels), torch.cat(logits), torch.cat(refs) if refs else None)
    parts = runtime.gather_objects(local, info)
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
    split: str | None = None,
    batch_size: int = 64,
    device: str = "auto",
    options: dict[str, Any] | None = None,
    amp: str = "none",
    _dist: runtime.DistInfo | None = None,
    tta: str = "none",
    class_map: Mapping[str, str | None] | None = None,
    progress: bool | None = False,
) -> dict[str, Any]:
    """Validation metrics of ``model`` (an EmotionModel, a preset with published weights, ``local-dir:DIR``,
    ``hf-hub:REPO``) on dataset ``data``; ``tta="flip"`` averages the prediction with the mirrored input's.

    ``split=None``: ``val``, or the dataset's only split folder. The dataset's classes are mapped onto the
    model's by name (Anger/Angry, Happiness/Happy, ...); classes the model lacks (FER+'s Contempt for a 7-class
    model) are dropped and counted in ``metrics["dropped"]``; ``class_map`` (dataset name -> model name, or None
    to drop) says what names the table cannot match. ``metrics["class_mapping"]`` records the mapping used; the
    metrics are in the model's class order. ``progress``: a bar over the batches on stderr (None: when stderr is
    a terminal)."""

    check_eval_settings(batch_size, amp)
    info = _dist or runtime.DistInfo(device=runtime.resolve_device(device))
    model_obj = create_for_inference(model, allow_untrained=True) if isinstance(model, str) else model
    model_obj = model_obj.to(info.device)
    dataset, split = open_eval_split(data, split, data_config=model_obj.config.data, train=False,
                                     streams=model_obj.config.data_streams, **(options or {}))
    match = match_dataset_classes(dataset, model_obj, data, class_map)
    dataset, dropped = apply_class_match(dataset, match, data)

    def autocast():
        return runtime.autocast(info.device, amp)

    loader = eval_loader(dataset, batch_size, info)
    metrics = run_evaluation(model_obj, loader, info, autocast, torch.contiguous_format,
                             model_obj.config.num_classes, model_obj.label_names, tta=tta, progress=progress)
    return {**metrics, "dataset": data, "split": split, "tta": tta,
            "model": model if isinstance(model, str) else None,
            "class_mapping": match.mapping, "dropped": dropped}
