"""The benchmark suite: a --quick smoke run has every section, and interleaved timing gives the ratios."""

from __future__ import annotations

import json
import time

import pytest
import torch
from typer.testing import CliRunner

from zoo.apps.bench import SECTIONS, run_suite
from zoo.apps.bench.suite import format_tables
from zoo.apps.bench.timing import interleaved

PATHS = ("plain", "fast", "fast_bf16")


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _check_result(result: dict) -> None:
    assert set(SECTIONS) <= set(result)
    assert result["load_average_start"] and result["load_average_end"]
    machine = result["machine"]
    assert machine["cores"] >= 1 and machine["torch"] == torch.__version__ and machine["gemm_gflops_fp32"] > 0
    (model,) = result["models"]
    assert model["model"] == "caer_net_s" and model["gflops_per_image"] > 0 and model["peak_memory_mb"] > 0
    for kind in ("train", "infer"):
        assert set(model[kind]) == {"b1", "b4"}
        for entry in model[kind].values():
            for path in PATHS:
                assert entry[path]["img_s"] > 0 and entry[path]["gflop_s"] > 0 and entry[path]["speedup"] > 0
            assert entry["plain"]["speedup"] == 1.0
    assert {"time_overhead", "flop_overhead"} <= set(model["heads"])
    assert model["heads"]["flop_overhead"] > 0  # attention + fusion + classifier do cost FLOPs
    assert result["data"]["pipeline_img_s"] > 0 and result["data"]["cache_memory_img_s"] > 0
    (steps,) = result["ldl"]["steps"]
    assert set(steps["ms"]) == {"onehot", "memory_bank", "online"} and steps["ratio_to_onehot"]["onehot"] == 1.0
    assert result["ldl"]["builder_only"]["ms"] > 0
    assert set(result["knn"]["seconds"]) == {"1000", "3000"}
    assert result["predict"]["plain_ms"] > 0 and result["predict"]["fast_ms"] > 0


def test_quick_suite_has_every_section():
    start = time.perf_counter()
    result = run_suite(quick=True, threads=1)
    assert time.perf_counter() - start < 20
    _check_result(result)
    table = format_tables(result)
    assert "caer_net_s" in table and "fast_bf16" in table and "KNN build" in table and "predict" in table
    json.dumps(result)  # serialisable


def test_cli_bench_writes_json(tmp_path):
    import zoo.cli

    out = tmp_path / "bench.json"
    res = CliRunner().invoke(zoo.cli.app, ["bench", "--quick", "--threads", "1", "--sections", "machine,knn",
                                           "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert set(data) >= {"machine", "knn", "load_average_start"} and "models" not in data
    assert "KNN build" in res.output
    res = CliRunner().invoke(zoo.cli.app, ["bench", "--quick", "--sections", "nosuch"])
    assert res.exit_code == 2 and "nosuch" in res.output


def test_interleaved_ratio_is_the_median_per_round_ratio():
    calls = []
    timed = interleaved({"slow": lambda: (calls.append("slow"), time.sleep(0.02)),
                         "fast": lambda: (calls.append("fast"), time.sleep(0.005))}, reps=3, warmup=1)
    assert calls == ["slow", "fast"] * 4  # round by round, warm-up included
    assert timed["slow"]["ratio"] == 1.0 and len(timed["fast"]["walls"]) == 3
    assert 2.0 < timed["fast"]["ratio"] < 4.5
