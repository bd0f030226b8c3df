"""The figures of ``zoo-cli eval --plots``: the confusion matrix of an evaluation and, for a run's model, the
run's training curves."""

from __future__ import annotations

from pathlib import Path

from zoo import viz
from zoo.names import parse
from zoo.training.rundir import METRICS_LOG


def write_eval_plots(model: str, metrics: dict, folder: Path) -> list[Path]:
    """Confusion matrix of an evaluation (``metrics`` as :func:`zoo.evaluate` returns them) into
    ``folder/confusion.png``; ``folder/training_curves.png`` too when ``model`` is a run's
    ``local-dir:RUN/best`` next to its ``metrics.jsonl``. Returns the paths written."""
    paths = [viz.confusion_matrix_figure(metrics["confusion"], list(metrics["per_class_recall"]),
                                         folder / "confusion.png", title=f"{model} ({metrics['num_samples']} samples)")]
    name = parse(model)
    if name.source == "local-dir":
        log = Path(name.path).parent / METRICS_LOG
        if log.exists():
            paths.append(viz.training_curves_figure(viz.metrics_log_rows(log), folder / "training_curves.png",
                                                    title=str(log.parent)))
    return paths
