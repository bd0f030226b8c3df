"""Train several variants of the joint recipe side by side on one accelerator, then collect their results.

    python -m benchmarks.joint_sweep --device cuda --parallel 6 --minutes 8 --out OUT \\
        release:0 release:1 release:2 grey:0 no_align:0 ...

Each ``VARIANT:SEED[:EPOCHS]`` runs ``python -m benchmarks.joint_release --variant VARIANT --seed SEED`` in its own
process (``--parallel`` at a time), stopped cleanly after the epoch that passes the deadline. ``OUT`` receives
``results.json`` (every run's variant, per-epoch history, best epoch, wall time, hardware) and the best weights
(float16 safetensors) of the runs named by ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.joint_release import RUNS


def run_name(spec: str) -> tuple[str, list[str]]:
    parts = spec.split(":")
    variant, seed = parts[0], parts[1] if len(parts) > 1 else "0"
    args = ["--variant", variant, "--seed", seed]
    name = f"{variant}_s{seed}"
    if len(parts) > 2:
        args += ["--epochs", parts[2]]
        name = f"{variant}_e{parts[2]}_s{seed}"
    return name, args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("specs", nargs="+")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=8.0, help="wall-clock budget of the whole sweep")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--runs", type=Path, default=RUNS)
    parser.add_argument("--keep", default="", help="comma-separated run names whose best weights to copy to OUT")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    queue = [run_name(s) for s in args.specs]
    running: list[tuple[str, subprocess.Popen, object]] = []
    while queue or running:
        while queue and len(running) < args.parallel:
            left = args.minutes - (time.time() - start) / 60
            if left < 1.0:
                print(f"not started (budget spent): {[n for n, _ in queue]}", flush=True)
                queue.clear()
                break
            name, extra = queue.pop(0)
            log = args.runs / f"{name}.log"
            args.runs.mkdir(parents=True, exist_ok=True)
            handle = log.open("w")
            cmd = [sys.executable, "-m", "benchmarks.joint_release", *extra, "--device", args.device,
                   "--runs", str(args.runs), "--max-minutes", f"{max(left - 0.7, 0.5):.2f}"]
            running.append((name, subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT), handle))
            print(f"[{(time.time() - start) / 60:4.1f} min] started {name}", flush=True)
        time.sleep(2)
        for item in list(running):
            name, proc, handle = item
            if proc.poll() is not None:
                handle.close()
                running.remove(item)
                print(f"[{(time.time() - start) / 60:4.1f} min] {name} exited {proc.returncode}", flush=True)
    collect(args.runs, args.out, [n for n in args.keep.split(",") if n], args.device)


def collect(runs: Path, out: Path, keep: list[str], device: str) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    results = {"device": torch.cuda.get_device_name(0) if device == "cuda" and torch.cuda.is_available() else device,
               "torch": torch.__version__, "runs": {}}
    for state_file in sorted(runs.glob("*/state.json")):
        state = json.loads(state_file.read_text())
        results["runs"][state_file.parent.name] = {
            "variant": state["variant"], "epochs_done": state["epoch"], "wall_s": state["wall_s"],
            "best": state["best"], "history": state["history"], "finished": (state_file.parent / "done.json").is_file()}
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    for name in keep:
        best = runs / name / "best.safetensors"
        if best.is_file():
            tensors = {k: v.half() if v.is_floating_point() else v for k, v in load_file(str(best)).items()}
            save_file(tensors, str(out / f"{name}.fp16.safetensors"))
    for log in runs.glob("*.log"):
        tail = log.read_text().splitlines()[-3:]
        print(f"--- {log.stem}: " + " | ".join(tail)[:400], flush=True)


if __name__ == "__main__":
    main()
