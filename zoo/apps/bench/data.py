"""Data pipeline images/s (the CAER port's preprocessing, ``caer_net_s`` sizes): decode, the full pipeline in one
process and through DataLoader workers (plain), and later epochs from ``cache="memory"`` (fast), on a
generated CAER-S-like tree of PNG frames, so no shared data is needed.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.data import load_image, open_dataset

CLASSES = ("Anger", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")


def make_tree(root: Path, n: int, width: int, height: int) -> None:
    """``train/<Class>/NNNN.png`` + ``crop/train/<Class>/NNNN.txt``: smooth content + noise (compresses like
    a photo, not like random bytes) and one face box a third of the height wide."""
    from PIL import Image

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(max(height // 8, 1), max(width // 8, 1), 3), dtype=np.uint8)
    for i in range(n):
        cls = CLASSES[i % 7]
        pixels = np.asarray(Image.fromarray(np.roll(base, i, axis=1)).resize((width, height), Image.BILINEAR))
        pixels = np.clip(pixels.astype(int) + rng.integers(-8, 9, size=pixels.shape), 0, 255).astype(np.uint8)
        (root / "train" / cls).mkdir(parents=True, exist_ok=True)
        (root / "crop" / "train" / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / "train" / cls / f"{i:04d}.png")
        x1, y1 = width // 3, height // 5
        (root / "crop" / "train" / cls / f"{i:04d}.txt").write_text(
            f"{x1},{y1},{x1 + height // 3},{y1 + height // 3}\n")


def bench_data(images: int = 64, size: tuple[int, int] = (640, 360), workers: int = 2,
               model: str = "caer_net_s", batch_size: int = 16, disk_cache: bool = False) -> dict[str, Any]:
    """Images/s of each loading path for ``images`` PNG frames of ``size`` (width, height).

    ``disk_cache=True`` adds later epochs from ``cache=DIR`` through ``workers`` DataLoader workers (worker
    start-up included).
    """
    import zoo

    cfg = zoo.create(model).config.data
    width, height = size
    out: dict[str, Any] = {"images": images, "size": [width, height], "model": model}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_tree(root, images, width, height)
        ds = open_dataset(f"caer_s:{root}", "train", data_config=cfg)

        start = time.perf_counter()
        for sample in ds.samples:
            load_image(sample.path)
        out["decode_img_s"] = len(ds) / (time.perf_counter() - start)

        start = time.perf_counter()
        for i in range(len(ds)):
            ds[i]
        out["pipeline_img_s"] = len(ds) / (time.perf_counter() - start)

        if workers:
            loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, num_workers=workers, shuffle=True)
            start = time.perf_counter()
            n = sum(len(batch["label"]) for batch in loader)
            out[f"pipeline_{workers}_workers_img_s"] = n / (time.perf_counter() - start)

        cached = open_dataset(f"caer_s:{root}", "train", data_config=cfg, cache="memory")
        for i in range(len(cached)):
            cached[i]
        start = time.perf_counter()
        for i in range(len(cached)):
            cached[i]
        out["cache_memory_img_s"] = len(cached) / (time.perf_counter() - start)

        if disk_cache:
            on_disk = open_dataset(f"caer_s:{root}", "train", data_config=cfg, cache=str(root / "cache"))
            for i in range(len(on_disk)):  # the first epoch writes the cache
                on_disk[i]
            loader = torch.utils.data.DataLoader(on_disk, batch_size=batch_size, num_workers=workers, shuffle=True)
            start = time.perf_counter()
            n = sum(len(batch["label"]) for batch in loader)
            out["cache_dir_img_s"] = n / (time.perf_counter() - start)
    out["cache_speedup"] = out["cache_memory_img_s"] / out["pipeline_img_s"]
    return out
