"""The built wheel carries the bundled models: install it into a fresh virtual environment (no network,
no access to this checkout; its dependencies are those of the interpreter running the tests, whether that is a
venv or the system's) and predict with each ``zoo.create("<preset>.<tag>", pretrained=True)`` and the default model."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def see_running_site_packages(python: Path) -> None:
    """Let the venv of ``python`` import the dependencies of the interpreter running the tests (torch, PIL, ...).

    ``venv --system-site-packages`` links to the *base* interpreter, which lacks them when the tests run in a
    virtual environment; a ``.pth`` file in the new venv listing this interpreter's site-packages works for a venv
    and the system interpreter alike. Listed after the new venv's own site-packages, so the wheel's ``zoo`` is
    found first; their ``.pth`` files are not run, so an editable install of this checkout cannot shadow it."""
    import site

    dirs = [*site.getsitepackages(), *([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])]
    dirs = [d for d in dict.fromkeys(dirs) if Path(d).is_dir()]
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    (Path(purelib) / "zoo_test_running_site_packages.pth").write_text("".join(f"{d}\n" for d in dirs))


def packaged_models() -> list[str]:
    """Every ``preset.tag`` whose weights ship as package data."""
    from zoo.registry.plugins import get_preset, list_models

    return [f"{name}.{cfg.tag}" for name in list_models() for cfg in get_preset(name).pretrained if cfg.file]


@pytest.mark.skipif(not (REPO / "pyproject.toml").is_file(), reason="needs the source checkout")
def test_wheel_ships_the_bundled_models_and_they_predict_offline(tmp_path):
    from zoo.inference.defaults import DEFAULT_MODEL

    bundled = packaged_models()
    assert DEFAULT_MODEL in bundled and {"fer_cnn.fer2013", "fer_cnn.expw", "fer_cnn.fer2013_expw", "glamor_fer_cnn.expw"} <= set(bundled)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(REPO)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    from zoo.version import __version__

    wheel = next((tmp_path / "dist").glob(f"emotion_zoo-{__version__}-*.whl"))  # pyproject reads zoo.version
    names = zipfile.ZipFile(wheel).namelist()
    for name in bundled:
        packaged = {Path(n).name for n in names if n.startswith(f"zoo/pretrained/{name}/")}
        assert {"README.md", "config.json", "model.safetensors"} <= packaged <= {
            "README.md", "config.json", "model.safetensors", "release.json"}, (name, packaged)
        assert zipfile.ZipFile(wheel).getinfo(f"zoo/pretrained/{name}/model.safetensors").file_size <= 10_000_000

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed",
                              str(wheel)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    see_running_site_packages(python)
    script = f"""
import sys, warnings
import numpy as np
from PIL import Image
import zoo
assert zoo.__file__.startswith({str(venv)!r}), zoo.__file__
warnings.simplefilter("error")
rng = np.random.default_rng(0)
Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save("photo.png")
for name in {bundled!r}:
    model = zoo.create(name, pretrained=True)
    assert model.pretrained_cfg["source"] == "package", model.pretrained_cfg
    face = zoo.predict(["photo.png"], model=model, boxes=[[(40, 20, 88, 68)]])[0]["faces"][0]
    assert face["label"] in model.label_names and abs(sum(face["probs"].values()) - 1) < 1e-4
    print("ok", name, face["label"], model.config.uses_context)
default = zoo.predict(["photo.png"], boxes=[[(40, 20, 88, 68)]])[0]["faces"][0]
print("default", {DEFAULT_MODEL!r}, default["label"])
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    run = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert [line.split()[1] for line in lines if line.startswith("ok")] == bundled
    assert lines[-1].startswith(f"default {DEFAULT_MODEL}")
