"""zoo-cli list / components / info / plugins, in-process and as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from zoo.cli import app

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_list_shows_presets_and_components():
    out = invoke("list")
    assert "glamor_resnet18" in out and "caer_net_s" in out and "ldlva_resnet50" in out
    row = next(line for line in out.splitlines() if line.startswith("glamor_net "))
    assert row.split()[1:6] == ["both", "caer_cnn", "gla", "adaptive", "onehot"]


def test_list_pattern_and_json():
    rows = json.loads(invoke("list", "ldlva*", "--json"))
    assert [r["name"] for r in rows] == ["ldlva_resnet18", "ldlva_resnet50"]
    assert rows[0]["target"] == "ldl_va" and rows[0]["streams"] == "face" and rows[0]["attention"] == "-"


def test_list_pretrained_shows_the_bundled_models_and_nothing_else():
    out = invoke("list", "--pretrained")
    assert "fer_cnn.fer2013" in out and "package:pretrained/fer_cnn.fer2013" in out and "accuracy=0.679" in out
    assert "fer_cnn.expw" in out and "package:pretrained/fer_cnn.expw" in out and "accuracy=0.459," in out
    assert "glamor_fer_cnn.expw" in out and "package:pretrained/glamor_fer_cnn.expw" in out
    assert "fer_cnn.fer2013_expw" in out and "package:pretrained/fer_cnn.fer2013_expw" in out
    assert "no models match" in invoke("list", "*resnet*", "--pretrained")


def test_components():
    out = invoke("components", "attention")
    assert "gla" in out and "zoo.builtin.attention" in out and "backbone" not in out
    rows = json.loads(invoke("components", "--json"))
    assert {"kind": "backbone", "name": "timm:<name>"}.items() <= next(r for r in rows if r["name"] == "timm:<name>").items()


def test_info_reports_parameters_and_flops():
    info = json.loads(invoke("info", "glamor_net", "--json"))
    assert info["parameters"] == 2_158_602
    assert info["face_size"] == [96, 96] and info["context_size"] == [112, 112]
    assert info["components"]["attention"] == "gla"
    # two 5-block encoders dominate: about 0.61 GFLOPs at 96² + 112² (2 FLOPs per multiply-add)
    assert 0.5 < info["gflops"] < 0.8
    text = invoke("info", "glamor_net")
    assert "2,158,602 trainable" in text and "GFLOPs" in text


def test_plugins_lists_builtins_with_all():
    rows = json.loads(invoke("plugins", "--all", "--json"))
    assert {r["name"] for r in rows} >= {"zoo.builtin.attention", "zoo.builtin.presets"}
    assert all(r["error"] is None for r in rows)
    assert "no third-party plugins" in invoke("plugins")


def test_unknown_model_is_a_clean_error_in_a_real_process():
    proc = subprocess.run([sys.executable, "-m", "zoo", "info", "glamor_nett"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "error: Unknown model 'glamor_nett'. Did you mean 'glamor_net'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [["--help"], ["list", "--help"]])
def test_help(args):
    assert "Usage" in invoke(*args)


def test_cli_log_lines_go_to_the_stderr_of_the_moment_not_the_one_the_handler_was_made_with():
    """An in-process command (typer's runner, a notebook) swaps stderr: a log handler that kept the old stream
    wrote "--- Logging error --- I/O operation on closed file" instead of the line."""
    import contextlib
    import io
    import logging

    from zoo.cli.common import configure_logging

    logger = logging.getLogger("zoo")
    before = list(logger.handlers), logger.level
    logger.handlers = []
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            configure_logging()  # made while stderr is a stream that is then closed
        with contextlib.redirect_stderr(io.StringIO()) as now:
            logging.getLogger("zoo.cli.predict").info("model: x (the default), face only")
        assert now.getvalue() == "model: x (the default), face only\n"
    finally:
        logger.handlers, _ = before
        logger.setLevel(before[1])


def test_predict_help_names_the_default_model(run_cli):
    """The help text names the model ``zoo-cli predict`` uses without ``--model`` (it once still said FER2013)."""
    from zoo.inference.defaults import DEFAULT_MODEL

    code, out, _ = run_cli(["predict", "--help"])
    assert code == 0 and DEFAULT_MODEL in " ".join(out.replace("│", " ").split())
