"""Cost of an LDL-VA training step (memory_bank and online) against a one-hot step, and KNN build time.

Not a test; the same measurements are the ``ldl`` and ``knn`` sections of ``python -m benchmarks.run``
(code in :mod:`zoo.apps.bench.ldl`). Run from the repository root:

    python -m benchmarks.bench_ldl                       # CPU, resnet18 at 64², batch 32
    python -m benchmarks.bench_ldl --backbone caer_cnn --size 64 --device cuda
"""

from __future__ import annotations

import argparse
import os

import torch

from zoo.apps.bench.ldl import LDLBenchConfig, builder_cost, knn_build, step_costs


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
        cfg = LDLBenchConfig(args.backbone, args.size, args.batch, args.k, args.samples, args.steps, args.warmup,
                             args.device)
        res = step_costs(cfg)
        print(f"{cfg.backbone} {cfg.size}² batch {cfg.batch} K={cfg.k} on {cfg.device}, {torch.get_num_threads()} "
              f"thread(s), {res['clock']} time: median of {cfg.steps} interleaved steps")
        for name, ms in res["ms"].items():
            print(f"  {name:<20} {ms:8.1f} ms   {res['ratio_to_onehot'][name]:.3f}×")
    if args.target_samples:
        res = builder_cost(args.target_samples, args.batch, args.k, device=args.device)
        print(f"\nldl_va builder alone (memory_bank, V=512, N={args.target_samples:,}, batch {args.batch}, "
              f"K={args.k}): {res['ms']:.1f} ms/step")
    if args.knn_sizes:
        print(f"\nKNN build (K={args.k}, 2-D VA, exact k-d tree on all {os.cpu_count()} cores, incl. local similarities)")
        for n, seconds in knn_build([int(s) for s in args.knn_sizes.split(",")], args.k).items():
            print(f"  N={int(n):>7,}: {seconds:6.2f} s")


if __name__ == "__main__":
    main()
