"""LDL-VA step cost against a one-hot step (``memory_bank`` and ``online``), the builder's own cost with
AffectNet-sized state, and the exact KNN build time (docs/label-targets.md).

A "step" is forward, target, backward, every optimiser step and ``after_step``: what the training engine
does. On CPU the time is the process's CPU time (``time.process_time``), which other processes' load
disturbs far less than wall time; on CUDA it is synchronised wall time. The online step includes the K
neighbour forwards; loading the neighbours' images (K× the data loading) is *not* timed, so the online
figure is a lower bound.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch

from zoo.ldl.knn import nearest_neighbors
from zoo.ldl.similarity import local_similarity
from zoo.ldl.target import LDLVATarget
from zoo.models.model import EmotionOutput


@dataclass
class LDLBenchConfig:
    backbone: str = "resnet18"
    size: int = 64
    batch: int = 32
    k: int = 8
    samples: int = 512
    steps: int = 9
    warmup: int = 2
    device: str = "cpu"
    backbone_args: dict[str, Any] | None = None


class RandomFaces(torch.utils.data.Dataset):
    """Random face tensors with labels and VA points (seeded per index)."""

    def __init__(self, n: int, size: int, num_classes: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.size, self.num_classes = size, num_classes
        self.labels = torch.randint(0, num_classes, (n,), generator=g)
        self.va = torch.rand(n, 2, generator=g) * 2 - 1
        self.label_names = tuple(f"c{i}" for i in range(num_classes))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(i)
        return {"face": torch.randn(3, self.size, self.size, generator=g), "label": int(self.labels[i]), "index": i}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class StepSetup:
    """One model + target builder + optimisers + pre-collated batches."""

    def __init__(self, cfg: LDLBenchConfig, target_name: str, mode: str | None) -> None:
        import zoo

        self.device = torch.device(cfg.device)
        torch.manual_seed(0)
        self.model = zoo.create(
            streams="face", backbone=cfg.backbone, backbone_args=cfg.backbone_args or {}, head_hidden=None,
            head_dropout=0.0, num_classes=7, data={"face_size": (cfg.size, cfg.size)}, target=target_name,
        ).to(self.device)
        ds = RandomFaces(cfg.samples, cfg.size, 7)
        extra = ({"neighbor_mode": mode, "num_neighbors": cfg.k, "batch_size": cfg.batch}
                 if target_name == "ldl_va" else {})
        self.target = zoo.build_target(self.model.config, self.model.feature_dim, num_samples=len(ds), **extra)
        self.target.to(self.device).prepare(ds, self.model)
        wrapped = self.target.wrap_dataset(ds)
        params = list(self.model.parameters()) + list(self.target.shared_parameters())
        self.opt = torch.optim.Adam(params, lr=1e-4)
        self.opts = self.target.make_optimizers()
        g = torch.Generator().manual_seed(1)
        self.batches = []
        for _ in range(4):
            order = torch.randperm(len(ds), generator=g)[: cfg.batch]
            batch = torch.utils.data.default_collate([wrapped[int(i)] for i in order])
            self.batches.append({k: v.to(self.device) for k, v in batch.items()})
        self.model.train()
        self.calls = 0

    def step(self) -> float:
        batch = self.batches[self.calls % len(self.batches)]
        self.calls += 1
        _sync(self.device)
        clock = time.perf_counter if self.device.type == "cuda" else time.process_time
        start = clock()
        out = self.model(face=batch["face"])
        res = self.target(out, batch, self.model)
        self.opt.zero_grad(set_to_none=True)
        res.loss.backward()
        self.opt.step()
        for o in self.opts:
            o.step()
        self.target.after_step()
        _sync(self.device)
        return clock() - start


def step_costs(cfg: LDLBenchConfig) -> dict[str, Any]:
    """Steps of one-hot, memory_bank and online interleaved round by round; medians and ratios to one-hot."""
    setups = {
        "onehot": StepSetup(cfg, "onehot", None),
        "memory_bank": StepSetup(cfg, "ldl_va", "memory_bank"),
        "online": StepSetup(cfg, "ldl_va", "online"),
    }
    times: dict[str, list[float]] = {name: [] for name in setups}
    for round_ in range(cfg.warmup + cfg.steps):
        for name, setup in setups.items():
            t = setup.step()
            if round_ >= cfg.warmup:
                times[name].append(t)
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    ratios = {name: statistics.median(t / b for t, b in zip(ts, times["onehot"], strict=True))
              for name, ts in times.items()}
    return {
        "backbone": cfg.backbone, "size": cfg.size, "batch": cfg.batch, "k": cfg.k, "steps": cfg.steps,
        "clock": "wall" if cfg.device.startswith("cuda") else "cpu",
        "ms": {name: t * 1000 for name, t in medians.items()},
        "ratio_to_onehot": ratios,
    }


def builder_cost(n: int, batch: int = 32, k: int = 8, dim: int = 512, steps: int = 9, warmup: int = 2,
                 device: str = "cpu") -> dict[str, Any]:
    """The builder's own cost per step (no backbone) with N samples: g, bank gather, λ, centres."""

    dev = torch.device(device)
    t = LDLVATarget(7, dim, n, num_neighbors=k, neighbor_mode="memory_bank", lamb_momentum=0.9).to(dev)
    g = torch.Generator().manual_seed(0)
    t.labels.copy_(torch.randint(0, 7, (n,), generator=g))
    t.set_neighbors_from_points(torch.rand(n, 2, generator=g) * 2 - 1)
    t._write_bank(torch.arange(n), torch.softmax(torch.randn(n, 7, generator=g), 1), torch.randn(n, dim, generator=g))
    opt = torch.optim.Adam(t.shared_parameters(), lr=1e-4)
    (lamb_opt,) = t.make_optimizers()
    times = []
    for i in range(warmup + steps):
        idx = torch.randint(0, n, (batch,), generator=g).to(dev)
        features = torch.randn(batch, dim, device=dev, requires_grad=True)
        logits = torch.randn(batch, 7, device=dev, requires_grad=True)
        _sync(dev)
        clock = time.perf_counter if dev.type == "cuda" else time.process_time
        start = clock()
        res = t(EmotionOutput(logits=logits, features=features), {"label": t.labels[idx], "index": idx})
        opt.zero_grad(set_to_none=True)
        res.loss.backward()
        opt.step()
        lamb_opt.step()
        t.after_step()
        _sync(dev)
        if i >= warmup:
            times.append(clock() - start)
    return {"samples": n, "dim": dim, "batch": batch, "k": k, "ms": statistics.median(times) * 1000}


def knn_build(sizes: list[int], k: int = 8) -> dict[str, float]:
    """Seconds to build the exact K-NN of N random 2-D VA points, local similarities included."""

    out = {}
    for n in sizes:
        points = torch.rand(n, 2, generator=torch.Generator().manual_seed(n)) * 2 - 1
        start = time.perf_counter()
        idx, _ = nearest_neighbors(points, k)
        local_similarity(points, points[idx])
        out[str(n)] = time.perf_counter() - start
    return out
