"""A generated dataset in ExpW's exact on-disk format (``label.lst`` + ``Images/``), for reader and release tests.

Each photo is a grey-ish scene with one or more faces drawn as bright squares whose brightness encodes the
class, and a coloured object next to each face whose hue also encodes it (a context cue), so that a tiny
model can learn both streams in a few steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

#: ExpW's line format: image_name face_id top left right bottom confidence label
LINE = "{name} {face_id} {top} {left} {right} {bottom} {confidence} {label}"


def write_expw(root: Path, photos: int = 28, seed: int = 0, multi_every: int = 4, size: tuple[int, int] = (64, 48)
               ) -> list[str]:
    """Write ``root/label.lst`` and ``root/Images/*.jpg``; every ``multi_every``-th photo holds two faces.
    Returns the lines written (without the trailing newline)."""
    rng = np.random.default_rng(seed)
    images = root / "Images"
    images.mkdir(parents=True, exist_ok=True)
    width, height = size
    lines = []
    for p in range(photos):
        label = p % 7
        pixels = rng.integers(40, 90, size=(height, width, 3), dtype=np.uint8)
        faces = 2 if multi_every and p % multi_every == 0 else 1
        name = f"happy_people_{p}.jpg"  # ExpW names start with the web query; readers must not use them
        for face_id in range(faces):
            face_label = (label + 3 * face_id) % 7
            left, top, side = 4 + 30 * face_id, 6 + (p % 3), 16
            pixels[top:top + side, left:left + side] = 100 + 20 * face_label
            hue = np.zeros(3, np.uint8)
            hue[face_label % 3] = 80 + 25 * face_label
            pixels[top + side + 2:top + side + 10, left:left + side] = hue
            lines.append(LINE.format(name=name, face_id=face_id, top=top, left=left, right=left + side,
                                     bottom=top + side, confidence=f"{50 + p:.4f}", label=face_label))
        Image.fromarray(pixels).save(images / name, quality=95)
    (root / "label.lst").write_text("\n".join(lines) + "\n")
    return lines
