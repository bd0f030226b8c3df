"""One training engine for every preset and label target (the papers' settings via :mod:`zoo.training.recipes`).

Per step: forward (AMP optional) -> ``target(output, batch, model)`` -> backward -> gradient averaging of
the target's parameters under DDP (the model's are averaged by DDP) -> optional clipping -> the main
optimiser (model + ``target.shared_parameters()``) and each ``target.make_optimizers()`` optimiser ->
``target.after_step()`` -> ``target.sync_state()`` under DDP. Every epoch: validation, the best-on-
validation model in ``OUT/best``, a line in ``OUT/metrics.jsonl`` and the resume checkpoint.

``batch_size`` is the global batch; each of the N DDP ranks takes ``batch_size / N`` samples.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from zoo import runtime
from zoo.data import open_dataset
from zoo.errors import ZooError
from zoo.factory import create
from zoo.inference.loading import create_for_inference
from zoo.models.model import build_target
from zoo.training import checkpoint as ckpt
from zoo.training.evaluate import (
    _IndexSampler,
    eval_loader,
    evaluate,
    match_training_classes,
    run_evaluation,
    to_device,
)
from zoo.training.recipes import RecipeError, apply_overrides, lr_factor, resolve_recipe
from zoo.training.rundir import (
    BEST_DIR,
    DATASETS_JSON,
    EVAL_JSON,
    LAST_CHECKPOINT,
    METRICS_LOG,
    RUN_CONFIG,
    drop_stash,
    read_metrics_log,
    read_run_config,
    restore_stash,
    stash_run_files,
)
from zoo.training.runlock import RunDirectoryError, directory_entries, run_lock
from zoo.training.settings import OPTIMIZERS, OptimizerSettings, RunSettings
from zoo.training.train_data import apply_train_settings, mix_training_data
from zoo.weights.files import check_weight_values, key_report

logger = logging.getLogger(__name__)

#: settings that may change when a run is resumed
RESUMABLE_CHANGES = RunSettings.RESUMABLE


class NonFiniteLossError(ZooError, FloatingPointError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    out: Path
    best_epoch: int | None
    best_metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False
    eval_metrics: dict[str, Any] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(enabled: bool) -> None:
    if not enabled and not torch.are_deterministic_algorithms_enabled():
        return
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = False


def build_optimizer(settings: OptimizerSettings, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """The torch optimiser of ``optimizer.*`` (name and keyword arguments checked by the settings)."""
    kwargs = settings.kwargs()
    name = settings.name.lower()
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    try:
        return OPTIMIZERS[name](params, **kwargs)
    except TypeError as exc:
        raise RecipeError(f"optimizer {name!r}: {exc}; check the optimizer.* settings.") from exc


def init_from_trained(model: nn.Module, name: str) -> None:
    """Load every weight of the trained model ``name`` into ``model`` (``init_weights``: fine-tuning); its
    tensors must match the model's keys and shapes exactly."""
    source = create_for_inference(name).state_dict()
    target = model.state_dict()
    report = key_report(source, target, what="model")
    if report:
        raise RecipeError(f"init_weights={name!r} does not fit the model being trained ({report}); start from a "
                          f"model of the same architecture and classes, or use backbone_pretrained= for the encoder.")
    check_weight_values(source, target, name)
    model.load_state_dict(source, strict=True)
    logger.info("initialised every weight from %s", name)


def init_head_from_face_model(model: nn.Module, name: str) -> None:
    """Start ``model``'s classifier from the face-only model ``name``'s (``head_init``), so training begins at
    that model's predictions: a face-only model takes the classifier as it is; a two-stream model with
    ``fusion="concat"`` or ``"adaptive"`` and no hidden layer gets the face model's weights on the face half of
    the fused vector, divided by the factor the fusion's ``start_from_face`` leaves on ``v_f`` (adaptive fusion:
    1/2, Eq. 5 of Lee et al., ICCV 2019, at equal scores), and zeros on the context half."""
    config = model.config
    source = create_for_inference(name)
    source_layers = [m for m in source.classifier.modules() if isinstance(m, nn.Linear)]
    if source.config.streams != "face" or len(source_layers) != 1:
        raise RecipeError(f"head_init={name!r} must be a face-only model with a single linear classifier; it has "
                          f"streams={source.config.streams!r} and {len(source_layers)} linear layers.")
    weight, bias = source_layers[0].weight.detach(), source_layers[0].bias.detach()
    face_dim = weight.shape[1]
    if config.head_hidden or config.num_classes != weight.shape[0]:
        raise RecipeError(f"head_init={name!r} needs a model with no hidden classifier layer (head_hidden=null) "
                          f"and its {weight.shape[0]} classes; this one has head_hidden={config.head_hidden} and "
                          f"{config.num_classes} classes.")
    output = [m for m in model.classifier.modules() if isinstance(m, nn.Linear)][-1]
    start_from_face = getattr(getattr(model, "fusion", None), "start_from_face", None)
    if config.streams == "both" and start_from_face is not None:
        if config.feature_norm:
            raise RecipeError("head_init cannot start a model with feature_norm=true at its face model's predictions "
                              "(the BatchNorm rescales the face vector); set feature_norm=false.")
    elif config.streams != "face":
        raise RecipeError(f"head_init works for face-only models and two-stream models whose fusion can start from "
                          f"the face (start_from_face: 'concat', 'adaptive'); this one has streams={config.streams!r}, "
                          f"fusion={config.fusion!r}.")
    if int(model.face_encoder.out_channels) != face_dim:
        raise RecipeError(f"head_init={name!r}'s classifier reads {face_dim} face features; this model's face "
                          f"encoder gives {int(model.face_encoder.out_channels)}.")
    scale = 1.0 if config.streams == "face" else 1.0 / start_from_face()
    with torch.no_grad():
        output.weight.zero_()
        output.weight[:, :face_dim] = weight * scale
        output.bias.copy_(bias)
    logger.info("classifier started from %s's (face half ×%g, context half zero)", name, scale)


def resolve_run_config(
    model_or_recipe: str | None,
    data: str | None = None,
    val: str | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
    recipe: str | None = None,
    stored: dict[str, Any] | None = None,
) -> RunSettings:
    """The checked settings of a run: a recipe (or the ``stored`` run config of a resumed run), then the
    overrides, then ``data`` / ``val``."""
    if model_or_recipe is None:
        if stored is None:
            raise RecipeError("Name a model or recipe to train (e.g. `zoo-cli train glamor_net --data SPEC`), "
                              "or resume a run with --resume --out DIR.")
        config = json.loads(json.dumps(stored))
    else:
        config = resolve_recipe(model_or_recipe, recipe)
    settings = RunSettings.from_dict(apply_overrides(config, overrides))
    if data is not None:
        settings.dataset.train = data
    if val is not None:
        settings.dataset.val = val
    if not settings.dataset.train:
        raise RecipeError("No training data: pass --data SPEC (e.g. caer_s:/data/CAER-S, or synth_caer).")
    return settings


def train(
    model_or_recipe: str | None = None,
    data: str | None = None,
    val: str | None = None,
    out: str | os.PathLike | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
    recipe: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> TrainResult:
    """Train a model from a recipe or preset (``zoo-cli train``); see :mod:`zoo.training.recipes` for settings.

    ``out`` defaults to ``runs/<recipe or model>``. The run holds an exclusive lock on ``out`` while it runs
    (:mod:`zoo.training.runlock`). ``resume=True`` continues from ``OUT/checkpoints/last``; otherwise a
    non-empty ``out`` is refused unless ``overwrite=True``, which removes the previous run's files once the new
    run has set up (model, data, checks): until then they are only moved aside, and put back if it cannot start.
    """
    if resume and overwrite:
        raise ZooError("--resume continues the run in --out and --overwrite replaces it; pass only one of them.")
    out = Path(out).expanduser() if out is not None else None
    config = None
    if resume:
        if out is None:
            raise ckpt.CheckpointError("--resume needs --out DIR: the run directory to continue.")
        if not out.is_dir():
            raise ckpt.CheckpointError(f"--resume: the run directory {out} does not exist; check --out, or train "
                                       f"without --resume to start a new run there.")
    if out is None:
        config = resolve_run_config(model_or_recipe, data, val, overrides, recipe)
        out = Path("runs") / str(config.recipe if config.recipe != "default" else config.model).replace(
            ":", "_").replace("/", "_")
    main_process = int(os.environ.get("RANK", "0")) == 0
    # a run that fails before its first epoch leaves no directory it created: nothing in it would be a result
    fresh = main_process and not out.exists()
    runs: list[_Run] = []
    try:
        return _train_locked(out, main_process, model_or_recipe, data, val, overrides, recipe, resume, overwrite,
                             config, runs)
    except BaseException:
        if fresh and out.is_dir() and not any(r.started for r in runs):
            shutil.rmtree(out, ignore_errors=True)
        raise


def _train_locked(out: Path, main_process: bool, model_or_recipe: str | None, data: str | None, val: str | None,
                  overrides: dict[str, Any] | list[str] | None, recipe: str | None, resume: bool, overwrite: bool,
                  config: RunSettings | None, runs: list[_Run]) -> TrainResult:
    """:func:`train` under the run directory's lock; the run made is appended to ``runs``."""
    with run_lock(out, enabled=main_process):
        stored = read_run_config(out / RUN_CONFIG) if resume and (out / RUN_CONFIG).exists() else None
        if config is None:
            config = resolve_run_config(model_or_recipe, data, val, overrides, recipe, stored)
        checkpoint_dir = out / LAST_CHECKPOINT
        found = ckpt.find_checkpoint(checkpoint_dir)
        if resume:
            if found is None:
                raise ckpt.CheckpointError(f"--resume: {checkpoint_dir} does not exist; train without --resume.")
            if stored is not None:
                changed = config.changed_on_resume(stored)
                if changed:
                    raise ckpt.CheckpointError(
                        f"--resume: settings {', '.join(changed)} differ from {out / RUN_CONFIG}; a resumed run "
                        f"must use the same config (only {', '.join(RESUMABLE_CHANGES)} may change)."
                    )
        else:
            entries = directory_entries(out)
            if entries and not overwrite:
                what = f"a training run ({found})" if found is not None else f"{', '.join(entries[:6])}" + (
                    f", … ({len(entries)} entries)" if len(entries) > 6 else "")
                raise RunDirectoryError(
                    f"{out} is not empty: it holds {what}. Pass --resume to continue the run in it, --overwrite "
                    f"(overwrite=True) to replace it, or choose another --out."
                )
            _check_out_is_no_input(out, config)
        # --overwrite removes the previous run's files only once the new run has built its model, opened and
        # checked its data (zoo.outputs: every check that can fail comes before anything is deleted)
        clear = not resume and bool(directory_entries(out)) and main_process
        runs.append(_Run(config, out, found if resume else None, clear=clear))
        return runs[-1].fit()


def _check_out_is_no_input(out: Path, config: RunSettings) -> None:
    """A run directory may not be, or lie inside, a dataset's folder or file that the run reads."""
    from zoo.outputs import OutputError, is_inside

    for spec in (config.dataset.train, config.dataset.val):
        _, _, location = str(spec or "").partition(":")
        if location and Path(location).expanduser().exists() and is_inside(out, Path(location).expanduser()):
            raise OutputError(f"--out {out}: this is the dataset {spec!r} or lies inside it; a run directory there "
                              f"would mix run files into the data. Choose another --out.")


class _Run:
    """One training run: :meth:`fit` sets it up (:meth:`_setup`: process group, model, data, optimisers, the
    state restored from a checkpoint), trains and evaluates. The state it holds, all set by :meth:`_setup`:"""

    info: runtime.DistInfo
    device: torch.device
    model: nn.Module
    #: the model the forward pass runs (``model``, wrapped by DDP and/or ``torch.compile``)
    forward_model: nn.Module
    memory_format: torch.memory_format
    #: the label target (loss, and for LDL-VA its own state and optimisers)
    target: Any
    train_ds: Any
    #: ``train_ds`` as the target wraps it for the loader
    train_data: Any
    val_spec: str
    val_ds: Any
    rank_batch: int
    steps_per_epoch: int
    main_params: list[Any]
    optimizer: torch.optim.Optimizer
    base_lrs: list[float]
    target_optimizers: list[torch.optim.Optimizer]
    target_params: list[nn.Parameter]
    scaler: torch.amp.GradScaler
    #: progress, saved in and restored from each checkpoint
    epoch: int
    step_in_epoch: int
    global_step: int
    best_value: float | None
    #: the epoch whose weights OUT/best holds (the last one under ``keep="last"``)
    best_epoch: int | None
    bad_epochs: int
    partial: dict[str, Any] | None
    history: list[dict[str, Any]]
    writer: Any

    def __init__(self, config: RunSettings, out: Path, resume_from: Path | None, clear: bool = False) -> None:
        self.config = config
        self.out = out
        self.resume_from = resume_from
        self.clear = clear  # remove the previous run's files once the setup (model, data, checks) has passed
        self._stash: Path | None = None
        #: set when the set-up succeeded and the run began writing its results
        self.started = False

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        cfg = self.config
        self.info = runtime.setup(cfg.device)
        self.device = self.info.device
        if self.config.amp == "fp16" and self.device.type != "cuda":
            raise RecipeError("amp=fp16 needs a CUDA device; use amp=bf16 or amp=none on CPU.")
        set_deterministic(bool(cfg.deterministic))
        seed_everything(int(cfg.seed))
        model = create(cfg.model, backbone_pretrained=cfg.backbone_pretrained or False, **cfg.model_args)
        if cfg.init_weights and self.resume_from is None:
            init_from_trained(model, cfg.init_weights)
        if cfg.head_init and self.resume_from is None:
            init_head_from_face_model(model, cfg.head_init)
        streams = model.config.data_streams
        data_cfg = model.config.data
        options = dict(cfg.dataset.options or {})
        spec = cfg.dataset.train
        self.train_ds = open_dataset(spec, cfg.dataset.train_split, data_config=data_cfg, train=True,
                                     streams=streams, face_augment=cfg.augmentation.face,
                                     context_augment=cfg.augmentation.context, **options)
        self.train_ds = apply_train_settings(self.train_ds, cfg.dataset.to_dict(), self.out,
                                             resume=self.resume_from is not None,
                                             write=self.info.is_main)

        def open_part(part_spec: str, split: str, part_options: dict[str, Any]) -> Any:
            return open_dataset(part_spec, split, data_config=data_cfg, train=True, streams=streams,
                                face_augment=cfg.augmentation.face, context_augment=cfg.augmentation.context,
                                **part_options)

        self.train_ds = mix_training_data(self.train_ds, cfg.dataset.to_dict(), spec, open_part)
        self.val_spec = cfg.dataset.val or spec
        self.val_ds = open_dataset(self.val_spec, cfg.dataset.val_split, data_config=data_cfg, train=False,
                                   streams=streams, **options)
        self.train_ds = match_training_classes(self.train_ds, model, spec)
        self.val_ds = match_training_classes(self.val_ds, model, self.val_spec)
        if model.config.label_names is None:
            model.config.label_names = tuple(self.train_ds.label_names)
        target_extra = {}
        targs = model.config.target_args
        if targs.get("class_weights") == "balanced" and "class_counts" not in targs:
            counts = torch.bincount(torch.as_tensor(self.train_ds.labels).long(), minlength=model.config.num_classes)
            target_extra["class_counts"] = counts.tolist()
        self.target = build_target(model.config, model.feature_dim, num_samples=len(self.train_ds),
                                   **target_extra)
        # same initial weights on every rank; from here on each rank draws its own dropout / augmentation
        seed_everything(int(cfg.seed) + self.info.rank)
        memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.memory_format = memory_format
        self.model = model.to(self.device, memory_format=memory_format)
        self.target = self.target.to(self.device)
        self.target.prepare(self.train_ds, self.model)
        self.train_data = self.target.wrap_dataset(self.train_ds)

        world = self.info.world_size
        if int(cfg.batch_size) % world:
            raise RecipeError(f"batch_size {cfg.batch_size} is the global batch and must divide evenly over "
                              f"{world} processes.")
        self.rank_batch = int(cfg.batch_size) // world
        per_rank = math.ceil(len(self.train_data) / world)  # DistributedSampler pads to equal shares
        self.steps_per_epoch = per_rank // self.rank_batch if cfg.drop_last else math.ceil(per_rank / self.rank_batch)
        if cfg.max_steps_per_epoch:
            self.steps_per_epoch = min(self.steps_per_epoch, int(cfg.max_steps_per_epoch))

        seen: set[int] = set()
        params = []
        for p in [*self.model.parameters(), *self.target.shared_parameters()]:
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                params.append(p)
        self.main_params = params
        self.optimizer = build_optimizer(cfg.optimizer, params)
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.target_optimizers = list(self.target.make_optimizers())
        self.target_params = [p for p in self.target.parameters() if p.requires_grad]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.amp == "fp16")

        self.forward_model = self.model
        if self.info.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.forward_model = DDP(self.model, device_ids=[self.device] if self.device.type == "cuda" else None)
        if cfg.compile:
            self.forward_model = torch.compile(self.forward_model)

        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.best_value = None
        self.best_epoch = None
        self.bad_epochs = 0
        self.partial = None
        self.history = []
        self.writer = None

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors.update({f"target.{k}": v for k, v in self.target.state_dict().items()})
        opt_meta = []
        for i, opt in enumerate([self.optimizer, *self.target_optimizers]):
            t, m = ckpt.flatten_optimizer(opt.state_dict(), f"optim.{i}")
            tensors.update(t)
            opt_meta.append(m)
        rng_tensors, rng_meta = ckpt.rng_state()
        tensors.update(rng_tensors)
        meta = {
            "epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self.global_step,
            "best_value": self.best_value, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
            "partial_epoch": self.partial, "optimizers": opt_meta, "rng": rng_meta, "scaler": self.scaler.state_dict(),
            "config": self.config.to_dict(),
        }
        return tensors, meta

    def _save_checkpoint(self) -> None:
        tensors, meta = self._checkpoint_state()  # every rank: RNG states are per process
        if self.info.is_main:
            ckpt.save_checkpoint(self.out / LAST_CHECKPOINT, tensors, meta)
        runtime.barrier(self.info)

    def _load_checkpoint(self, directory: Path) -> None:
        tensors, meta = ckpt.load_checkpoint(directory)
        try:
            self.model.load_state_dict(ckpt.split_prefix(tensors, "model"))
            self.target.load_state_dict(ckpt.split_prefix(tensors, "target"))
            optimizers = [self.optimizer, *self.target_optimizers]
            if len(meta["optimizers"]) != len(optimizers):
                raise ValueError(f"{len(meta['optimizers'])} optimisers saved, {len(optimizers)} in this run")
            for i, (opt, m) in enumerate(zip(optimizers, meta["optimizers"], strict=True)):
                opt.load_state_dict(ckpt.unflatten_optimizer(tensors, m, f"optim.{i}"))
            ckpt.set_rng_state(tensors, meta["rng"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise ckpt.CheckpointError(
                f"{directory}: does not match this run ({exc}). Delete it to start afresh, or resume with the "
                f"settings the run was started with ({self.out / RUN_CONFIG})."
            ) from exc
        if meta.get("scaler"):
            self.scaler.load_state_dict(meta["scaler"])
        epochs = int(self.config.epochs)
        for key in ("epoch", "step_in_epoch", "global_step"):
            value = meta.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ckpt.CheckpointError(f"{directory / ckpt.META_NAME}: {key} must be an integer >= 0, got "
                                           f"{value!r}; the checkpoint is damaged. Delete it to start afresh.")
        if meta["epoch"] > epochs or (meta["epoch"] == epochs and meta["step_in_epoch"] > 0):
            raise ckpt.CheckpointError(
                f"{directory / ckpt.META_NAME}: the checkpoint is at epoch {meta['epoch']} (step "
                f"{meta['step_in_epoch']}), past the end of this run (epochs={epochs}); nothing would be trained. "
                f"Resume with epochs={meta['epoch'] + 1} or more, or check the checkpoint.")
        if meta["epoch"] == epochs:
            logger.warning("--resume: %s holds a finished run (epoch %d of %d); nothing is left to train. Resume "
                           "with epochs=N > %d to train on.", directory, epochs, epochs, epochs)
        self.epoch, self.step_in_epoch, self.global_step = meta["epoch"], meta["step_in_epoch"], meta["global_step"]
        self.best_value, self.best_epoch, self.bad_epochs = meta["best_value"], meta["best_epoch"], meta["bad_epochs"]
        self.partial = meta.get("partial_epoch")
        log = self.out / METRICS_LOG
        if log.exists():
            lines = read_metrics_log(log)
            self.history = [h for h in lines if h["epoch"] <= self.epoch]
            if self.info.is_main:
                log.write_text("".join(json.dumps(h) + "\n" for h in self.history))

    # ------------------------------------------------------------------ loops
    def _train_loader(self, epoch: int, skip_batches: int) -> DataLoader:
        cfg = self.config
        sampler = DistributedSampler(self.train_data, num_replicas=self.info.world_size, rank=self.info.rank,
                                     shuffle=True, seed=int(cfg.seed), drop_last=bool(cfg.drop_last))
        sampler.set_epoch(epoch)
        indices = list(sampler)[skip_batches * self.rank_batch:]
        generator = torch.Generator().manual_seed(int(cfg.seed) * 100_003 + epoch * 1_009 + self.info.rank)
        return DataLoader(self.train_data, batch_size=self.rank_batch, sampler=_IndexSampler(indices),
                          num_workers=int(cfg.num_workers), drop_last=bool(cfg.drop_last),
                          generator=generator, pin_memory=self.device.type == "cuda")

    def _autocast(self):
        return runtime.autocast(self.device, self.config.amp)

    def _set_lr(self, epoch: int) -> float:
        schedule = self.config.schedule
        factor = lr_factor(schedule.to_dict(), epoch, int(self.config.epochs))
        min_lr = float(schedule.min_lr or 0.0)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = max(base * factor, min_lr)
        return self.optimizer.param_groups[0]["lr"]

    def _train_epoch(self, epoch: int) -> dict[str, Any]:
        cfg = self.config
        self.model.train()
        self.target.train()
        lr = self._set_lr(epoch)
        start_step = self.step_in_epoch
        loader = self._train_loader(epoch, start_step)
        # running sums of a partly done epoch come back from the checkpoint, so its logged means are exact
        partial = self.partial or {"total": 0.0, "terms": {}, "count": 0}
        total = torch.tensor(partial["total"], dtype=torch.float64, device=self.device)
        terms: dict[str, Any] = {k: torch.tensor(v, dtype=torch.float64, device=self.device)
                                 for k, v in partial["terms"].items()}
        count = int(partial["count"])
        self.partial = None
        bar = _progress(self.steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}",
                        enabled=bool(cfg.progress) and self.info.is_main, initial=start_step)
        every = int(cfg.checkpoint_every or 0)
        for batch in loader:
            if self.step_in_epoch >= self.steps_per_epoch:
                break
            loss, step_terms = self._train_step(batch, epoch)
            total += loss.double()
            for k, v in step_terms.items():
                terms[k] = terms.get(k, 0.0) + v.detach().double()
            count += 1
            self.step_in_epoch += 1
            self.global_step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{total.item() / count:.4f}", lr=f"{lr:.2e}")
            if every and self.global_step % every == 0 and self.step_in_epoch < self.steps_per_epoch:
                self.partial = {"total": float(total), "terms": {k: float(v) for k, v in terms.items()},
                                "count": count}
                self._save_checkpoint()
                self.partial = None
        if bar is not None:
            bar.close()
        count_t = torch.tensor(float(max(count, 1)), dtype=torch.float64, device=self.device)
        mean_loss = runtime.all_reduce_mean(total / count_t, self.info)
        result = {"train_loss": float(mean_loss), "lr": lr}
        for k, v in terms.items():
            result[f"train_{k}"] = float(runtime.all_reduce_mean(torch.as_tensor(v, device=self.device) / count_t, self.info))
        return result

    def _train_step(self, batch: dict[str, Any], epoch: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        batch = to_device(batch, self.device, self.memory_format)
        with self._autocast():
            output = self.forward_model(face=batch.get("face"), context=batch.get("context"))
            result = self.target(output, batch, self.model)
        loss = result.loss
        bad = torch.tensor(0.0 if torch.isfinite(loss.detach()).all() else 1.0, device=self.device)
        if float(runtime.all_reduce_sum(bad, self.info)) > 0:
            last = ckpt.find_checkpoint(self.out / LAST_CHECKPOINT)
            raise NonFiniteLossError(
                f"The training loss became {loss.item()} at epoch {epoch + 1}, step {self.step_in_epoch + 1} "
                f"(global step {self.global_step + 1}); the run stopped without taking that step. "
                + (f"The last good checkpoint is {last} (resume with --resume after changing the settings). "
                   if last else "No checkpoint had been written yet. ")
                + "Lower the learning rate (optimizer.lr=...), set grad_clip=1.0, or use amp=none."
            )
        for opt in (self.optimizer, *self.target_optimizers):
            opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        runtime.average_gradients(self.target_params, self.info)
        if self.config.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.main_params, float(self.config.grad_clip))
        self.scaler.step(self.optimizer)
        for opt in self.target_optimizers:
            self.scaler.step(opt)
        self.scaler.update()
        self.target.after_step()
        if self.info.enabled:
            self.target.sync_state()
        return loss.detach(), result.terms

    # ------------------------------------------------------------------ main
    def fit(self) -> TrainResult:
        threads_before = torch.get_num_threads()
        if self.config.threads is not None:
            torch.set_num_threads(runtime.cpu_threads(self.config.threads))
        try:
            try:
                if self.clear:  # --overwrite: the previous run's files move aside, deleted once the setup passed
                    self._stash = stash_run_files(self.out)
                self._setup()
            except BaseException:
                restore_stash(self.out, self._stash)  # the run could not start: the previous one stays whole
                raise
            drop_stash(self._stash)
            try:
                return self._fit()
            finally:
                if self.writer is not None:
                    self.writer.close()
                runtime.teardown(self.info)
        finally:
            torch.set_num_threads(threads_before)

    def _kept_model(self) -> nn.Module:
        """The model ``OUT/best`` holds, without rebuilding it from its saved config: a copy of this run's model
        (in the default memory format, as loaded from disk), with the kept epoch's weights read back from
        ``OUT/best`` when a later epoch changed them."""
        import copy

        model = copy.deepcopy(self.model).to(memory_format=torch.contiguous_format)
        if self.best_epoch != self.epoch:
            from safetensors.torch import load_file

            from zoo.weights.files import WEIGHTS_NAME

            model.load_state_dict(load_file(str(self.out / BEST_DIR / WEIGHTS_NAME)), strict=True)
        return model

    def _fit(self) -> TrainResult:
        cfg = self.config
        out = self.out
        self.started = True
        if self.info.is_main:
            out.mkdir(parents=True, exist_ok=True)
            (out / RUN_CONFIG).write_text(cfg.to_json())
            (out / DATASETS_JSON).write_text(json.dumps(
                {"train": getattr(self.train_ds, "provenance", None), "val": getattr(self.val_ds, "provenance", None)},
                indent=2) + "\n")
            if self.resume_from is None and (out / METRICS_LOG).exists():
                (out / METRICS_LOG).unlink()
        if self.resume_from is not None:
            self._load_checkpoint(self.resume_from)
        if cfg.tensorboard and self.info.is_main:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as exc:
                raise ZooError("tensorboard=true needs the tensorboard package: pip install tensorboard") from exc
            self.writer = SummaryWriter(str(out / "tensorboard"))
        monitor = cfg.monitor
        patience = cfg.early_stopping
        stopped_early = False
        val_loader = eval_loader(self.val_ds, int(cfg.eval_batch_size or cfg.batch_size), self.info,
                                 int(cfg.num_workers))
        while self.epoch < int(cfg.epochs):
            if patience is not None and self.bad_epochs >= int(patience):
                stopped_early = True
                break
            epoch = self.epoch
            started = time.time()
            train_stats = self._train_epoch(epoch)
            val = run_evaluation(self.model, val_loader, self.info, self._autocast, self.memory_format,
                                 self.model.config.num_classes, self.model.label_names)
            if monitor not in val:
                raise RecipeError(f"monitor {monitor!r} is not a validation metric; use one of "
                                  f"{', '.join(k for k, v in val.items() if isinstance(v, float))}.")
            value = float(val[monitor])
            improved = self.best_value is None or value > self.best_value
            if improved:
                self.best_value, self.bad_epochs = value, 0
            else:
                self.bad_epochs += 1
            if improved or cfg.keep == "last":
                self.best_epoch = epoch + 1  # the epoch whose weights OUT/best holds
                if self.info.is_main:
                    from zoo.weights.files import save_pretrained

                    save_pretrained(self.model, out / BEST_DIR)
            line = {"epoch": epoch + 1, "global_step": self.global_step, **train_stats, "val": val,
                    "best": improved, "time_s": round(time.time() - started, 3)}
            self.history.append(line)
            if self.info.is_main:
                with open(out / METRICS_LOG, "a") as fh:
                    fh.write(json.dumps(line) + "\n")
                if self.writer is not None:
                    self.writer.add_scalar("train/loss", train_stats["train_loss"], epoch + 1)
                    self.writer.add_scalar("train/lr", train_stats["lr"], epoch + 1)
                    for k in ("accuracy", "balanced_accuracy", "macro_f1"):
                        self.writer.add_scalar(f"val/{k}", val[k], epoch + 1)
                if cfg.progress:
                    logger.info("epoch %d: loss %.4f  val %s %.4f%s", epoch + 1, train_stats["train_loss"], monitor,
                                value, "  (best)" if improved else "")
            self.epoch, self.step_in_epoch = epoch + 1, 0
            self._save_checkpoint()
        eval_metrics: dict[str, Any] = {}
        if self.info.is_main and (out / BEST_DIR).exists():
            eval_metrics = evaluate(self._kept_model(), self.val_spec,
                                    split=cfg.dataset.val_split, batch_size=int(cfg.eval_batch_size or
                                                                                   cfg.batch_size),
                                    device=str(self.device), options=cfg.dataset.options,
                                    amp=cfg.amp, _dist=runtime.DistInfo(device=self.device))
            eval_metrics["model"] = f"local-dir:{out / BEST_DIR}"  # the model these metrics are of
            eval_metrics["best_epoch"] = self.best_epoch
            (out / EVAL_JSON).write_text(json.dumps(eval_metrics, indent=2) + "\n")
        runtime.barrier(self.info)
        best = next((h["val"] for h in self.history if h["epoch"] == self.best_epoch), {})
        return TrainResult(out, self.best_epoch, best, self.history, stopped_early, eval_metrics)


def _progress(total: int, desc: str, enabled: bool, initial: int = 0):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, initial=initial, leave=False, dynamic_ncols=True)
