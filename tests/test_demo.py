"""``zoo-cli demo --fast``: every step runs and every figure type is written (the full demo is by hand)."""

from __future__ import annotations

import json
import sys

import pytest
from PIL import Image
from typer.testing import CliRunner

import zoo.cli


def test_demo_fast_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(zoo.cli.app, ["demo", "--fast", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = result.output
    for row in ("| face only |", "| face + context, no attention |", "| face + context + CA |",
                "| face + context + GLA |", "| one-hot |", "| LDL-VA |"):
        assert row in text
    assert "| context" not in text  # the context models are face + context models
    assert "reloaded with zoo.create('local-dir:" in text

    summary = json.loads((out / "demo_results.json").read_text())
    assert len(summary["comparison"]) == 4 and len(summary["noise"]) == 2
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in summary["comparison"] + summary["noise"])
    assert sorted(p.name for p in (out / "best_model").iterdir()) == ["config.json", "model.safetensors"]
    face = summary["prediction"][0]["faces"][0]
    assert abs(sum(face["probs"].values()) - 1.0) < 1e-5

    figures = summary["figures"]
    kinds = {"attention 0", "prediction grid", "uncertainty grid", "training curves", "predict overlay"}
    assert kinds <= set(figures)
    assert any(k.startswith("confusion") for k in figures)
    for path in figures.values():
        with Image.open(path) as im:
            assert im.format == "PNG" and min(im.size) >= 150
    # the noisy runs recorded which labels were flipped
    assert (out / "runs" / "noisy_ldl_va" / "run_config.json").exists()


def test_demo_refuses_to_overwrite(tmp_path, monkeypatch, capsys):
    """The entry point (``zoo-cli`` = :func:`zoo.cli.main`) exits with 1 and says what to do; nothing is written."""
    (tmp_path / "runs").mkdir()
    monkeypatch.setattr(sys, "argv", ["zoo-cli", "demo", "--fast", "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as info:
        zoo.cli.main()
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert f"error: {tmp_path} already holds a demo run; remove it or pass another --out." in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"] and not any((tmp_path / "runs").iterdir())
