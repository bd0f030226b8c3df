"""How long ``zoo.predict`` takes on one 1920×1280 photo with the model loaded, on one CPU thread (not a test).

    python -m benchmarks.joint_predict_speed [--model fer_cnn.fer2013_expw] [--repeat 7]

Splits the time into detection (MTCNN, with its landmarks), the aligned crops and the model, and reports the
median of ``--repeat`` runs after one warm-up. Reads ``group_sample1.jpg`` from ``../shared/data/scenes`` (MIT,
``@vladmandic/face-api``) or ``--photo``; exits 0 with a message when neither is there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from benchmarks.fer2013_real import REPO

RESULTS = REPO / "benchmarks" / "results" / "joint"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="fer_cnn.fer2013_expw")
    parser.add_argument("--photo", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    photo = args.photo
    if photo is None:
        for parent in REPO.parents:
            if (parent / "shared" / "data" / "scenes" / "group_sample1.jpg").is_file():
                photo = parent / "shared" / "data" / "scenes" / "group_sample1.jpg"
                break
    if photo is None or not photo.is_file():
        print("no photo: pass --photo (a 1920×1280 photo); nothing to do.")
        return
    import torch
    from PIL import Image

    import zoo
    from zoo.apps.bench.timing import cpu_model
    from zoo.data.detection import get_face_detector
    from zoo.data.transforms import preprocess

    torch.set_num_threads(1)
    model = zoo.create(args.model, pretrained=True).eval()
    detector = get_face_detector("mtcnn")
    image = Image.open(photo).convert("RGB")
    totals, detect, crops, forward = [], [], [], []
    for i in range(args.repeat + 1):
        start = time.perf_counter()
        result = zoo.predict(str(photo), model=model, detector="mtcnn")
        total = time.perf_counter() - start
        t0 = time.perf_counter()
        faces = detector(image)
        t1 = time.perf_counter()
        inputs = torch.stack([preprocess(image, f, model.config.data, streams="face")["face"] for f in faces])
        t2 = time.perf_counter()
        with torch.inference_mode():
            model(face=inputs)
        t3 = time.perf_counter()
        if i:
            totals.append(total), detect.append(t1 - t0), crops.append(t2 - t1), forward.append(t3 - t2)
    row = {"model": args.model, "photo": f"{image.size[0]}×{image.size[1]}", "faces": len(result[0]["faces"]),
           "predict_s": statistics.median(totals), "detection_s": statistics.median(detect),
           "aligned_crops_s": statistics.median(crops), "model_s": statistics.median(forward),
           "cpu": cpu_model(), "threads": 1, "repeat": args.repeat}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "predict_speed.json").write_text(json.dumps(row, indent=1) + "\n")
    print(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
