"""Throughput of the default loading pipeline vs a caer_net_s training step, on 2 CPU cores (not a test).

    PYTHONPATH=. taskset -c 0,1 python benchmarks/bench_data.py [--images 96] [--size 640x360] [--batch 32]

Writes a temporary CAER-S-like tree (PNG frames + crop/ box files), then measures in images/s:
  1. decode only (zoo.data.load_image),
  2. the full pipeline in one process (decode, crop, mask, resize 128×171, random crop 112, normalise),
  3. the same through a DataLoader with 2 workers,
  4. later epochs with cache="memory" (decoding, cropping, masking and resizing done once),
  5. later epochs with cache=DIR (the same, as .npy files shared by DataLoader workers),
  6. one caer_net_s training step (forward, backward, SGD) with 2 threads.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from zoo.apps.bench.data import bench_data


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:8.1f} images/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    torch.set_num_threads(2)

    import zoo

    model = zoo.create("caer_net_s")
    cfg = model.config.data
    print(f"{args.images} PNG images {width}×{height}, face {cfg.face_size}, context {cfg.context_resize} -> "
          f"{cfg.context_size}, torch threads 2, {os.cpu_count()} CPUs")
    result = bench_data(args.images, (width, height), workers=2, batch_size=args.batch, disk_cache=True)
    print(f"decode only                 {result['decode_img_s']:8.1f} images/s")
    print(f"full pipeline, 1 process    {result['pipeline_img_s']:8.1f} images/s")
    print(f"full pipeline, 2 workers    {result['pipeline_2_workers_img_s']:8.1f} images/s (includes worker start-up)")
    print(f"cache='memory', next epochs {result['cache_memory_img_s']:8.1f} images/s")
    print(f"cache=DIR, 2 workers        {result['cache_dir_img_s']:8.1f} images/s (includes worker start-up)")

    model.train()
    optimiser = torch.optim.SGD(model.parameters(), lr=5e-3, momentum=0.9, nesterov=True)
    face = torch.randn(args.batch, 3, *cfg.face_size)
    context = torch.randn(args.batch, 3, *cfg.context_size)
    labels = torch.randint(0, 7, (args.batch,))

    def step() -> None:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(face, context).logits, labels)
        loss.backward()
        optimiser.step()

    step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    print(f"caer_net_s train step       {rate(args.batch * args.steps, time.perf_counter() - start)} (batch {args.batch})")


if __name__ == "__main__":
    main()
