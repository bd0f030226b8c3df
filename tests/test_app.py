"""The web app (``zoo-cli serve``): the analysis and drawings without Gradio, then the real page on
127.0.0.1 driven over HTTP by ``gradio_client`` (skipped only when the ``app`` extra is not installed).

The photo is scikit-image's astronaut (public domain, ships inside scikit-image) placed twice on a generated
canvas, so the Haar detector finds two faces; the models are tiny (32² faces, 48² contexts).
"""

from __future__ import annotations

import importlib.util
import socket

import numpy as np
import pytest
import torch
from PIL import Image

import zoo
from zoo.apps.webapp import (
    AppError,
    analyse,
    context_window,
    example_images,
    find_model_dirs,
    is_untrained,
    model_choices,
    render_attention,
    render_bars,
    render_faces,
)

TINY = {"backbone_args": {"channels": [8, 8, 16, 16, 16]},
        "data": {"face_size": [32, 32], "context_size": [48, 48], "context_resize": [56, 64]}}
HAS_APP = all(importlib.util.find_spec(m) for m in ("gradio", "gradio_client"))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    pytest.importorskip("skimage", reason="the example photos come from scikit-image (test and app extras)")
    return example_images(tmp_path_factory.mktemp("examples"))


@pytest.fixture(scope="module")
def tiny_model():
    return zoo.create("glamor_net", **TINY).eval()


def test_analyse_finds_both_faces_and_matches_the_model(photos, tiny_model):
    single, pair = photos
    analysis = analyse(pair, tiny_model, detector="haar")
    assert analysis.image.size == (900, 420)
    assert len(analysis.faces) == 2
    centres = sorted((f.box[0] + f.box[2]) / 2 for f in analysis.faces)
    assert centres[0] < 450 < centres[1]  # one face in each half of the generated scene
    from zoo import data as zdata

    for face in analysis.faces:
        assert face.label in tiny_model.label_names
        assert sum(face.probs.values()) == pytest.approx(1.0, abs=1e-5)
        assert face.attention.shape == (3, 3) and face.attention.sum() == pytest.approx(1.0, abs=1e-5)
        assert sum(face.fusion_weights) == pytest.approx(1.0, abs=1e-5)
        # the numbers are the model's on zoo.data.preprocess's inputs (the predict / training pipeline)
        x = zdata.preprocess(analysis.image, face.box, tiny_model.config.data, streams="both")
        with torch.no_grad():
            out = tiny_model(face=x["face"][None], context=x["context"][None])
        np.testing.assert_allclose(list(face.probs.values()), out.probs[0].numpy(), atol=1e-5)
        np.testing.assert_allclose(face.attention, out.attention[0].numpy(), atol=1e-5)
    assert len(analyse(single, tiny_model, detector="haar").faces) == 1


def test_drawings(photos, tiny_model):
    analysis = analyse(photos[1], tiny_model, detector="haar")
    boxed = np.asarray(render_faces(analysis))
    assert boxed.shape == (420, 900, 3)
    x1, y1, x2, y2 = (round(v) for v in analysis.faces[0].box)
    assert tuple(boxed[(y1 + y2) // 2, x1]) == (0x1F, 0x77, 0xB4)  # face #1's box edge in its colour
    bars = render_bars(analysis)
    assert bars.width > 300 and bars.height > 150
    heat = np.asarray(render_attention(analysis, analysis.faces[0], tiny_model.config.data))
    assert heat.shape == (420, 900, 3)
    wx1, wy1, wx2, wy2 = context_window((900, 420), tiny_model.config.data)
    inside, outside = heat[int(wy1) + 5, int(wx1) + 5], heat[2, 2]
    assert inside.astype(int).sum() != outside.astype(int).sum()


def test_context_window_is_the_eval_centre_crop():
    cfg = zoo.create("glamor_net").config.data  # 128×171 resize, 112² centre crop: rows 8:120, cols 29:141
    assert context_window((171, 128), cfg) == pytest.approx((29, 8, 141, 120))
    assert context_window((342, 256), cfg) == pytest.approx((58, 16, 282, 240))


def test_untrained_flag_model_dirs_and_choices(tmp_path, tiny_model):
    assert is_untrained(tiny_model)
    saved = zoo.save_pretrained(tiny_model, tmp_path / "runs" / "a" / "best")
    (tmp_path / "runs" / "notes").mkdir()
    assert find_model_dirs(tmp_path / "runs") == [saved]
    assert not is_untrained(zoo.create(f"local-dir:{saved}"))
    assert model_choices("glamor_net", [tmp_path / "runs"]) == ["glamor_net", "fer_cnn.fer2013_expw", "fer_cnn.expw",
                                                          "fer_cnn.fer2013", "glamor_fer_cnn.expw", f"local-dir:{saved}"]
    with pytest.raises(AppError, match="no such directory"):
        find_model_dirs(tmp_path / "missing")


def test_context_only_model_without_a_face_classifies_the_scene(tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (120, 90), (40, 90, 160)).save(blank)
    model = zoo.create("caer_net_s", streams="context", attention="ca", **TINY).eval()
    analysis = analyse(blank, model, detector="haar")
    assert analysis.whole_scene and len(analysis.faces) == 1
    assert analysis.faces[0].box == (0, 0, 120, 90)
    assert analyse(blank, zoo.create("glamor_net", **TINY).eval(), detector="haar").faces == []


def test_missing_gradio_is_a_clear_error(monkeypatch):
    import sys

    from zoo.apps.webapp import build_app

    monkeypatch.setitem(sys.modules, "gradio", None)
    with pytest.raises(AppError, match=r"pip install 'emotion-zoo\[app\]'"):
        build_app()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_command_passes_its_options(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import zoo.apps.webapp
    import zoo.cli

    calls = []
    monkeypatch.setattr(zoo.apps.webapp, "serve", lambda *args, **kwargs: calls.append((args, kwargs)))
    result = CliRunner().invoke(zoo.cli.app, ["serve", "--model", "local-dir:x", "--port", "7999", "--models-dir",
                                              str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert calls == [(("local-dir:x",), {"host": "127.0.0.1", "port": 7999, "models_dirs": [tmp_path],
                                          "device": "auto", "block": True})]


@pytest.mark.skipif(not HAS_APP, reason="the app extra is not installed: pip install -e '.[app]'")
@pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")  # pandas 3 deprecations inside Gradio's queue
def test_page_over_http(tmp_path, photos, tiny_model, monkeypatch):
    """Start the page on 127.0.0.1 and call it the way the browser does, through gradio_client."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    from gradio_client import Client, handle_file

    from zoo.apps.webapp import serve

    model_dir = zoo.save_pretrained(tiny_model, tmp_path / "models" / "tiny")
    name = f"local-dir:{model_dir}"
    port = _free_port()
    demo = serve(model=name, host="127.0.0.1", port=port, models_dirs=[tmp_path / "models"], block=False,
                 examples_dir=tmp_path / "examples")
    try:
        assert demo.local_url.startswith(f"http://127.0.0.1:{port}")
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(tmp_path / "downloads"))
        status, faces_png, bars_png, gallery, details = client.predict(
            handle_file(photos[1]), name, "haar", 0, api_name="/analyse")
        expected = analyse(photos[1], tiny_model, detector="haar")
        assert "2 faces" in status and "Untrained" not in status
        assert details["model"] == name and details["untrained"] is False
        assert details["image_size"] == [900, 420]
        assert [f["label"] for f in details["faces"]] == [f.label for f in expected.faces]
        for got, want in zip(details["faces"], expected.faces, strict=True):
            assert got["box"] == pytest.approx(list(want.box), abs=0.1)
            assert list(got["probs"].values()) == pytest.approx(list(want.probs.values()), abs=1e-3)
            assert got["fusion_weights"] == pytest.approx(want.fusion_weights, abs=1e-3)
        returned = np.asarray(Image.open(faces_png).convert("RGB"))
        np.testing.assert_array_equal(returned, np.asarray(render_faces(expected)))
        assert Image.open(bars_png).width > 300
        assert len(gallery) == 2 and "context attention (gla)" in gallery[0]["caption"]
        assert Image.open(gallery[0]["image"]).size == (900, 420)

        # an untrained preset typed into the picker is flagged on the page
        status, *_, details = client.predict(handle_file(photos[0]), "glamor_net", "haar", 0, api_name="/analyse")
        assert "Untrained model" in status and details["untrained"] is True
        assert len(details["faces"]) == 1
    finally:
        demo.close()


def test_bad_serve_values_are_one_error_line_before_the_page_starts(run_cli):
    from zoo.apps.webapp import ModelCache

    for args, needle in ((["--port", "99999"], "must be a TCP port 1..65535, got 99999"),
                         (["--port", "-1"], "got -1"), (["--max-upload-mb", "nan"], "--max-upload-mb"),
                         (["--model", "bogus_model"], "bogus_model")):
        code, _, err = run_cli(["serve", *args])
        assert code == 1 and err.startswith("error:") and needle in err and "Traceback" not in err, (args, err)
    for name in (None, 5, "  "):  # a request without a model name (the API allows any JSON)
        with pytest.raises(AppError, match="No model chosen"):
            ModelCache(device="cpu").get(name)


@pytest.mark.skipif(not HAS_APP, reason="the app extra is not installed: pip install -e '.[app]'")
@pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")
def test_uploads_have_a_size_limit_and_are_deleted_when_the_page_stops(tmp_path, photos, tiny_model, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    from gradio_client import Client, handle_file

    from zoo.apps.webapp import serve

    name = f"local-dir:{zoo.save_pretrained(tiny_model, tmp_path / 'm')}"
    port = _free_port()
    demo = serve(model=name, host="127.0.0.1", port=port, block=False, examples_dir=tmp_path / "examples",
                 max_upload_mb=0.05)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(tmp_path / "downloads"))
        big = tmp_path / "big.png"
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)).save(big)
        assert big.stat().st_size > 50_000
        with pytest.raises(Exception, match="(?i)file size|too large|exceed"):
            client.predict(handle_file(str(big)), name, "haar", 0, api_name="/analyse")
        small = tmp_path / "small.png"
        Image.open(photos[0]).convert("RGB").resize((90, 60)).save(small)
        client.predict(handle_file(str(small)), name, "haar", 0, api_name="/analyse")
        assert any(p.is_file() for p in (tmp_path / "gradio").rglob("*"))  # the upload, while the page runs
    finally:
        demo.close()
    assert not any(p.is_file() and p.name.startswith("small") for p in (tmp_path / "gradio").rglob("*"))
