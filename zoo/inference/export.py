"""Export a model to ONNX, TorchScript, a ``torch.export`` program, or timm's own directory layout.

:class:`ExportableModel` is the tensor-only view of an :class:`zoo.models.model.EmotionModel`: it takes the inputs
the model uses as positional tensors (``face``, ``context``, normalised as ``model.config.data`` says) and
returns a tuple of named tensors, ``logits``, ``probs`` and, where the model has them, ``attention``
(B×h×w over the context cells) and ``fusion_weights`` (B×2, ``[w_f, w_c]``). The ``EmotionOutput``
dataclass never reaches the exporters.

Every exported file records what a user needs to run it without emotion-zoo: input and output names,
label names, input sizes, mean and std (ONNX ``metadata_props``; an ``emotion_zoo.json`` extra file inside
TorchScript and ``torch.export`` archives). :func:`export_model` runs the exported file on the example
inputs and reports its largest difference from PyTorch.

The timm layout (:func:`export_timm`) is ``config.json`` (``architecture``, ``num_classes``,
``label_names``, ``pretrained_cfg``, ``model_args``) + ``model.safetensors`` holding the *whole* timm model's
state dict, so ``timm.create_model("local-dir:DIR", pretrained=True)`` rebuilds it with no emotion-zoo
installed. It exists only for face-only models whose encoder is a timm model and whose head is timm's
classifier (global average pooling + one Linear); it is checked numerically before it is written.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.errors import ZooError
from zoo.models.components.backbones import TimmFeatures
from zoo.names import split_model_name_tag
from zoo.version import __version__

FORMATS = ("onnx", "torchscript", "exported-program", "timm")
#: the outputs an exported graph can have, in this order
OUTPUT_NAMES = ("logits", "probs", "attention", "fusion_weights")
#: the name of the metadata file inside TorchScript / torch.export archives
METADATA_NAME = "emotion_zoo.json"
DEFAULT_EXTENSIONS = {"onnx": ".onnx", "torchscript": ".pt", "exported-program": ".pt2"}


class ExportError(ZooError):
    """An export that cannot be done; the message says why and what to use instead."""


class ExportableModel(nn.Module):
    """``EmotionModel`` with positional tensor inputs and a tuple of tensor outputs (names in ``output_names``).

    ``output_names`` is found by one forward pass at construction: ``attention`` and ``fusion_weights`` are
    kept only when the model produces them (a face-only model has neither; ``fusion='concat'`` has no
    weights).
    """

    def __init__(self, model: nn.Module, example_inputs: tuple[torch.Tensor, ...] | None = None) -> None:
        super().__init__()
        self.model = model.eval()
        cfg = model.config
        self.input_names = [n for n, used in (("face", cfg.uses_face), ("context", cfg.uses_context)) if used]
        if example_inputs is None:
            example_inputs = example_inputs_for(model)
        with torch.no_grad():
            out = self.model(**dict(zip(self.input_names, example_inputs, strict=True)))
        present = {"logits": True, "probs": True, "attention": out.attention is not None,
                   "fusion_weights": out.fusion_weights is not None}
        self.output_names = [n for n in OUTPUT_NAMES if present[n]]

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(**dict(zip(self.input_names, inputs, strict=True)))
        values = {"logits": out.logits, "probs": out.probs,
                  "attention": out.attention, "fusion_weights": out.fusion_weights}
        return tuple(values[n] for n in self.output_names)


def example_inputs_for(model: nn.Module, batch_size: int = 1, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random normalised inputs of the model's own sizes (``face_size``, ``context_size``), batch first."""
    cfg = model.config
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    inputs = []
    if cfg.uses_face:
        inputs.append(torch.randn(batch_size, 3, *cfg.data.face_size, generator=generator))
    if cfg.uses_context:
        inputs.append(torch.randn(batch_size, 3, *cfg.data.context_size, generator=generator))
    return tuple(x.to(device) for x in inputs)


def export_metadata(model: nn.Module, wrapper: ExportableModel, dynamic_batch: bool, batch_size: int) -> dict:
    """What a runtime needs to feed the exported graph and read its outputs."""

    cfg = model.config
    data = cfg.data
    return {
        "format_version": 1,
        "emotion_zoo_version": __version__,
        "architecture": cfg.architecture,
        "inputs": wrapper.input_names,
        "outputs": wrapper.output_names,
        "label_names": list(model.label_names),
        "face_size": list(data.face_size) if cfg.uses_face else None,
        "context_size": list(data.context_size) if cfg.uses_context else None,
        "context_resize": list(data.context_resize) if cfg.uses_context else None,
        "mean": list(data.mean),
        "std": list(data.std),
        "interpolation": data.interpolation,
        # grey models read one channel repeated three times: an RGB input gives other numbers
        "grayscale": data.grayscale,
        "context_grayscale": data.context_is_grey if cfg.uses_context else None,
        "mask_face_in_context": data.mask_face_in_context,
        "context_mask_fill": data.context_mask_fill if cfg.uses_context else None,
        "batch": "dynamic" if dynamic_batch else batch_size,
    }


@dataclass
class ExportResult:
    """What :func:`export_model` wrote and how far the exported file's outputs are from PyTorch's."""

    path: Path
    format: str
    inputs: list[str]
    outputs: list[str]
    #: largest |exported - PyTorch| per output on the example inputs (empty when not checked)
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    #: why the check was skipped, if it was
    check_skipped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "format": self.format, "inputs": self.inputs, "outputs": self.outputs,
                "max_abs_diff": self.max_abs_diff, "check_skipped": self.check_skipped}


def _dynamic_shapes(wrapper: ExportableModel, dynamic_batch: bool):
    if not dynamic_batch:
        return None
    batch = torch.export.Dim("batch", min=1, max=1024)
    # forward(*inputs): one positional argument (the tuple of inputs) whose items share the batch dimension
    return (tuple({0: batch} for _ in wrapper.input_names),)


def _example_for_export(model: nn.Module, dynamic_batch: bool, batch_size: int) -> tuple[torch.Tensor, ...]:
    # torch.export specialises sizes 0 and 1, so a dynamic batch is traced with batch 2
    return example_inputs_for(model, max(batch_size, 2) if dynamic_batch else batch_size)


def export_model(
    model: nn.Module | str,
    out: str | os.PathLike,
    format: str = "onnx",
    dynamic_batch: bool = False,
    batch_size: int = 1,
    opset: int | None = None,
    check: bool = True,
    allow_untrained: bool = False,
    overwrite: bool = False,
    tolerance: float | None = None,
) -> ExportResult:
    """Write ``model`` (an ``EmotionModel`` or any name ``zoo.create`` takes) to ``out`` in ``format``.

    A name loads trained weights as ``predict`` does (a preset's published weights, ``local-dir:``,
    ``hf-hub:``); a preset without any is refused unless ``allow_untrained``.

    ``format``: ``onnx`` (``torch.onnx.export(dynamo=True)``; needs ``pip install 'emotion-zoo[export]'``),
    ``torchscript`` (``torch.jit.trace``), ``exported-program`` (``torch.export.save``) or ``timm`` (a
    directory, see :func:`export_timm`). ``dynamic_batch`` makes the batch dimension symbolic; otherwise
    the graph is fixed to ``batch_size``. With ``check`` the exported file is loaded back and run on the
    example inputs; the result carries the largest absolute difference from PyTorch per output, and one over
    ``tolerance`` (a finite number >= 0) is an :class:`ExportError` that writes nothing.

    Outputs follow :mod:`zoo.outputs`: ``out`` may not be a file of the model's ``local-dir:`` folder, an existing
    file (a non-empty folder for ``timm``) is replaced only with ``overwrite``, and the file is written under a
    temporary name, renamed into place once every check has passed.
    """
    from zoo.inference.loading import model_files
    from zoo.outputs import check_folder_output, check_output, discard, replace_into, temp_path_for

    if format not in FORMATS:
        raise ExportError(f"Unknown export format {format!r}; choose one of {', '.join(FORMATS)}.")
    if tolerance is not None and (isinstance(tolerance, bool) or not isinstance(tolerance, (int, float))
                                  or not 0 <= tolerance < float("inf")):
        raise ExportError(f"tolerance (--tolerance) must be a finite number >= 0, got {tolerance!r}.")
    if format != "timm" and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ExportError(f"batch_size must be >= 1, got {batch_size}.")
    sources = model_files(model)
    if format == "timm":
        out = check_folder_output(out, inputs=sources, force=overwrite, option="--out")
    else:
        out = check_output(out, inputs=sources, force=overwrite, option="--out")
    if isinstance(model, str):
        from zoo.inference.loading import create_for_inference

        model = create_for_inference(model, allow_untrained=allow_untrained)
    model = model.eval()
    if format == "timm":
        return export_timm(model, out, check=check)
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(out)
    try:
        example = _example_for_export(model, dynamic_batch, batch_size)
        wrapper = ExportableModel(model, example).eval()
        metadata = export_metadata(model, wrapper, dynamic_batch, batch_size)
        with _quiet_exporters():
            if format == "onnx":
                _export_onnx(wrapper, example, temp, dynamic_batch, opset, metadata)
            elif format == "torchscript":
                _export_torchscript(wrapper, example, temp, metadata)
            else:
                _export_program(wrapper, example, temp, dynamic_batch, metadata)
        result = ExportResult(out, format, list(wrapper.input_names), list(wrapper.output_names))
        if check:
            # a dynamic batch is checked at another batch size than the one it was traced with
            inputs = example_inputs_for(model, example[0].shape[0] + 1, seed=1) if dynamic_batch else example
            with torch.no_grad():
                expected = wrapper(*inputs)
            try:
                got = run_exported(temp, inputs, format)
            except ExportError as exc:
                result.check_skipped = str(exc)
            else:
                result.max_abs_diff = {
                    name: float((torch.as_tensor(g).float() - e.float()).abs().max())
                    for name, g, e in zip(wrapper.output_names, got, expected, strict=True)
                }
        worst = max(result.max_abs_diff.values(), default=0.0)
        if tolerance is not None and not worst <= tolerance:
            raise ExportError(f"the exported file differs from PyTorch by {worst:.3g} > --tolerance {tolerance:g}; "
                              f"nothing was written to {out}.")
        replace_into(temp, out)
    except BaseException:
        discard(temp)
        raise
    return result


def _export_onnx(wrapper: ExportableModel, example, out: Path, dynamic_batch: bool, opset: int | None,
                 metadata: dict) -> None:
    missing = [m for m in ("onnx", "onnxscript") if not _importable(m)]
    if missing:
        raise ExportError(
            f"ONNX export needs {' and '.join(missing)} (torch.onnx's exporter): "
            f"pip install 'emotion-zoo[export]'."
        )
    import onnx

    kwargs: dict[str, Any] = {}
    if opset is not None:
        kwargs["opset_version"] = opset
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / out.name
        try:
            program = torch.onnx.export(
                wrapper, example, dynamo=True, input_names=wrapper.input_names,
                output_names=wrapper.output_names, dynamic_shapes=_dynamic_shapes(wrapper, dynamic_batch),
                external_data=False, verbose=False, **kwargs,
            )
        except Exception as exc:  # noqa: BLE001 - the exporter raises many types; say which model failed
            raise ExportError(f"torch.onnx.export could not export {metadata['architecture']!r}: {exc}") from exc
        program.save(str(tmp_path))
        proto = onnx.load(str(tmp_path))
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, json.dumps(value)
        proto.producer_name = "emotion-zoo"
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp_path))
        shutil.move(str(tmp_path), out)


def _export_torchscript(wrapper: ExportableModel, example, out: Path, metadata: dict) -> None:
    with torch.no_grad():
        try:
            traced = torch.jit.trace(wrapper, example, check_trace=False)
        except Exception as exc:  # noqa: BLE001
            raise ExportError(f"torch.jit.trace could not trace {metadata['architecture']!r}: {exc}") from exc
    torch.jit.save(traced, str(out), _extra_files={METADATA_NAME: json.dumps(metadata)})


def _export_program(wrapper: ExportableModel, example, out: Path, dynamic_batch: bool, metadata: dict) -> None:
    try:
        program = torch.export.export(wrapper, example, dynamic_shapes=_dynamic_shapes(wrapper, dynamic_batch))
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"torch.export could not export {metadata['architecture']!r}: {exc}") from exc
    torch.export.save(program, str(out), extra_files={METADATA_NAME: json.dumps(metadata)})


@contextlib.contextmanager
def _quiet_exporters():
    """Silence upstream chatter that is not about the user's model: TorchScript's deprecation notices
    (torch >= 2.10 deprecates torch.jit; ``exported-program`` is its successor) and onnxscript's optimiser
    notes on ops it leaves unfolded."""
    folding = logging.getLogger("onnxscript.optimizer._constant_folding")
    level = folding.level
    folding.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*torch\.jit\..* is deprecated", category=FutureWarning)
            warnings.filterwarnings("ignore", message=r".*axis name: .* will not be used", category=UserWarning)
            yield
    finally:
        folding.setLevel(level)


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def read_metadata(path: str | os.PathLike, format: str | None = None) -> dict[str, Any]:
    """The metadata :func:`export_model` stored in an exported file (ONNX, TorchScript or .pt2)."""
    path = Path(path)
    format = format or _guess_format(path)
    if format == "onnx":
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
        return {p.key: json.loads(p.value) for p in proto.metadata_props}
    extra = {METADATA_NAME: ""}
    if format == "torchscript":
        with _quiet_exporters():
            torch.jit.load(str(path), _extra_files=extra)
    else:
        torch.export.load(str(path), extra_files=extra)
    if not extra[METADATA_NAME]:
        raise ExportError(f"{path}: has no {METADATA_NAME}; it was not written by zoo-cli export.")
    return json.loads(extra[METADATA_NAME])


def _guess_format(path: Path) -> str:
    for format, ext in DEFAULT_EXTENSIONS.items():
        if path.suffix == ext:
            return format
    raise ExportError(f"{path}: cannot tell the format from the extension; pass format= "
                      f"({', '.join(DEFAULT_EXTENSIONS)}).")


def run_exported(path: str | os.PathLike, inputs: tuple[torch.Tensor, ...], format: str | None = None
                 ) -> list[torch.Tensor]:
    """Run an exported file on ``inputs`` (positional, in the order of its ``inputs`` metadata).

    ONNX runs in onnxruntime on the CPU; raises :class:`ExportError` when onnxruntime is not installed.
    """
    path = Path(path)
    format = format or _guess_format(path)
    cpu = [x.detach().cpu() for x in inputs]
    if format == "onnx":
        if not _importable("onnxruntime"):
            raise ExportError("checking an ONNX file needs onnxruntime: pip install 'emotion-zoo[export]'.")
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {i.name: x.numpy() for i, x in zip(session.get_inputs(), cpu, strict=True)}
        return [torch.from_numpy(o) for o in session.run(None, feed)]
    with torch.no_grad(), _quiet_exporters():
        if format == "torchscript":
            outputs = torch.jit.load(str(path), map_location="cpu")(*cpu)
        else:
            outputs = torch.export.load(str(path)).module()(*cpu)
    return list(outputs)


# --------------------------------------------------------------------------------------------- timm layout


def _timm_parts(model: nn.Module) -> tuple[str, dict[str, Any], nn.Linear, str]:
    """(timm model name, its create_model kwargs, the classifier Linear, its state-dict prefix) or an error."""

    cfg = model.config
    if cfg.streams != "face":
        raise ExportError(
            f"timm's layout holds one image classifier; this model has streams={cfg.streams!r}. Only face-only "
            f"models (streams='face') can be written for timm; use --format onnx for the others."
        )
    if not isinstance(model.face_encoder, TimmFeatures):
        raise ExportError(
            f"the face backbone {cfg.backbone!r} is not a timm model, so timm cannot rebuild it; use a 'resnet18' "
            f"or 'timm:<name>' backbone, or --format onnx."
        )
    head = model.classifier
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    if len(linears) != 1:
        raise ExportError(
            f"timm's classifier is one Linear layer after global average pooling; this model's head has "
            f"{len(linears)} Linear layers (head_hidden={cfg.head_hidden}). Build it with head_hidden=None to "
            f"export it for timm, or use --format onnx."
        )
    prefix = "classifier." if isinstance(head, nn.Linear) else f"classifier.{_child_name(head, linears[0])}."
    kwargs = {k: v for k, v in cfg.backbone_args.items()
              if k not in ("pretrained", "features_only", "out_indices", "feature_cls", "output_stride")}
    return model.face_encoder.model_name, kwargs, linears[0], prefix


def _child_name(parent: nn.Module, child: nn.Module) -> str:
    for name, module in parent.named_modules():
        if module is child:
            return name
    raise ExportError("internal: classifier layer not found")  # pragma: no cover


def _map_feature_key(key: str, full_keys: set[str]) -> str | None:
    """A ``features_only`` key -> the full model's key (timm flattens ``stages.0`` into ``stages_0``)."""
    if key in full_keys:
        return key
    first, _, rest = key.partition(".")
    for i, ch in enumerate(first):
        if ch == "_":
            candidate = f"{first[:i]}.{first[i + 1:]}" + (f".{rest}" if rest else "")
            if candidate in full_keys:
                return candidate
    return None


def timm_state_dict(model: nn.Module) -> tuple[str, dict[str, Any], dict[str, torch.Tensor], nn.Module]:
    """The timm architecture name, its kwargs, the full timm state dict and the timm model built from it."""
    import timm


    name, kwargs, linear, head_prefix = _timm_parts(model)
    arch, _ = split_model_name_tag(name)
    cfg = model.config
    full = timm.create_model(arch, pretrained=False, num_classes=cfg.num_classes, **kwargs).eval()
    full_state = full.state_dict()
    full_keys = set(full_state)
    classifier = full.pretrained_cfg.get("classifier") or "fc"
    if isinstance(classifier, (list, tuple)):
        classifier = classifier[0]
    state: dict[str, torch.Tensor] = {}
    unmapped = []
    for key, value in model.face_encoder.body.state_dict().items():
        target = _map_feature_key(key, full_keys)
        if target is None:
            unmapped.append(key)
        else:
            state[target] = value.detach().cpu().contiguous()
    for part in ("weight", "bias"):
        source = model.state_dict()[head_prefix + part]
        target = f"{classifier}.{part}"
        if target not in full_state or full_state[target].shape != source.shape:
            raise ExportError(
                f"timm's {arch} classifier {target!r} does not match this model's head "
                f"{tuple(source.shape)}; it cannot be written in timm's layout."
            )
        state[target] = source.detach().cpu().contiguous()
    missing = sorted(full_keys - set(state))
    if unmapped or missing:
        raise ExportError(
            f"timm's {arch} has layers this model's encoder does not ({', '.join(missing[:6]) or '-'}), or the "
            f"encoder has tensors timm's {arch} lacks ({', '.join(unmapped[:6]) or '-'}): its timm head is more "
            f"than global average pooling + Linear. Use --format onnx for this model."
        )
    full.load_state_dict(state, strict=True)
    return arch, kwargs, state, full


def timm_config(model: nn.Module, arch: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """timm's ``config.json`` for the exported model (timm ``push_to_hf_hub`` layout)."""
    from timm.models import get_pretrained_cfg

    cfg = model.config
    base = get_pretrained_cfg(arch)
    pretrained_cfg = base.to_dict() if base is not None else {}
    for key in ("url", "hf_hub_id", "hf_hub_filename", "file", "state_dict", "source", "tag", "license",
                "paper_ids", "paper_name", "origin_url", "notes", "num_features"):
        pretrained_cfg.pop(key, None)
    h, w = cfg.data.face_size
    pretrained_cfg.update(
        architecture=arch, input_size=[3, int(h), int(w)], test_input_size=[3, int(h), int(w)],
        fixed_input_size=bool(pretrained_cfg.get("fixed_input_size", False)), interpolation=cfg.data.interpolation,
        crop_pct=1.0, crop_mode="center", mean=list(cfg.data.mean), std=list(cfg.data.std),
        num_classes=cfg.num_classes,
    )
    pretrained_cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in pretrained_cfg.items()}

    return {
        "architecture": arch,
        "num_classes": cfg.num_classes,
        "label_names": list(model.label_names),
        "pretrained_cfg": pretrained_cfg,
        "model_args": dict(kwargs),
        "emotion_zoo": {"version": __version__, "architecture": cfg.architecture,
                        "note": "face-only model exported by zoo-cli export --format timm; input = face crop"},
    }


def export_timm(model: nn.Module, out: str | os.PathLike, check: bool = True) -> ExportResult:
    """Write a face-only timm-backbone model as timm's ``config.json`` + ``model.safetensors`` in ``out``.

    ``timm.create_model("local-dir:OUT", pretrained=True)`` then gives the same logits (checked here on a
    random face batch when ``check``: the result's ``max_abs_diff['logits']``).
    """
    from safetensors.torch import save_file

    model = model.eval()
    arch, kwargs, state, full = timm_state_dict(model)
    config = timm_config(model, arch, kwargs)
    from zoo.outputs import discard, replace_into, temp_path_for

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: timm's layout is a directory; {out} is a file.")
    temp = temp_path_for(out)  # a folder beside out; its files move into out once checked
    try:
        temp.mkdir(parents=True)
        save_file(state, str(temp / "model.safetensors"), metadata={"format": "pt"})
        (temp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        result = _check_timm(model, temp, arch, check, out)
        out.mkdir(parents=True, exist_ok=True)
        for name in ("model.safetensors", "config.json"):
            replace_into(temp / name, out / name)
    finally:
        discard(temp)
    return result


def _check_timm(model: nn.Module, folder: Path, arch: str, check: bool, out: Path) -> ExportResult:
    """timm's model rebuilt from ``folder`` against ``model`` on a random face batch (when ``check``)."""
    result = ExportResult(out, "timm", ["face"], ["logits"])
    if check:
        import timm

        loaded = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
        (face,) = example_inputs_for(model, batch_size=2)
        with torch.no_grad():
            expected = model(face=face.to(next(model.parameters()).device)).logits.cpu()
            got = loaded(face.cpu())
        result.max_abs_diff = {"logits": float((got - expected).abs().max())}
        if result.max_abs_diff["logits"] > 1e-3:
            raise ExportError(
                f"timm's {arch} rebuilt from {out} gives logits {result.max_abs_diff['logits']:.3g} away from "
                f"this model's: its forward is not global average pooling + Linear over the same features. "
                f"Use --format onnx for this model."
            )
    return result
