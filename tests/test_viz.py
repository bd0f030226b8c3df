"""Each figure type is written as a real PNG and shows what it should: the figure is captured before it is
saved and its panels are checked (the images drawn, the overlay's peak in the rendered pixels, the order of
the λ grid, the numbers and colours of the texts, the curves' data)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from zoo import viz


def _check_png(path, min_side=150):
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert min(im.size) >= min_side
        pixels = np.asarray(im.convert("L"))
    assert pixels.std() > 5  # not a blank canvas
    assert path.stat().st_size > 5_000


@pytest.fixture
def figures(monkeypatch):
    """Every matplotlib figure a viz function saves, in order (they are closed after saving)."""
    captured = []
    real = viz.save_figure

    def keep(fig, path):
        captured.append(fig)
        return real(fig, path)

    monkeypatch.setattr(viz, "save_figure", keep)
    return captured


def _rendered_panels(fig) -> list[np.ndarray]:
    """The RGB pixels of each axes as drawn (H×W×3 int), from a fresh Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    buffer = np.asarray(canvas.buffer_rgba())[..., :3].astype(int)
    height = buffer.shape[0]
    boxes = [ax.get_window_extent() for ax in fig.axes]
    return [buffer[height - round(b.y1): height - round(b.y0), round(b.x0): round(b.x1)] for b in boxes]


def _colour_image(value: int) -> np.ndarray:
    return np.full((48, 64, 3), value, dtype=np.uint8)


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(4)]


def test_attention_figure_puts_the_overlay_peak_on_the_planted_cell(tmp_path, images, figures):
    gla = np.full((7, 7), 0.01)
    gla[2, 5] = 1.0  # row 2, column 5
    ca = np.full((7, 7), 0.01)
    ca[6, 1] = 1.0
    context = np.full((56, 56, 3), 128, dtype=np.uint8)  # grey: the overlay's colour is the attention's
    path = viz.attention_figure(images[0], context, {"CA": ca, "GLA": gla}, tmp_path / "a.png", title="t")
    _check_png(path)
    (fig,) = figures
    image_ax, context_ax, ca_ax, gla_ax = fig.axes
    panels = _rendered_panels(fig)
    assert [ax.get_title() for ax in fig.axes] == ["image", "context (face masked)", "CA attention", "GLA attention"]
    assert np.array_equal(image_ax.images[0].get_array(), images[0])
    assert np.array_equal(context_ax.images[0].get_array(), context)
    for ax, panel, (row, col) in ((ca_ax, panels[2], (6, 1)), (gla_ax, panels[3], (2, 5))):
        overlay = np.asarray(ax.images[1].get_array())
        assert overlay.shape == (56, 56) and overlay.max() == pytest.approx(1.0) and overlay.min() == 0.0
        r, c = np.unravel_index(overlay.argmax(), overlay.shape)
        assert (r // 8, c // 8) == (row, col)
        # in the drawn pixels, the reddest spot ("jet" at the peak) lies in the planted cell too
        redness = panel[..., 0] - panel[..., 2]
        r, c = np.unravel_index(redness.argmax(), redness.shape)
        assert (int(7 * r / panel.shape[0]), int(7 * c / panel.shape[1])) == (row, col)


def test_prediction_grid_shows_each_image_with_its_truth_and_coloured_predictions(tmp_path, images, figures):
    truths = ["Happy", "Sad", "Fear", "Happy"]
    predictions = {"CA": ["Happy", "Happy", "Fear", "Sad"], "GLA": ["Happy", "Sad", "Sad", "Happy"]}
    _check_png(viz.prediction_grid_figure(images, truths, predictions, tmp_path / "g.png"))
    (fig,) = figures
    assert len(fig.axes) == 4
    for i, ax in enumerate(fig.axes):
        assert np.array_equal(ax.images[0].get_array(), images[i])
        assert ax.get_title() == f"GT: {truths[i]}"
        texts = [(t.get_text(), t.get_color()) for t in ax.texts]
        assert texts == [(f"{m}: {p[i]}", "green" if p[i] == truths[i] else "red") for m, p in predictions.items()]


def test_uncertainty_grid_orders_each_row_by_lambda(tmp_path, figures):
    lambdas = [0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.0, 0.6, 0.4, 1.0, 0.05]  # 12 samples, shuffled
    happy = [(_colour_image(int(v * 200)), v) for v in lambdas]  # each image's grey level encodes its λ
    sad = [(_colour_image(60), 0.5), (_colour_image(20), 0.25)]
    _check_png(viz.uncertainty_grid_figure({"Happy": happy, "Sad": sad}, tmp_path / "u.png", per_class=5))
    (fig,) = figures
    cells = np.array(fig.axes).reshape(2, 5)
    assert [row[0].get_ylabel() for row in cells] == ["Happy", "Sad"]
    # 12 sorted values, 5 picks spread over the range: ranks round(linspace(0, 11, 5)) = 0, 3, 6, 8, 11
    expected = [0.0, 0.2, 0.5, 0.7, 1.0]
    assert [ax.get_title() for ax in cells[0]] == [f"λ={v:.2f}" for v in expected]
    assert [int(ax.images[0].get_array()[0, 0, 0]) for ax in cells[0]] == [int(v * 200) for v in expected]
    assert [ax.get_title() for ax in cells[1][:2]] == ["λ=0.25", "λ=0.50"]
    assert [int(ax.images[0].get_array()[0, 0, 0]) for ax in cells[1][:2]] == [20, 60]
    assert all(not ax.images and not ax.axison for ax in cells[1][2:])  # no sample: an empty cell


def test_confusion_matrix_shows_row_rates_and_counts(tmp_path, figures):
    cm = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 9]])
    _check_png(viz.confusion_matrix_figure(cm, ["a", "b", "c"], tmp_path / "c.png"))
    (fig,) = figures
    (ax,) = fig.axes
    rates = np.asarray(ax.images[0].get_array())
    assert np.allclose(rates, [[5 / 6, 1 / 6, 0], [0.2, 0.7, 0.1], [0, 0, 1]])
    cells = {t.get_position(): t.get_text() for t in ax.texts}
    assert cells[(0, 0)] == "5\n83%" and cells[(1, 0)] == "1\n17%" and cells[(1, 1)] == "7\n70%"
    assert cells[(2, 2)] == "9\n100%" and cells[(2, 1)] == "1\n10%"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")


def test_training_curves_plot_losses_left_and_metrics_right(tmp_path, figures):
    rows = [{"epoch": e, "train_loss": 2 / e, "val_loss": 2.2 / e, "val_accuracy": 0.3 + 0.1 * e} for e in range(1, 6)]
    _check_png(viz.training_curves_figure(rows, tmp_path / "t.png"))
    (fig,) = figures
    left, right = fig.axes
    curves = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in left.lines}
    assert curves == {"train_loss": ([1, 2, 3, 4, 5], [2 / e for e in range(1, 6)]),
                      "val_loss": ([1, 2, 3, 4, 5], [2.2 / e for e in range(1, 6)])}
    ((label, ys),) = [(line.get_label(), list(line.get_ydata())) for line in right.lines]
    assert label == "val_accuracy" and ys == pytest.approx([0.4, 0.5, 0.6, 0.7, 0.8])


def test_upsample_map_is_scaled_to_unit_range():
    up = viz.upsample_map(np.array([[0.0, 1.0], [2.0, 3.0]]), (8, 8))
    assert up.shape == (8, 8) and up.min() == 0.0 and up.max() == pytest.approx(1.0)
    assert up[0, 0] == 0.0 and up[-1, -1] == pytest.approx(1.0)  # orientation kept: the largest entry bottom right
    assert (np.diff(up, axis=0) >= 0).all() and (np.diff(up, axis=1) >= 0).all()


def test_as_uint8_image_from_a_normalised_tensor():
    tensor = torch.stack([torch.full((4, 5), -2.0), torch.full((4, 5), 2.0), torch.zeros(4, 5)])  # 3×4×5
    array = viz.as_uint8_image(tensor)  # channels last, min-max scaled to 0..255
    assert array.shape == (4, 5, 3) and array.dtype == np.uint8
    assert array[0, 0].tolist() == [0, 255, 128]
