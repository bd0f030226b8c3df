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
import tempfile
import time
from pathlib import Path

import torch

from zoo.bench.data import make_tree


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
    from zoo.data import load_image, open_dataset

    model = zoo.create("caer_net_s")
    cfg = model.config.data
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_tree(root, args.images, width, height)
        ds = open_dataset(f"caer_s:{root}", "train", data_config=cfg)
        print(f"{len(ds)} PNG images {width}×{height}, face {cfg.face_size}, context {cfg.context_resize} -> {cfg.context_size}, "
              f"torch threads 2, {os.cpu_count()} CPUs")

        start = time.perf_counter()
        for sample in ds.samples:
            load_image(sample.path)
        print(f"decode only                 {rate(len(ds), time.perf_counter() - start)}")

        start = time.perf_counter()
        for i in range(len(ds)):
            ds[i]
        print(f"full pipeline, 1 process    {rate(len(ds), time.perf_counter() - start)}")

        loader = torch.utils.data.DataLoader(ds, batch_size=args.batch, num_workers=2, shuffle=True)
        for _ in loader:  # start the workers once
            break
        start = time.perf_counter()
        n = sum(len(batch["label"]) for batch in loader)
        print(f"full pipeline, 2 workers    {rate(n, time.perf_counter() - start)}")

        cached = open_dataset(f"caer_s:{root}", "train", data_config=cfg, cache="memory")
        for i in range(len(cached)):
            cached[i]
        start = time.perf_counter()
        for i in range(len(cached)):
            cached[i]
        print(f"cache='memory', next epochs {rate(len(cached), time.perf_counter() - start)}")

        on_disk = open_dataset(f"caer_s:{root}", "train", data_config=cfg, cache=str(root / "cache"))
        for i in range(len(on_disk)):
            on_disk[i]
        loader = torch.utils.data.DataLoader(on_disk, batch_size=args.batch, num_workers=2, shuffle=True)
        start = time.perf_counter()
        n = sum(len(batch["label"]) for batch in loader)
        print(f"cache=DIR, 2 workers        {rate(n, time.perf_counter() - start)} (includes worker start-up)")

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
