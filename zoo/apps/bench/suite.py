"""Run every section of the benchmark suite, print the tables, write the JSON."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from zoo.apps.bench import data as bdata
from zoo.apps.bench import ldl as bldl
from zoo.apps.bench import models as bmodels
from zoo.apps.bench import predict as bpredict
from zoo.apps.bench.timing import load_average, machine_info
from zoo.runtime import cpu_threads

logger = logging.getLogger(__name__)

SECTIONS = ("machine", "models", "data", "ldl", "knn", "predict")


def run_suite(
    models: Sequence[str] | None = None,
    quick: bool = False,
    device: str = "cpu",
    threads: int | str | None = "auto",
    sections: Sequence[str] = SECTIONS,
    isolate: bool | None = None,
    compile: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """All sections; ``quick`` shrinks every size (a smoke run of a few seconds, figures meaningless).

    Progress goes to ``log`` (default: the ``zoo.apps.bench.suite`` logger, level INFO).
    ``threads``: torch threads for every measurement (``"auto"``: cores the load average leaves idle, see
    :func:`zoo.runtime.cpu_threads`). ``isolate``: each model in its own subprocess (default: not in quick mode).
    """

    log = log or logger.info
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"Unknown benchmark section(s) {sorted(unknown)}; choose from {', '.join(SECTIONS)}.")
    n_threads = cpu_threads(threads)
    torch.set_num_threads(n_threads)
    isolate = (not quick) if isolate is None else isolate
    started = time.time()
    result: dict[str, Any] = {"quick": quick, "load_average_start": load_average()}
    if "machine" in sections:
        result["machine"] = machine_info(device, gemm_size=256 if quick else 1024)
    if "models" in sections:
        names = list(models or (("caer_net_s",) if quick else bmodels.DEFAULT_MODELS))
        kwargs = {"device": device, "threads": n_threads, "quick": quick,
                  "reps": 1 if quick else 5, "warmup": 1 if quick else 2,
                  "batches": (1, 4) if quick else (1, 32), "compile": compile}
        result["models"] = []
        for name in names:
            log(f"models: {name} ...")
            run = bmodels.run_isolated if isolate else bmodels.bench_model
            result["models"].append(run(name, **kwargs))
    if "data" in sections:
        log("data pipeline ...")
        result["data"] = (bdata.bench_data(images=4, size=(96, 64), workers=0) if quick
                          else bdata.bench_data(images=64, size=(640, 360), workers=2))
    if "ldl" in sections:
        log("LDL-VA step cost ...")
        if quick:
            cfg = bldl.LDLBenchConfig(backbone="caer_cnn", size=16, batch=4, k=2, samples=16, steps=1, warmup=0,
                                      device=device, backbone_args=bmodels.QUICK_CNN)
            steps = [bldl.step_costs(cfg)]
            builder = bldl.builder_cost(256, batch=4, k=2, dim=16, steps=1, warmup=0, device=device)
        else:
            steps = [bldl.step_costs(bldl.LDLBenchConfig(backbone=b, size=s, device=device))
                     for b, s in (("resnet18", 64), ("caer_cnn", 64))]
            builder = bldl.builder_cost(287_651, device=device)
        result["ldl"] = {"steps": steps, "builder_only": builder}
    if "knn" in sections:
        log("KNN build ...")
        sizes = [1_000, 3_000] if quick else [10_000, 30_000, 100_000, 300_000]
        result["knn"] = {"k": 8, "seconds": bldl.knn_build(sizes)}
    if "predict" in sections:
        log("predict latency ...")
        if quick:
            result["predict"] = bpredict.bench_predict(
                "caer_net_s", size=(320, 214), reps=1, warmup=0,
                model_overrides={"data": bmodels.QUICK_DATA, "backbone_args": bmodels.QUICK_CNN})
        else:
            result["predict"] = bpredict.bench_predict("glamor_net")
    result["load_average_end"] = load_average()
    result["seconds"] = round(time.time() - started, 1)
    return result


def _fmt(x: float, digits: int = 1) -> str:
    return f"{x:.{digits}f}"


def format_tables(result: dict[str, Any]) -> str:
    """Markdown tables of every section present in ``result``."""
    out: list[str] = []
    m = result.get("machine")
    if m:
        out.append(f"Machine: {m['cpu']}, {m['cores']} cores ({m['cpu_capability']}), torch {m['torch']}, "
                   f"{m['threads']} thread(s), load average {m['load_average']}; GEMM {m['gemm_gflops_fp32']} "
                   f"GFLOP/s fp32, {m['gemm_gflops_bf16']} bf16 (wall)"
                   + (f", {m['gemm_gflops_fp32_cpu']} / {m['gemm_gflops_bf16_cpu']} per CPU second"
                      if "gemm_gflops_fp32_cpu" in m else "")
                   + f"; 3×3 conv (oneDNN, channels_last) {m['conv3x3_gflops_fp32']} fp32, {m['conv3x3_gflops_bf16']} bf16"
                   + (f" (wall), {m['conv3x3_gflops_fp32_cpu']} / {m['conv3x3_gflops_bf16_cpu']} per CPU second"
                      if "conv3x3_gflops_fp32_cpu" in m else "") + (f"; GPU {m['gpu']}" if m.get("gpu") else ""))
    if result.get("models"):
        out.append("")
        out.append("| model | GFLOPs/img | path | train b1 img/s (×) | train b32 img/s (×) | train b32 GFLOP/s wall / CPU | "
                   "infer b1 img/s (×) | infer b32 img/s (×) | infer b32 GFLOP/s wall / CPU | heads time / FLOPs | "
                   "peak MB |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in result["models"]:
            big = max(r["infer"], key=lambda k: int(k[1:]))
            for path in ("plain", "fast", "fast_bf16", "fast_compiled"):
                if path not in r["infer"].get("b1", {}):
                    continue
                cells = [r["model"] if path == "plain" else "", _fmt(r["gflops_per_image"], 3) if path == "plain"
                         else "", path]
                for section, key in (("train", "b1"), ("train", big), ("train_flops", big), ("infer", "b1"),
                                     ("infer", big), ("infer_flops", big)):
                    entry = r["train" if section.startswith("train") else "infer"].get(key, {})
                    if "error" in entry or path not in entry:
                        cells.append("-")
                        continue
                    p = entry[path]
                    if section.endswith("flops"):
                        cells.append(f"{_fmt(p['gflop_s'])} / {_fmt(p['gflop_s_cpu'])}")
                    else:
                        cells.append(_fmt(p["img_s"]) + (f" ({p['speedup']:.2f}×)" if path != "plain" else ""))
                heads = r.get("heads")
                cells.append(f"{100 * heads['time_overhead']:+.1f}% / {100 * heads['flop_overhead']:+.1f}%"
                             if heads and path == "plain" else "")
                cells.append(_fmt(r["peak_memory_mb"], 0) if path == "plain" else "")
                out.append("| " + " | ".join(cells) + " |")
    d = result.get("data")
    if d:
        out.append("")
        out.append(f"Data pipeline ({d['images']} PNG {d['size'][0]}×{d['size'][1]}, {d['model']} sizes), images/s: "
                   + ", ".join(f"{k.removesuffix('_img_s')} {v:.1f}" for k, v in d.items() if k.endswith("_img_s"))
                   + f"; cache speed-up {d['cache_speedup']:.1f}×")
    ldl = result.get("ldl")
    if ldl:
        out.append("")
        out.append("| LDL-VA step | one-hot ms | memory_bank ms (×) | online ms (×) |")
        out.append("|---|---|---|---|")
        for s in ldl["steps"]:
            ms, ratio = s["ms"], s["ratio_to_onehot"]
            out.append(f"| {s['backbone']} {s['size']}², batch {s['batch']}, K={s['k']} | {ms['onehot']:.1f} | "
                       f"{ms['memory_bank']:.1f} ({ratio['memory_bank']:.2f}×) | {ms['online']:.1f} "
                       f"({ratio['online']:.2f}×) |")
        b = ldl["builder_only"]
        out.append(f"\nLDL-VA builder alone (memory_bank, N={b['samples']:,}, V={b['dim']}): {b['ms']:.1f} ms/step")
    knn = result.get("knn")
    if knn:
        out.append("KNN build (K=8, 2-D): " + ", ".join(f"{int(n):,}: {s:.2f} s" for n, s in knn["seconds"].items()))
    p = result.get("predict")
    if p:
        out.append(f"predict ({p['model']}, {p['photo']}, {p['faces']} face(s) found): plain {p['plain_ms']:.0f} ms, "
                   f"fast {p['fast_ms']:.0f} ms ({p['speedup']:.2f}×), detection alone {p['detect_ms']:.0f} ms")
    out.append(f"\nload average {result.get('load_average_start')} -> {result.get('load_average_end')}, "
               f"{result.get('seconds')} s")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks.run [MODEL...] [--quick] [--out FILE] [--sections ...]``."""
    import argparse
    import json
    from pathlib import Path

    p = argparse.ArgumentParser(description="emotion-zoo benchmark suite: plain against fast paths, one run.")
    p.add_argument("models", nargs="*", help="presets (default: caer_net_s glamor_net glamor_resnet18 fer_resnet18)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of seconds")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", default="auto", help="torch threads: N or auto (cores the load leaves idle)")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    p.add_argument("--out", default="benchmark.json", help="JSON output file")
    p.add_argument("--json", action="store_true", help="print the JSON instead of the tables")
    p.add_argument("--compile", action="store_true", help="add torch.compile (inductor, freezing) to inference")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the progress lines, on stderr
    result = run_suite(args.models or None, quick=args.quick, device=args.device, threads=args.threads,
                       compile=args.compile, sections=[s for s in args.sections.split(",") if s])
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2) if args.json else format_tables(result))
    logger.info("JSON written to %s", args.out)
