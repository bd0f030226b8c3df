"""``zoo.predict`` latency on one 1920×1280 photo with face detection: plain model against
:func:`zoo.inference.fast.optimize_for_inference`, interleaved, plus the detector's share.

The photo is ``/work/shared/data/scenes/group_sample1.jpg`` when present (real faces), otherwise a generated
one (smooth colour noise). When the detector finds no face, a centred box stands in, after detection has
run, so the model is always timed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from zoo.apps.bench.timing import interleaved
from zoo.data import FaceBox, detect_faces, load_image
from zoo.inference.fast import optimize_for_inference

SHARED_PHOTO = Path("/work/shared/data/scenes/group_sample1.jpg")


def make_photo(path: Path, width: int = 1920, height: int = 1280) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, size=(height // 32, width // 32, 3), dtype=np.uint8)
    Image.fromarray(small).resize((width, height), Image.BICUBIC).save(path, quality=90)
    return path


def bench_predict(model: str = "glamor_net", size: tuple[int, int] = (1920, 1280), reps: int = 5, warmup: int = 1,
                  use_shared: bool = True, model_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    import zoo

    with tempfile.TemporaryDirectory() as tmp:
        if use_shared and SHARED_PHOTO.is_file() and tuple(size) == (1920, 1280):
            photo = SHARED_PHOTO
        else:
            photo = make_photo(Path(tmp) / "photo.jpg", *size)
        image = load_image(photo)
        found = detect_faces(image, "haar")

        def detector(img):
            faces = detect_faces(img, "haar")
            if faces:
                return faces
            w, h = img.size
            return [FaceBox(w * 0.4, h * 0.3, w * 0.6, h * 0.3 + w * 0.2, 1.0)]

        plain = zoo.create(model, **(model_overrides or {})).eval()
        fast = optimize_for_inference(plain)
        timed = interleaved({
            "plain": lambda: zoo.predict(photo, model=plain, detector=detector, device="cpu"),
            "fast": lambda: zoo.predict(photo, model=fast, detector=detector, device="cpu"),
            "detect_only": lambda: detect_faces(load_image(photo), "haar"),
        }, reps, warmup)
    return {
        "model": model, "photo": str(photo) if photo == SHARED_PHOTO else f"generated {size[0]}×{size[1]}",
        "faces": len(found), "plain_ms": timed["plain"]["wall_s"] * 1000, "fast_ms": timed["fast"]["wall_s"] * 1000,
        "speedup": timed["fast"]["ratio"], "detect_ms": timed["detect_only"]["wall_s"] * 1000,
    }
