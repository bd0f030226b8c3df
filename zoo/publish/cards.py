"""Model cards (README.md) for Hub repos, rendered from the templates in the repository's ``hub_cards/`` (packaged as ``zoo/publish/hub_cards``, a symlink).

One template per family (``caer_net_s``, ``glamor_net``, ``ldlva``, ``generic``), plain
:class:`string.Template` (``$name`` placeholders; braces stay literal, so BibTeX needs no escaping). The YAML
front matter is built with huggingface_hub's ``ModelCardData`` (library_name, license, tags, datasets,
pipeline_tag, metrics and a ``model-index`` from the run's evaluation), so it always parses.

The templates ship inside the package (package data), so the same files are found in a checkout and in an
installed wheel; ``template=PATH`` renders any other file with the same placeholders.
"""

from __future__ import annotations

import json
import os
import string
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from zoo.config import ModelConfig
from zoo.data.classes import OFFICIAL_SPLITS
from zoo.errors import ZooError
from zoo.names import split_spec

FAMILIES = ("caer_net_s", "glamor_net", "ldlva", "generic")
PLACEHOLDERS = ("front_matter", "model_name", "summary", "components", "usage", "training", "evaluation",
                "labels", "citation")
METRICS = ("accuracy", "balanced_accuracy", "macro_f1")
#: agreement with reference label distributions (e.g. FER+ votes), in the evaluation table when present
DISTRIBUTION_ROWS = (("kl", "KL(reference votes ‖ prediction) ↓"), ("js", "JS divergence ↓"),
                     ("majority_agreement", "agreement with the votes' majority"))

CITATIONS = {
    "caer": """@inproceedings{lee2019context,
  title     = {Context-Aware Emotion Recognition Networks},
  author    = {Lee, Jiyoung and Kim, Seungryong and Kim, Sunok and Park, Jungin and Sohn, Kwanghoon},
  booktitle = {Proceedings of the IEEE/CVF International Conference on Computer Vision (ICCV)},
  year      = {2019}
}""",
    "glamor": """@article{le2022global,
  title   = {Global-local attention for emotion recognition},
  author  = {Le, Nhat and Nguyen, Khanh and Nguyen, Anh and Le, Bac},
  journal = {Neural Computing and Applications},
  year    = {2022},
  note    = {arXiv:2111.04129}
}""",
    "ldlva": """@inproceedings{le2023uncertainty,
  title     = {Uncertainty-Aware Label Distribution Learning for Facial Expression Recognition},
  author    = {Le, Nhat and Nguyen, Khanh and Tran, Quang and Tjiputra, Erman and Le, Bac and Nguyen, Anh},
  booktitle = {Proceedings of the IEEE/CVF Winter Conference on Applications of Computer Vision (WACV)},
  year      = {2023},
  note      = {arXiv:2209.10448}
}""",
}


class ModelCardError(ZooError):
    """A card template that cannot be rendered (unknown placeholder, missing file)."""


def card_family(config: ModelConfig) -> str:
    """The template family of a model: by its target (LDLVA), then its attention (GLA, CA)."""
    if config.target == "ldl_va":
        return "ldlva"
    if config.uses_context and config.attention == "gla":
        return "glamor_net"
    if config.uses_context and config.attention == "ca":
        return "caer_net_s"
    return "generic"


def citation_keys(config: ModelConfig) -> list[str]:
    keys = []
    if config.uses_context and config.attention == "gla":
        keys.append("glamor")
    if config.uses_context and config.attention in ("ca", "gla"):
        keys.append("caer")  # CAER-Net-S architecture / the CAER-S data both build on
    if config.target == "ldl_va":
        keys.append("ldlva")
    return keys


def template_text(family: str) -> str:
    if family not in FAMILIES:
        raise ModelCardError(f"No card template for family {family!r}; families: {', '.join(FAMILIES)}.")
    return resources.files("zoo.publish").joinpath("hub_cards", f"{family}.md").read_text(encoding="utf-8")


def dataset_name(spec: Any) -> str | None:
    """``"caer_s:/data/CAER-S"`` -> ``"caer_s"``: a dataset spec without its local path."""
    if not spec or not isinstance(spec, str):
        return None
    return split_spec(spec)[0] or None


def _scrub(value: Any) -> Any:
    """Replace local filesystem paths by a placeholder: a card must not publish the trainer's disk layout."""
    if isinstance(value, str):
        if os.path.isabs(value) or value.startswith("~"):
            return "<local path>"
        head, rest = split_spec(value)
        if rest is not None and os.path.isabs(rest):
            return head + ":<local path>"
        return value
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows = []
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows += _flatten(value, name + ".")
        else:
            rows.append((name, value))
    return rows


def as_evaluations(evaluation: dict[str, Any] | Sequence[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """One evaluation (``eval.json``, ``zoo-cli eval --json``) or several (e.g. single crop and flip TTA)."""
    if evaluation is None:
        return []
    return [evaluation] if isinstance(evaluation, dict) else list(evaluation)


def evaluation_label(evaluation: dict[str, Any]) -> str:
    tta = evaluation.get("tta")
    return "single crop" if tta in (None, "none") else f"{tta} TTA"


def front_matter(
    config: ModelConfig, repo_id: str, license: str,
    evaluation: dict[str, Any] | Sequence[dict[str, Any]] | None, dataset: str | None,
) -> str:
    from huggingface_hub import EvalResult, ModelCardData

    family = card_family(config)
    tags = ["emotion-zoo", "emotion-recognition", "image-classification", "pytorch", "safetensors"]
    tags += [t for t in (family if family != "generic" else None, config.architecture) if t and t not in tags]
    results, metrics = [], []
    for one in as_evaluations(evaluation):
        label = evaluation_label(one)
        for metric in METRICS:
            if not isinstance(one.get(metric), (int, float)):
                continue
            if metric not in metrics:
                metrics.append(metric)
            results.append(EvalResult(
                task_type="image-classification",
                dataset_type=dataset or "unknown",
                dataset_name=dataset or "unknown",
                dataset_split=one.get("split"),
                metric_type=metric,
                metric_name=None if label == "single crop" else f"{metric} ({label})",
                metric_value=round(float(one[metric]), 6),
            ))
    data = ModelCardData(
        library_name="emotion-zoo",
        license=license,
        tags=tags,
        datasets=[dataset] if dataset else None,
        pipeline_tag="image-classification",
        metrics=metrics or None,
        model_name=repo_id if results else None,
        eval_results=results or None,
    )
    return data.to_yaml() + "\n"


def _components(config: ModelConfig, parameters: int | None, weights: str | None = None) -> str:
    def args(d: dict[str, Any] | None) -> str:
        return f" `{json.dumps(d, sort_keys=True)}`" if d else ""

    rows = [("streams", config.streams)]
    if config.uses_face:
        rows.append(("face backbone", f"`{config.backbone}`{args(config.backbone_args)}"))
    if config.uses_context:
        ctx, ctx_args = config.context_backbone_spec
        rows.append(("context backbone", f"`{ctx}`{args(ctx_args)} (weights not shared with the face stream)"))
        rows.append(("attention", f"`{config.attention}`{args(config.attention_args)}"))
    if config.streams == "both":
        rows.append(("fusion", f"`{config.fusion}`{args(config.fusion_args)}"))
        if config.feature_norm:
            rows.append(("feature norm", "BatchNorm1d on v_f and v_c before fusion"))
    head = f"Linear → ReLU → Dropout({config.head_dropout}) → Linear, hidden {config.head_hidden}" if \
        config.head_hidden else "Linear"
    rows += [("classifier", head), ("target", f"`{config.target}`{args(config.target_args)}"),
             ("initialisation", config.init)]
    d = config.data
    if config.uses_face:
        rows.append(("face input", f"3×{d.face_size[0]}×{d.face_size[1]}"))
    if config.uses_context:
        rows.append(("context input", f"3×{d.context_size[0]}×{d.context_size[1]} (resize {d.context_resize[0]}×"
                                      f"{d.context_resize[1]}, face masked: {d.mask_face_in_context})"))
    rows.append(("normalisation", f"mean {list(d.mean)}, std {list(d.std)}, {d.interpolation}"))
    rows.append(("classes", f"{config.num_classes}: {', '.join(config.resolved_label_names)}"))
    if parameters is not None:
        rows.append(("parameters", f"{parameters:,}"))
    if weights is not None:
        rows.append(("weights file", weights))
    return "| component | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def _training(run_config: dict[str, Any] | None) -> str:
    if not run_config:
        return "Not recorded: these weights were not pushed from a training-run directory."
    rows = [(k, v) for k, v in _flatten(_scrub(run_config)) if v not in (None, "", [], {})]
    lines = [f"| {k} | `{json.dumps(v) if not isinstance(v, str) else v}` |" for k, v in rows]
    return ("Resolved run configuration (`run_config.json`; local paths removed):\n\n"
            "| setting | value |\n|---|---|\n" + "\n".join(lines))


def _evaluation(evaluation: dict[str, Any] | Sequence[dict[str, Any]] | None, dataset: str | None) -> str:
    evaluations = as_evaluations(evaluation)
    if not evaluations:
        return "Not evaluated: no `eval.json` was pushed with these weights."
    first = evaluations[0]
    where = f"on `{dataset}`" if dataset else "on the run's evaluation split"
    if first.get("split"):
        family, names = OFFICIAL_SPLITS.get(dataset or "", ("", {}))
        official = names.get(first["split"])
        where += f" ({first['split']} split" + (f": {family} {official})" if official else ")")
    if first.get("num_samples") is not None:
        where += f", {first['num_samples']} samples"
    if first.get("reference_samples") is not None:
        where += f" ({first['reference_samples']} with reference votes)"

    def cell(one: dict[str, Any], key: str) -> str:
        value = one.get(key)
        return f"{float(value):.4f}" if isinstance(value, (int, float)) else "–"

    header = "| metric | " + " | ".join(evaluation_label(e) for e in evaluations) + " |"
    lines = [f"Evaluated {where}.", "", header, "|---" * (len(evaluations) + 1) + "|"]
    rows = [(m, m) for m in METRICS] + list(DISTRIBUTION_ROWS)
    lines += [f"| {name} | " + " | ".join(cell(e, key) for e in evaluations) + " |"
              for key, name in rows if any(isinstance(e.get(key), (int, float)) for e in evaluations)]
    recall = first.get("per_class_recall")
    if isinstance(recall, dict) and recall:
        lines += ["", f"| class | recall ({evaluation_label(first)}) |", "|---|---|"]
        lines += [f"| {k} | {'–' if v is None else f'{float(v):.4f}'} |" for k, v in recall.items()]
    return "\n".join(lines)


def _usage(repo_id: str, config: ModelConfig) -> str:
    inputs = []
    if config.uses_face:
        inputs.append(f"face=torch.randn(1, 3, {config.data.face_size[0]}, {config.data.face_size[1]})")
    if config.uses_context:
        inputs.append(f"context=torch.randn(1, 3, {config.data.context_size[0]}, {config.data.context_size[1]})")
    return (
        "```python\nimport torch, zoo  # pip install emotion-zoo\n\n"
        f'model = zoo.create("hf-hub:{repo_id}@COMMIT").eval()  # pin the commit printed by `zoo-cli push`\n'
        f"out = model({', '.join(inputs)})\n"
        "out.probs  # class probabilities, in the order of model.label_names\n```\n\n"
        f"Offline use: `zoo-cli pull hf-hub:{repo_id}@COMMIT` while online, then `HF_HUB_OFFLINE=1`."
    )


def render_card(
    config: ModelConfig,
    repo_id: str,
    *,
    license: str = "apache-2.0",
    run_config: dict[str, Any] | None = None,
    evaluation: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
    parameters: int | None = None,
    template: str | os.PathLike | None = None,
    family: str | None = None,
    weights: str | None = None,
) -> str:
    """The README.md of a model repo: front matter, architecture, usage, recipe, evaluation, limits, citation.

    ``weights``: how the weights file stores them (``"float16, 22.4 MB"``, :func:`weights_file_summary`).

    ``evaluation``: the run's ``eval.json`` or ``zoo-cli eval --json`` output, or several (single crop, flip TTA):
    each gives model-index entries (TTA ones named ``"accuracy (flip TTA)"``) and a column of the table.
    """
    family = family or card_family(config)
    if template is not None:
        try:
            text = Path(template).read_text(encoding="utf-8")
        except OSError as exc:
            raise ModelCardError(f"Cannot read card template {template}: {exc}.") from exc
    else:
        text = template_text(family)
    data = run_config.get("data") if isinstance(run_config, dict) else None
    evaluations = as_evaluations(evaluation)
    dataset = dataset_name(evaluations[0].get("dataset") if evaluations else None) or dataset_name(
        (data or {}).get("train") if isinstance(data, dict) else (run_config or {}).get("dataset")
    )
    citations = [CITATIONS[k] for k in citation_keys(config)]
    values = {
        "front_matter": front_matter(config, repo_id, license, evaluation, dataset),
        "model_name": repo_id,
        "summary": f"Architecture preset: `{config.architecture or 'custom'}`.",
        "components": _components(config, parameters, weights),
        "usage": _usage(repo_id, config),
        "training": _training(run_config),
        "evaluation": _evaluation(evaluation, dataset),
        "labels": ", ".join(config.resolved_label_names),
        "citation": "```bibtex\n" + "\n\n".join(citations) + "\n```" if citations else
                    "No paper describes this exact combination; cite the papers of the components you rely on.",
    }
    try:
        return string.Template(text).substitute(values)
    except (KeyError, ValueError) as exc:
        raise ModelCardError(
            f"Card template {template or family}: bad placeholder {exc}; the placeholders are "
            f"{', '.join('$' + p for p in PLACEHOLDERS)} (write $$ for a literal dollar sign)."
        ) from exc


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Parse a card's YAML front matter (between the first two ``---`` lines) and return it with the body."""
    import yaml

    if not text.startswith("---\n"):
        raise ModelCardError("The card does not start with a YAML front matter block ('---').")
    end = text.find("\n---\n", 4)
    if end < 0:
        raise ModelCardError("The card's YAML front matter block is not closed by a '---' line.")
    meta = yaml.safe_load(text[4:end])
    if not isinstance(meta, dict):
        raise ModelCardError("The card's YAML front matter is not a mapping.")
    return meta, text[end + 5:]


_SAFETENSORS_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16"}


def weights_file_summary(path: str | os.PathLike) -> str:
    """The floating-point storage type(s) and size of a safetensors file, from its header alone
    (``"float16, 22.4 MB"``): a card says when weights were stored at reduced precision."""
    path = Path(path)
    with open(path, "rb") as fh:
        header = json.loads(fh.read(int.from_bytes(fh.read(8), "little")))
    dtypes = sorted({_SAFETENSORS_DTYPES[v["dtype"]] for k, v in header.items()
                     if k != "__metadata__" and v["dtype"] in _SAFETENSORS_DTYPES})
    return f"{' + '.join(dtypes) or 'no floating-point tensors'}, {path.stat().st_size / 1e6:.1f} MB"
