"""``zoo-cli serve``: a Gradio page where anyone drops a photo and sees each face's emotion and where the
model looked.

The page takes an upload, a webcam shot or an example photo, finds the faces, and shows

* the photo with every face boxed and labelled,
* one bar chart of class probabilities per face (with the face/context fusion weights ``[w_f, w_c]`` of
  adaptive fusion, GLAMOR-Net eq. 5 / CAER-Net-S §3.3),
* for context models, each face's context attention map (CA: Lee et al., ICCV 2019, §3.2; GLA: Le et al.,
  Neural Comput. & Appl. 2022, eq. 2–4) laid over the scene it was computed on,
* the raw numbers as JSON.

A model picker lists the preset tags with published weights, the model directories found under
``--models-dir`` and the ``--model`` given; any name ``zoo.create`` takes can be typed in. A model that was
built without loaded weights is flagged *untrained* on the page.

The analysis (:func:`analyse`) and the drawings (:func:`render_faces`, :func:`render_bars`,
:func:`render_attention`) need no Gradio; only :func:`build_app` / :func:`serve` import it
(``pip install 'emotion-zoo[app]'``). The inputs are prepared by the same ``zoo.data`` functions as
``zoo.predict`` and training (``load_image``, ``detect_faces``, ``preprocess``). Nothing here reaches the
internet: Gradio's analytics and version check are switched off and the page uses the fonts Gradio ships.
"""

from __future__ import annotations

import inspect
import os
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from zoo import data as zdata
from zoo.data.boxes import as_face_box
from zoo.data.detection import AUTO, resolve_detector_name
from zoo.errors import UntrainedModelWarning, ZooError
from zoo.inference.loading import create_for_inference
from zoo.inference.predict import predict
from zoo.inference.results import FaceResult as SchemaFace
from zoo.registry.plugins import list_components
from zoo.runtime import resolve_device
from zoo.viz import COLOURS, DISPLAY_SIDE, attention_panel, context_window, draw_face_boxes, probability_bars  # noqa: F401  (this module's names before zoo.viz had them)
from zoo.weights.files import CONFIG_NAME, WEIGHTS_NAME

#: environment that keeps Gradio and huggingface_hub from calling home (set before gradio is imported)
OFFLINE_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1", "GRADIO_SSR_MODE": "False"}


class AppError(ZooError):
    """A request the page cannot serve (no such model, unreadable photo); shown to the user as is."""


@dataclass
class FaceResult:
    """One face: its number (from 0, as in every result), box in image pixels, detector score, label,
    probabilities, MTCNN's five landmarks (or None) and, for context models, the attention map over the
    context cells and the fusion weights. :meth:`as_dict` is the face of the shared result schema
    (:class:`zoo.inference.results.FaceResult`, docs/prediction.md)."""

    face: int
    box: tuple[float, float, float, float]
    detector_score: float | None
    label: str
    probability: float
    probs: dict[str, float]
    fusion_weights: list[float] | None = None
    attention: np.ndarray | None = None
    landmarks: tuple[tuple[float, float], ...] | None = None

    def as_dict(self, whole_scene: bool = False) -> dict[str, Any]:
        d = SchemaFace(
            face=self.face, box=None if whole_scene else tuple(round(v, 1) for v in self.box),
            detector_score=None if self.detector_score is None else round(self.detector_score, 4),
            label=self.label, probability=round(self.probability, 4),
            probs={k: round(v, 4) for k, v in self.probs.items()},
            landmarks=None if self.landmarks is None else tuple((round(x, 1), round(y, 1)) for x, y in self.landmarks),
            fusion_weights=None if self.fusion_weights is None else tuple(round(w, 4) for w in self.fusion_weights),
        ).to_json()
        if self.attention is not None:
            d["attention_shape"] = list(self.attention.shape)
        return d


@dataclass
class Analysis:
    """Everything :func:`analyse` found in one photo."""

    image: Image.Image
    faces: list[FaceResult]
    detector: str
    seconds: float
    #: the whole scene was classified without a face box (a context-only model on a photo with no face)
    whole_scene: bool = False
    notes: list[str] = field(default_factory=list)


def default_detector() -> str:
    """``zoo.predict``'s default detector when it is a registered one, else the first of mtcnn / haar."""

    names = list_components("face_detector").get("face_detector", [])
    default = inspect.signature(predict).parameters["detector"].default
    if isinstance(default, str) and default in names:
        return default
    for name in ("mtcnn", "haar"):
        if name in names:
            return name
    if not names:
        raise AppError("No face detector is registered; the built-in 'haar' needs opencv-python-headless.")
    return names[0]


@torch.no_grad()
def analyse(image: Image.Image | str | os.PathLike, model: torch.nn.Module, detector: str | None = None,
            min_score: float | None = None, max_faces: int = 12) -> Analysis:
    """Detect the faces in ``image`` and classify each one with ``model`` (an ``EmotionModel``).

    The inputs are built exactly as ``zoo.predict`` builds them (``zoo.data.preprocess`` with the model's
    ``DataConfig``). At most ``max_faces`` faces (the detector's best) are classified.
    """

    start = time.perf_counter()
    if not isinstance(image, Image.Image):
        image = zdata.load_image(image)
    elif image.mode != "RGB":
        from zoo.data.images import to_rgb

        image = to_rgb(image)
    detector = resolve_detector_name(detector or default_detector())
    cfg = model.config
    boxes = zdata.detect_faces(image, detector=detector, min_score=min_score)
    notes = []
    if len(boxes) > max_faces:
        notes.append(f"{len(boxes)} faces found; the {max_faces} with the highest detector scores are shown.")
        boxes = boxes[:max_faces]
    whole_scene = False
    if not boxes and cfg.streams == "context":
        whole_scene, boxes = True, [None]
        notes.append("No face found: the context-only model classified the whole, unmasked scene.")
    faces: list[FaceResult] = []
    if boxes:
        device = next(model.parameters()).device
        inputs = [zdata.preprocess(image, b, cfg.data, train=False, streams=cfg.streams) for b in boxes]
        face = torch.stack([x["face"] for x in inputs]).to(device) if cfg.uses_face else None
        context = torch.stack([x["context"] for x in inputs]).to(device) if cfg.uses_context else None
        output = model(face=face, context=context)
        probs = output.probs.cpu()
        names = model.label_names
        for i, b in enumerate(boxes):
            box = as_face_box(b)
            x1, y1, x2, y2, score = (box.x1, box.y1, box.x2, box.y2, box.score) if box else (0, 0, *image.size, None)
            top = int(probs[i].argmax())
            faces.append(FaceResult(
                face=i, box=(x1, y1, x2, y2), detector_score=score, label=names[top], probability=float(probs[i, top]),
                probs={n: float(p) for n, p in zip(names, probs[i].tolist(), strict=True)},
                fusion_weights=None if output.fusion_weights is None else output.fusion_weights[i].float().tolist(),
                attention=None if output.attention is None else output.attention[i].float().cpu().numpy(),
                landmarks=getattr(box, "landmarks", None),
            ))
    return Analysis(image, faces, detector, time.perf_counter() - start, whole_scene, notes)


# ------------------------------------------------------------------------------------------------ drawing


def render_faces(analysis: Analysis) -> Image.Image:
    """The photo with each face boxed in its colour and tagged ``#i Label 62%`` (:func:`zoo.viz.draw_face_boxes`,
    the drawing of ``zoo-cli predict --save-vis`` too)."""
    return draw_face_boxes(analysis.image, analysis.faces, boxes=not analysis.whole_scene)


def render_bars(analysis: Analysis, max_faces: int = 8) -> Image.Image | None:
    """One horizontal bar chart of class probabilities per face, in the face's colour (None: no face)."""
    return probability_bars(analysis.faces, max_faces=max_faces)


def render_attention(analysis: Analysis, face: FaceResult, data_config) -> Image.Image:
    """The photo, dimmed, with ``face``'s context attention map over the window the context stream sees
    (:func:`zoo.viz.attention_panel`)."""
    return attention_panel(analysis.image, face, face.attention, data_config, box=not analysis.whole_scene)


# ------------------------------------------------------------------------------------------------- models


def is_untrained(model: torch.nn.Module) -> bool:
    """True when no weights were loaded into ``model`` (no Hub/local source, checkpoint or backbone init)."""
    return not getattr(model, "pretrained_cfg", None)


def find_model_dirs(root: str | os.PathLike, max_depth: int = 3) -> list[Path]:
    """Directories under ``root`` (itself included) holding ``config.json`` + ``model.safetensors``."""

    root = Path(root)
    found = []
    if not root.is_dir():
        raise AppError(f"--models-dir {root}: no such directory.")
    for dirpath, dirnames, filenames in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        if depth >= max_depth:
            dirnames[:] = []
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if CONFIG_NAME in filenames and WEIGHTS_NAME in filenames:
            found.append(Path(dirpath))
    return found


def model_choices(model: str | None = None, models_dirs: list[str | os.PathLike] = ()) -> list[str]:
    """The picker's names: ``model``, the default model, the other preset tags with published weights, then
    ``local-dir:`` models."""
    import zoo
    from zoo.inference.defaults import DEFAULT_MODEL

    names = [model] if model else []
    names += [DEFAULT_MODEL, *zoo.list_models(pretrained=True)]
    for root in models_dirs:
        names += [f"local-dir:{d}" for d in find_model_dirs(root)]
    return list(dict.fromkeys(names))


class ModelCache:
    """Created models by name (the ``keep`` most recently used), built once, in eval mode."""

    def __init__(self, keep: int = 3, device: str = "auto") -> None:
        self.keep = keep

        self.device = resolve_device(device)
        self._models: OrderedDict[str, torch.nn.Module] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str) -> torch.nn.Module:
        import warnings


        name = name.strip() if isinstance(name, str) else ""
        if not name:
            raise AppError("No model chosen: pick one in the model list or type a name (preset, local-dir:DIR).")
        with self._lock:
            if name in self._models:
                self._models.move_to_end(name)
                return self._models[name]
            with warnings.catch_warnings():  # the page says "Untrained model" itself
                warnings.simplefilter("ignore", UntrainedModelWarning)
                # a preset with published weights loads them, as zoo-cli predict does
                model = create_for_inference(name, allow_untrained=True).to(self.device).eval()
            self._models[name] = model
            while len(self._models) > self.keep:
                self._models.popitem(last=False)
            return model


def describe_model(name: str, model: torch.nn.Module) -> str:
    cfg = model.config
    parts = {"both": "face + context", "face": "face only", "context": "context only"}[cfg.streams]
    bits = [parts, f"backbone {cfg.backbone}"]
    if cfg.uses_context:
        bits.append(f"attention {cfg.attention}")
    if cfg.streams == "both":
        bits.append(f"fusion {cfg.fusion}")
    return f"`{name}` ({', '.join(bits)})"


UNTRAINED_NOTE = ("⚠️ **Untrained model.** `{name}` has random weights: no pretrained weights, model directory or "
                  "checkpoint was loaded, so its emotions and attention maps are meaningless. Pick a trained "
                  "model (`local-dir:DIR`, a pretrained tag) to see real predictions.")


def example_images(directory: str | os.PathLike) -> list[str]:
    """Example photos written into ``directory``: scikit-image's astronaut (NASA, public domain) and a
    generated two-person scene made from it. Empty when scikit-image is not installed."""
    try:
        from skimage import data as skdata
    except ImportError:
        return []
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    astronaut = Image.fromarray(skdata.astronaut())
    single = directory / "astronaut.jpg"
    astronaut.save(single, quality=92)
    pair = Image.new("RGB", (900, 420), (214, 220, 228))
    left = astronaut.resize((400, 400), Image.Resampling.LANCZOS)
    right = astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT).resize((330, 330), Image.Resampling.LANCZOS)
    pair.paste(left, (20, 10))
    pair.paste(right, (540, 70))
    double = directory / "two_people.jpg"
    pair.save(double, quality=92)
    return [str(single), str(double)]


# ---------------------------------------------------------------------------------------------------- page


def run_request(cache: ModelCache, image_path: str | None, model_name: str, detector: str,
                min_score: float | None) -> tuple[str, Image.Image | None, Image.Image | None,
                                                 list[tuple[Image.Image, str]], dict[str, Any]]:
    """One page request: (status markdown, boxed photo, bars, attention gallery, details JSON)."""
    if not image_path:
        raise AppError("No photo: upload one, take a webcam shot or click an example.")
    model = cache.get(model_name)
    analysis = analyse(image_path, model, detector=detector or None, min_score=min_score)
    cfg = model.config
    lines = []
    if is_untrained(model):
        lines.append(UNTRAINED_NOTE.format(name=model_name))
    count = len(analysis.faces)
    found = "the whole scene" if analysis.whole_scene else f"{count} face{'s' if count != 1 else ''}"
    lines.append(f"**Model** {describe_model(model_name, model)} · **detector** `{analysis.detector}` · "
                 f"{found} · {analysis.seconds:.2f} s")
    if not analysis.faces:
        lines.append("No face was found. Try another photo, another detector or a lower minimum score.")
    lines += analysis.notes
    gallery = []
    if cfg.uses_context and analysis.faces and analysis.faces[0].attention is not None:
        for face in analysis.faces[:6]:
            gallery.append((render_attention(analysis, face, cfg.data),
                            f"#{face.face} {face.label}: context attention ({cfg.attention})"))
    details = {
        "model": model_name, "untrained": is_untrained(model), "label_names": list(model.label_names),
        "tag": (getattr(model, "pretrained_cfg", None) or {}).get("tag"),
        "width": analysis.image.size[0], "height": analysis.image.size[1],  # as zoo.predict's frames
        "detector": analysis.detector, "image_size": list(analysis.image.size), "whole_scene": analysis.whole_scene,
        "faces": [f.as_dict(analysis.whole_scene) for f in analysis.faces],
    }
    return "\n\n".join(lines), render_faces(analysis), render_bars(analysis), gallery, details


def _require_gradio():
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    try:
        import gradio as gr
    except ImportError as exc:
        raise AppError("The web app needs Gradio: pip install 'emotion-zoo[app]'.") from exc
    return gr


def build_app(model: str | None = None, models_dirs: list[str | os.PathLike] = (),
              examples_dir: str | os.PathLike | None = None, device: str = "auto"):
    """The Gradio ``Blocks`` page. ``model`` is preselected (default: the first pretrained tag or model
    directory, else the untrained ``glamor_net``); ``examples_dir`` receives the example photos."""
    cache = ModelCache(device=device)
    if model is not None:
        cache.get(model)  # a model that cannot load is an error now, not on the first request
    gr = _require_gradio()

    choices = model_choices(model, models_dirs)
    if not choices:
        choices = ["glamor_net"]
    selected = model or choices[0]
    # "auto" (MTCNN when its weights are present, else Haar) as zoo.predict and zoo-cli predict take it
    detectors = [AUTO, *list_components("face_detector").get("face_detector", [])]
    examples_dir = Path(examples_dir or tempfile.mkdtemp(prefix="emotion-zoo-examples-"))
    examples = example_images(examples_dir)

    def on_analyse(image_path, model_name, detector, min_score):
        try:
            return run_request(cache, image_path, model_name, detector,
                               None if min_score is None or min_score <= 0 else float(min_score))
        except ZooError as exc:
            raise gr.Error(str(exc)) from exc

    # uploads older than an hour are deleted every 10 minutes, and all of this page's files when it stops
    with gr.Blocks(title="emotion-zoo", analytics_enabled=False, delete_cache=UPLOAD_CLEANUP) as demo:
        gr.Markdown(
            "# emotion-zoo: emotions from faces and their context\n"
            "Drop a photo: every face is found, boxed and classified. For context models (CAER-Net-S, GLAMOR-Net) "
            "the heat maps show where in the scene the model looked for each face, and the bars' titles give the "
            "face/context fusion weights."
        )
        with gr.Row():
            with gr.Column(scale=2):
                image_in = gr.Image(type="filepath", sources=["upload", "webcam", "clipboard"], label="photo",
                                    elem_id="photo")
                model_in = gr.Dropdown(choices=choices, value=selected, allow_custom_value=True, label="model",
                                       info="a pretrained tag, local-dir:DIR or hf-hub:ORG/NAME", elem_id="model")
                with gr.Row():
                    detector_in = gr.Dropdown(choices=detectors, value=AUTO, label="face detector",
                                              elem_id="detector")
                    score_in = gr.Number(value=0, label="minimum detector score (0 = the detector's own)",
                                         elem_id="min-score")
                button = gr.Button("Analyse", variant="primary", elem_id="analyse")
                if examples:
                    gr.Examples(examples=[[p] for p in examples], inputs=[image_in], label="example photos")
            with gr.Column(scale=3):
                status = gr.Markdown(elem_id="status")
                faces_out = gr.Image(type="pil", label="faces", elem_id="faces", format="png")
                bars_out = gr.Image(type="pil", label="emotion per face", elem_id="bars", format="png")
                attention_out = gr.Gallery(label="context attention per face (context models)", columns=2,
                                           rows=1, height=330, object_fit="contain", elem_id="attention", format="png")
                with gr.Accordion("details (JSON)", open=False):
                    details_out = gr.JSON(label="details", elem_id="details")
        outputs = [status, faces_out, bars_out, attention_out, details_out]
        inputs = [image_in, model_in, detector_in, score_in]
        # the attention panel is shown only when the model has a context attention map
        show_attention = dict(fn=lambda details: gr.update(visible=any("attention_shape" in f for f in
                                                                       (details or {}).get("faces", []))),
                              inputs=details_out, outputs=attention_out, api_name=False)
        button.click(on_analyse, inputs, outputs, api_name="analyse").then(**show_attention)
        image_in.upload(on_analyse, inputs, outputs, api_name=False).then(**show_attention)
    demo.zoo_examples_dir = examples_dir
    return demo


#: the largest upload the page accepts, in MB (``zoo-cli serve --max-upload-mb``)
MAX_UPLOAD_MB = 20.0
#: Gradio's ``delete_cache``: every 600 s, delete this page's files older than 3600 s (all of them at shutdown)
UPLOAD_CLEANUP = (600, 3600)


def serve(model: str | None = None, host: str = "127.0.0.1", port: int | None = None,
          models_dirs: list[str | os.PathLike] = (), device: str = "auto", block: bool = True,
          examples_dir: str | os.PathLike | None = None, max_upload_mb: float = MAX_UPLOAD_MB):
    """Start the page on ``host:port`` (``port=None``: Gradio picks a free one from 7860 on).

    ``block=False`` returns the running ``Blocks`` at once (``demo.close()`` stops it); ``demo.local_url``
    is its address. Uploads over ``max_upload_mb`` are refused; uploads are deleted after an hour and when the
    page stops. ``model`` is loaded before the page starts, so a bad name is an error at once.
    """
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
        raise AppError(f"port (--port) must be a TCP port 1..65535, got {port!r}.")
    if (isinstance(max_upload_mb, bool) or not isinstance(max_upload_mb, (int, float))
            or not 0 < max_upload_mb <= 10_000):
        raise AppError(f"max_upload_mb (--max-upload-mb) must be a number of MB in (0, 10000], got {max_upload_mb!r}.")
    demo = build_app(model, models_dirs, examples_dir=examples_dir, device=device)
    demo.queue(default_concurrency_limit=1)
    demo.launch(server_name=host, server_port=port, share=False, inbrowser=False, prevent_thread_lock=not block,
                quiet=False, ssr_mode=False, mcp_server=False, pwa=False, show_error=True,
                max_file_size=int(max_upload_mb * 1_000_000),
                allowed_paths=[str(demo.zoo_examples_dir)], footer_links=["api", "settings"])
    return demo
