"""``zoo-cli train`` (with --resume and no model name) and ``zoo-cli ablate`` through the typer app."""

from __future__ import annotations

import csv
import json

import pytest
import tiny_training as T
from typer.testing import CliRunner

import zoo
import zoo.cli

pytestmark = pytest.mark.usefixtures("tiny_plugin")

TINY = ["progress=false", "device=cpu", "batch_size=8", "max_steps_per_epoch=2",
        f"model_args.backbone_args={json.dumps(T.TINY_CNN)}", f"model_args.data={json.dumps(T.TINY_DATA)}"]


def _invoke(args):
    result = CliRunner().invoke(zoo.cli.app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_cli_train_then_resume_with_more_epochs(tmp_path):
    out = tmp_path / "run"
    text = _invoke(["train", "caer_net_s", "--data", "tiny:caer", "--out", str(out), "epochs=1", *TINY])
    assert f"run directory: {out}" in text and "best epoch 1" in text
    config = json.loads((out / "run_config.json").read_text())
    assert config["recipe"] == "caer_net_s" and config["optimizer"]["nesterov"] is True  # the paper recipe
    assert config["model_args"]["backbone_args"] == T.TINY_CNN and config["data"]["train"] == "tiny:caer"
    _invoke(["train", "--resume", "--out", str(out), "epochs=2"])
    assert [json.loads(x)["epoch"] for x in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert json.loads((out / "run_config.json").read_text())["epochs"] == 2
    listing = _invoke(["train", "--list-recipes"])
    assert "glamor_net" in listing and "ldlva_resnet18_affectnet" in listing

    plots = tmp_path / "plots"
    text = _invoke(["eval", f"local-dir:{out / 'best'}", "--data", "tiny:caer", "--plots", str(plots)])
    assert f"wrote {plots / 'confusion.png'}" in text and f"wrote {plots / 'training_curves.png'}" in text
    for name in ("confusion.png", "training_curves.png"):
        assert (plots / name).stat().st_size > 5_000


def test_cli_ablate_grid_is_resumable_and_writes_tables(tmp_path):
    out = tmp_path / "ablate"
    args = ["ablate", "caer_net_s", "epochs=1", *TINY, "--data", "tiny:caer", "--grid", "attention=none,gla",
            "--grid", "streams=context,context_guided,both", "--out", str(out)]
    text = _invoke(args)
    rows = list(csv.DictReader(open(out / "ablation.csv")))
    cells = [(r["attention"], r["streams"]) for r in rows]
    assert cells == [("none", "context"), ("none", "context_guided"), ("none", "both"),
                     ("gla", "context"), ("gla", "context_guided"), ("gla", "both")]
    status = {cell: r["status"] for cell, r in zip(cells, rows, strict=True)}
    assert status[("gla", "context")].startswith("not buildable") and "gla" in status[("gla", "context")]
    assert status[("none", "context_guided")].startswith("not buildable")  # no attention reads the face
    trained = [("none", "context"), ("none", "both"), ("gla", "context_guided"), ("gla", "both")]
    assert [status[c] for c in trained] == ["trained"] * 4
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 for r in rows if r["accuracy"])
    params = {cell: int(r["params"]) for cell, r in zip(cells, rows, strict=True) if r["params"]}
    assert params[("none", "context")] < params[("none", "both")]  # the context-only model has no face stream
    # GLAMOR-Net Table 2's context rows: the face encoder guides GLA, but there is no fusion
    assert params[("none", "context")] < params[("gla", "context_guided")] < params[("gla", "both")]
    guided = zoo.create(f"local-dir:{out / 'attention-gla_streams-context_guided' / 'best'}")
    assert guided.config.streams == "context_guided" and guided.fusion is None and guided.face_encoder is not None
    assert "| attention | streams | accuracy (%)" in text
    for r in rows:
        if r["accuracy"]:
            cell = out / f"attention-{r['attention']}_streams-{r['streams']}"
            assert json.loads((cell / "eval.json").read_text())["accuracy"] == pytest.approx(float(r["accuracy"]))
    _invoke(args)  # a second run reads the finished cells back
    again = list(csv.DictReader(open(out / "ablation.csv")))
    assert [r["status"] for r in again if r["accuracy"]] == ["done (read back)"] * 4
    assert [r["accuracy"] for r in again] == [r["accuracy"] for r in rows]
