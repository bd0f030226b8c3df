"""Test-only plugin for the training tests: a learnable tiny dataset, a BatchNorm-free backbone and two
target builders that exercise the engine's lifecycle (a stateful one shaped like LDL-VA, one that
produces a NaN loss). Registered with ``zoo.registry.plugins.register_plugin`` so ``--data tiny:caer`` goes through
the real dataset-spec path.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo import labels
from zoo.models.components.targets import TargetBuilder, TargetResult
from zoo.registry.hookspecs import hookimpl

PLUGIN_NAME = "tiny-training-test"
#: model arguments that make every preset tiny (face 32², context 48²)
TINY_DATA = {"face_size": [32, 32], "context_size": [48, 48], "context_resize": [56, 64]}
TINY_CNN = {"channels": [8, 8, 16, 16, 16]}
SIZES = {"train": 56, "val": 28}
_PALETTE = torch.tensor([[1.0, 0.1, 0.1], [0.1, 1.0, 0.1], [0.1, 0.1, 1.0], [1.0, 1.0, 0.1],
                         [1.0, 0.1, 1.0], [0.1, 1.0, 1.0], [1.0, 1.0, 1.0]])


def _blobs(labels_: torch.Tensor, size: tuple[int, int], generator: torch.Generator, shift: float) -> torch.Tensor:
    """N×3×H×W: grey noise plus a Gaussian blob whose colour and position depend on the class."""
    n = labels_.numel()
    h, w = size
    ys = torch.linspace(0, 1, h).view(1, h, 1)
    xs = torch.linspace(0, 1, w).view(1, 1, w)
    angle = labels_.float().view(n, 1, 1) * (2 * torch.pi / 7) + shift
    cy, cx = 0.5 + 0.25 * torch.sin(angle), 0.5 + 0.25 * torch.cos(angle)
    blob = torch.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / 0.02)  # N×H×W
    colour = _PALETTE[labels_ % 7].view(n, 3, 1, 1)
    noise = 0.3 * torch.rand(n, 3, h, w, generator=generator)
    return (0.2 + noise + blob.unsqueeze(1) * colour).clamp(0, 1)


#: the class orders a ``tiny:FAMILY`` set can use
FAMILIES: dict[str, tuple[str, ...]] = {
    "caer": labels.CAER,
    "affectnet7": labels.AFFECTNET7,
    "affectnet8": labels.AFFECTNET8,
    "fer2013": labels.FER2013,
}


class TinyBlobs(torch.utils.data.Dataset):
    """``tiny:FAMILY`` (caer, affectnet7, fer2013): class-coloured blobs, learnable in a few steps."""

    def __init__(self, path: str | None, split: str = "train", data_config=None, train: bool = False,
                 streams: str = "both", noise: float = 0.05, size: int | None = None, votes: bool = False,
                 **options: Any) -> None:
        family = path or "caer"
        if family not in FAMILIES:
            raise ValueError(f"tiny: unknown family {family!r}")
        if split not in SIZES:
            raise FileNotFoundError(f"tiny: no split {split!r}")
        self.label_names = FAMILIES[family]
        self.num_classes = len(self.label_names)
        n = size or SIZES[split]
        g = torch.Generator().manual_seed(1 if split == "train" else 2)
        self.labels = torch.arange(n) % self.num_classes
        mean = torch.tensor(data_config.mean).view(1, 3, 1, 1)
        std = torch.tensor(data_config.std).view(1, 3, 1, 1)
        self.face = (_blobs(self.labels, tuple(data_config.face_size), g, 0.0) - mean) / std
        self.context = (_blobs(self.labels, tuple(data_config.context_size), g, 1.0) - mean) / std
        self.streams, self.train, self.noise = streams, train, noise
        # valence-arousal per sample (AffectNet-style, for ldl_va's auxiliary="dataset"): class angle + jitter
        angle = 2 * torch.pi * self.labels.float() / self.num_classes
        self.va = 0.8 * torch.stack([torch.cos(angle), torch.sin(angle)], 1) + 0.1 * torch.randn(n, 2, generator=g)
        # FER+-style votes: 6 for the label, 2 for the next class, 2 for the class after
        self.votes = (6 * F.one_hot(self.labels, self.num_classes) + 2 * F.one_hot((self.labels + 1) % self.num_classes,
                      self.num_classes) + 2 * F.one_hot((self.labels + 2) % self.num_classes, self.num_classes)
                      ).float() if votes else None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item: dict[str, Any] = {"label": int(self.labels[i]), "index": i}
        if self.votes is not None:
            item["distribution"] = self.votes[i]
        if self.streams in ("both", "face"):
            item["face"] = self.face[i] + (self.noise * torch.randn_like(self.face[i]) if self.train else 0)
        if self.streams in ("both", "context"):
            item["context"] = self.context[i] + (self.noise * torch.randn_like(self.context[i]) if self.train else 0)
        return item


class NoBNNet(nn.Module):
    """Two strided convs without BatchNorm: DDP and one process see the same function of each sample."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1), nn.ReLU(), nn.Conv2d(width, 2 * width, 3, 2, 1),
                                  nn.ReLU())
        self.out_channels = 2 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class StatefulTarget(TargetBuilder):
    """LDL-VA-shaped builder: per-sample λ̂ with its own SGD, a shared temperature trained by the main
    optimiser, and class centres updated after each step (summed over ranks in ``sync_state``).

    y_i = σ(λ̂_i)·onehot + (1-σ(λ̂_i))·softmax(z_i/τ).detach(); loss = CE(y, p) + 0.01·‖f_i - c_{l_i}‖².
    """

    def __init__(self, num_classes: int, feature_dim: int, num_samples: int | None = None, lamb_init: float = 0.5,
                 lamb_lr: float = 1.0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.lamb_lr = lamb_lr
        self.lamb = nn.Parameter(torch.full((num_samples,), float(lamb_init)))
        self.log_tau = nn.Parameter(torch.zeros(()))
        self.register_buffer("centres", torch.zeros(num_classes, feature_dim))
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None
        self.prepared_with: int | None = None

    def prepare(self, dataset, model) -> None:
        self.prepared_with = len(dataset)

    def shared_parameters(self):
        return [self.log_tau]

    def make_optimizers(self):
        return [torch.optim.SGD([self.lamb], lr=self.lamb_lr, momentum=0.9)]

    def forward(self, output, batch, model=None) -> TargetResult:
        logits, feats, lab = output.logits.float(), output.features.float(), batch["label"]
        lamb = torch.sigmoid(self.lamb[batch["index"]]).unsqueeze(1)
        soft = torch.softmax(logits.detach() / self.log_tau.exp(), 1)
        y = lamb * F.one_hot(lab, self.num_classes).float() + (1 - lamb) * soft
        cls = -(y * torch.log_softmax(logits, 1)).sum(1).mean()
        disc = ((feats - self.centres[lab]) ** 2).sum(1).mean()
        onehot = F.one_hot(lab, self.num_classes).float()
        self._pending = (onehot.T @ feats.detach(), onehot.sum(0))
        return TargetResult(cls + 0.01 * disc, y.detach(), {"cls": cls.detach(), "disc": disc.detach()})

    def after_step(self) -> None:
        if not torch.distributed.is_initialized():
            self._apply_pending()

    def sync_state(self) -> None:
        sums, counts = self._pending
        torch.distributed.all_reduce(sums)
        torch.distributed.all_reduce(counts)
        self._pending = (sums, counts)
        self._apply_pending()

    @torch.no_grad()
    def _apply_pending(self) -> None:
        sums, counts = self._pending
        has = counts > 0
        means = sums / counts.clamp_min(1).unsqueeze(1)
        self.centres[has] += 0.5 * (means[has] - self.centres[has])
        self._pending = None


class NaNTarget(TargetBuilder):
    """Cross-entropy that turns into NaN from call ``nan_at`` on."""

    def __init__(self, num_classes: int, feature_dim: int, num_samples: int | None = None, nan_at: int = 3) -> None:
        super().__init__()
        self.calls, self.nan_at = 0, nan_at

    def forward(self, output, batch, model=None) -> TargetResult:
        self.calls += 1
        loss = F.cross_entropy(output.logits.float(), batch["label"])
        if self.calls >= self.nan_at:
            loss = loss * float("nan")
        return TargetResult(loss, F.one_hot(batch["label"], output.logits.shape[1]).float(), {})


class _Plugin:
    @hookimpl
    def register_datasets(self, register):
        register("tiny", TinyBlobs, "test-only class-coloured blobs")

    @hookimpl
    def register_backbones(self, register):
        register("tiny_nobn", lambda **kw: NoBNNet(**kw), "test-only BN-free CNN")

    @hookimpl
    def register_targets(self, register):
        register("tiny_stateful", StatefulTarget, "test-only LDL-VA-shaped target")
        register("tiny_nan", NaNTarget, "test-only NaN loss")


def register() -> None:
    from zoo.registry.plugins import register_plugin, unregister_plugin

    unregister_plugin(PLUGIN_NAME)
    register_plugin(_Plugin(), PLUGIN_NAME)


def unregister() -> None:
    from zoo.registry.plugins import unregister_plugin

    unregister_plugin(PLUGIN_NAME)


def tiny_overrides(**extra: Any) -> dict[str, Any]:
    """Run settings for a few quick CPU steps."""
    return {"model_args.data": dict(TINY_DATA), "epochs": 3, "batch_size": 8, "progress": False, "device": "cpu",
            "seed": 0, **extra}


def ddp_worker(rank: int, world_size: int, port: int, kwargs: dict[str, Any]) -> None:
    """One torch.multiprocessing.spawn rank of a gloo DDP training run (the env torchrun would set).

    ``port`` is a TCPStore the parent hosts (``TORCHELASTIC_USE_AGENT_STORE``: every rank is its client)."""
    import os

    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world_size), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "TORCHELASTIC_USE_AGENT_STORE": "True"})
    torch.set_num_threads(1)
    register()
    from zoo.training.engine import train

    train(**kwargs)
