"""Cost of an LDL-VA training step (memory_bank and online) against a one-hot step, and KNN build time.

Not a test. Run from the repository root:

    python -m benchmarks.bench_ldl                       # CPU, resnet18 at 64², batch 32
    python -m benchmarks.bench_ldl --backbone caer_cnn --size 64 --device cuda

A "step" is forward, target, backward, every optimiser step and ``after_step``: what the training engine does.
On CPU the time is the process's CPU time (``time.process_time``), which other processes' load disturbs far
less than wall time; on CUDA it is synchronised wall time. The online step includes the K neighbour forwards; loading the neighbours' images (K× the data loading) is
*not* timed, so the online figure is a lower bound.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

import zoo
from zoo.ldl.knn import nearest_neighbors
from zoo.ldl.similarity import local_similarity


class RandomFaces(torch.utils.data.Dataset):
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


class Setup:
    """One model + target builder + optimisers + pre-collated batches."""

    def __init__(self, args: argparse.Namespace, target_name: str, mode: str | None) -> None:
        self.device = torch.device(args.device)
        torch.manual_seed(0)
        self.model = zoo.create(
            streams="face", backbone=args.backbone, head_hidden=None, head_dropout=0.0, num_classes=7,
            data={"face_size": (args.size, args.size)}, target=target_name,
        ).to(self.device)
        ds = RandomFaces(args.samples, args.size, 7)
        extra = {"neighbor_mode": mode, "num_neighbors": args.k, "batch_size": args.batch} if target_name == "ldl_va" else {}
        self.target = zoo.build_target(self.model.config, self.model.feature_dim, num_samples=len(ds), **extra)
        self.target.to(self.device).prepare(ds, self.model)
        wrapped = self.target.wrap_dataset(ds)
        params = list(self.model.parameters()) + list(self.target.shared_parameters())
        self.opt = torch.optim.Adam(params, lr=1e-4)
        self.opts = self.target.make_optimizers()
        g = torch.Generator().manual_seed(1)
        self.batches = []
        for _ in range(4):
            order = torch.randperm(len(ds), generator=g)[: args.batch]
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


def bench_steps(args: argparse.Namespace) -> None:
    """Steps of the three setups interleaved round by round, so load from other processes hits all alike."""
    setups = {
        "onehot": Setup(args, "onehot", None),
        "ldl_va memory_bank": Setup(args, "ldl_va", "memory_bank"),
        "ldl_va online": Setup(args, "ldl_va", "online"),
    }
    times: dict[str, list[float]] = {name: [] for name in setups}
    for round_ in range(args.warmup + args.steps):
        for name, setup in setups.items():
            t = setup.step()
            if round_ >= args.warmup:
                times[name].append(t)
    medians = {name: sorted(ts)[len(ts) // 2] for name, ts in times.items()}
    base = medians["onehot"]
    print(f"{args.backbone} {args.size}² batch {args.batch} K={args.k} on {args.device}, "
          f"{torch.get_num_threads()} thread(s), {'wall' if args.device.startswith('cuda') else 'CPU'} time: median of {args.steps} interleaved steps")
    for name, t in medians.items():
        print(f"  {name:<20} {t * 1000:8.1f} ms   {t / base:.3f}×")


def bench_target_only(args: argparse.Namespace, n: int) -> None:
    """The builder's own cost per step (no backbone) with AffectNet-sized state: g, bank gather, λ, centres."""
    from zoo.ldl.target import LDLVATarget
    from zoo.model import EmotionOutput

    device = torch.device(args.device)
    dim, b = 512, args.batch
    t = LDLVATarget(7, dim, n, num_neighbors=args.k, neighbor_mode="memory_bank", lamb_momentum=0.9).to(device)
    g = torch.Generator().manual_seed(0)
    t.labels.copy_(torch.randint(0, 7, (n,), generator=g))
    t.set_neighbors_from_points(torch.rand(n, 2, generator=g) * 2 - 1)
    t._write_bank(torch.arange(n), torch.softmax(torch.randn(n, 7, generator=g), 1), torch.randn(n, dim, generator=g))
    opt = torch.optim.Adam(t.shared_parameters(), lr=1e-4)
    (lamb_opt,) = t.make_optimizers()
    times = []
    for i in range(args.warmup + args.steps):
        idx = torch.randint(0, n, (b,), generator=g).to(device)
        features = torch.randn(b, dim, device=device, requires_grad=True)
        logits = torch.randn(b, 7, device=device, requires_grad=True)
        _sync(device)
        clock = time.perf_counter if device.type == "cuda" else time.process_time
        start = clock()
        res = t(EmotionOutput(logits=logits, features=features), {"label": t.labels[idx], "index": idx})
        opt.zero_grad(set_to_none=True)
        res.loss.backward()
        opt.step()
        lamb_opt.step()
        t.after_step()
        _sync(device)
        if i >= args.warmup:
            times.append(clock() - start)
    median = sorted(times)[len(times) // 2]
    print(f"\nldl_va builder alone (memory_bank, V=512, N={n:,}, batch {b}, K={args.k}): {median * 1000:.1f} ms/step")


def bench_knn(sizes: list[int], k: int) -> None:
    print(f"\nKNN build (K={k}, 2-D VA, exact k-d tree on all {os.cpu_count()} cores, incl. local similarities)")
    for n in sizes:
        points = torch.rand(n, 2, generator=torch.Generator().manual_seed(n)) * 2 - 1
        start = time.perf_counter()
        idx, _ = nearest_neighbors(points, k)
        local_similarity(points, points[idx])
        print(f"  N={n:>7,}: {time.perf_counter() - start:6.2f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--samples", type=int, default=512)
    p.add_argument("--steps", type=int, default=9)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads (0 = torch's default)")
    p.add_argument("--knn-sizes", default="10000,30000,100000,300000")
    p.add_argument("--skip-steps", action="store_true")
    p.add_argument("--target-samples", type=int, default=287651, help="N for the builder-only timing (0 = skip)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.skip_steps:
        bench_steps(args)
    if args.target_samples:
        bench_target_only(args, args.target_samples)
    if args.knn_sizes:
        bench_knn([int(s) for s in args.knn_sizes.split(",")], args.k)


if __name__ == "__main__":
    main()
