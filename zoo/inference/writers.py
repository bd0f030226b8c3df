"""Where predictions go, frame by frame as they arrive: a CSV (:class:`CsvWriter`), a JSON array
(:class:`JsonStreamWriter`), the plain-text table of ``zoo-cli predict`` (:class:`PredictionTable`) and the
``--save-vis`` figures and annotated videos (:class:`VisualisationWriter`). Each has ``write`` and ``close``."""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoo.inference.batching import Prediction
from zoo.inference.results import CSV_COLUMNS, FrameResult, csv_header
from zoo.inference.video import VideoVisWriter, is_video
from zoo.outputs import AtomicFile, discard, replace_into, temp_path_for
from zoo.viz import annotated_photo, save_picture

__all__ = ["CSV_COLUMNS", "CsvWriter", "JsonStreamWriter", "PredictionTable", "VisualisationWriter"]


def as_json(result: FrameResult | dict[str, Any]) -> dict[str, Any]:
    return result.to_json() if isinstance(result, FrameResult) else result


class CsvWriter:
    """``--csv FILE``: one row per face (:data:`zoo.inference.results.CSV_COLUMNS`, then ``prob_<class>``), and
    one row with its ``error`` per input that failed. Rows are written (and flushed) as frames arrive to a
    temporary file beside ``path`` (:mod:`zoo.outputs`), which :meth:`close` renames into place; callers close in
    a ``finally``, so an interrupted or failing run keeps every row finished before."""

    def __init__(self, path: str | os.PathLike[str], label_names: Sequence[str]) -> None:
        self.path = Path(path)
        self.names = list(label_names)
        self._atomic = AtomicFile(self.path, "w", newline="", encoding="utf-8")  # renamed into place by close()
        self._file = self._atomic.file
        self._csv = csv.writer(self._file)
        self._csv.writerow(csv_header(self.names))
        self._file.flush()
        self.rows = 0

    def write(self, result: FrameResult | dict[str, Any]) -> None:
        if not isinstance(result, FrameResult):
            result = FrameResult.from_json(result)
        for values in result.to_csv_rows(self.names):
            self._csv.writerow(["" if v is None else v for v in values])
            self.rows += 1
        self._file.flush()

    def close(self, commit: bool = True) -> None:
        """Rename the rows written into place (``commit``; a run does so also after an error or Ctrl-C, so that
        finished rows are kept), or drop them."""
        if commit:
            self._atomic.commit()
        else:
            self._atomic.discard()


class JsonStreamWriter:
    """A JSON array written one entry at a time (valid JSON once closed)."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self.count = 0

    def write(self, result: FrameResult | dict[str, Any]) -> None:
        text = json.dumps(as_json(result), indent=2, allow_nan=False)  # strict JSON: NaN is no JSON value
        self.echo(("[\n" if self.count == 0 else ",\n") + "\n".join("  " + line for line in text.splitlines()))
        self.count += 1

    def close(self) -> None:
        self.echo("[]" if self.count == 0 else "\n]")


class PredictionTable:
    """The plain-text table of ``zoo-cli predict``: a header, then one line per face (source, face index,
    box, label[#track], each class's probability), printed with ``echo`` as frames arrive. A still image
    without a face gets a line of its note; a video frame without one gets nothing. ``sources`` (the inputs as
    given) size the first column, with room for ``#frame@time`` when one may be a video."""

    def __init__(self, names: Sequence[str], sources: Sequence[str], echo: Callable[[str], None]) -> None:
        self.names = list(names)
        self.echo = echo
        source_width = max([len("image"), *(len(str(s)) for s in sources)])
        self.widths = [source_width + (16 if any(_may_be_video(s) for s in sources) else 0), 4, 19,
                       max([len("emotion"), *(len(n) for n in self.names)]), *(max(5, len(n)) for n in self.names)]
        self._header = False

    def _row(self, cells: list[str]) -> None:
        self.echo("  ".join(c.ljust(w) for c, w in zip(cells, self.widths, strict=True)).rstrip())

    def write(self, result: FrameResult | dict[str, Any]) -> None:
        entry = as_json(result)
        source = entry["image"]
        if "frame" in entry:
            source = f"{source}#{entry['frame']}@{entry['timestamp']:.2f}s"
        if entry.get("error") is not None:
            self.echo(f"{source}: error: {entry['error']}")
            return
        if not entry["faces"]:
            if "frame" not in entry:
                self.echo(f"{source}: {entry.get('note', 'no face found')}")
            return
        if not self._header:
            self._row(["image", "face", "box", "emotion", *self.names])
            self._header = True
        for face in entry["faces"]:
            box = ",".join(str(round(v)) for v in face["box"]) if face["box"] is not None else "-"
            label = face["label"] + (f"#{face['track']}" if face.get("track") is not None else "")
            self._row([source, str(face["face"]), box, label, *(f"{face['probs'][n]:.3f}" for n in self.names)])

    def close(self) -> None:
        """Nothing to finish: every line is printed as it comes."""


def _may_be_video(source: str) -> bool:
    """An input that is or may hold a video: the webcam, a video file, a folder or a pattern."""
    return str(source).startswith("camera:") or is_video(source) or Path(str(source)).is_dir() or "*" in str(source)


class VisualisationWriter:
    """``--save-vis``: one annotated picture per photo (``out/<name>.png``: every face boxed with its label
    and probability, with ``bars`` the probability bars and with ``attention`` the context attention panels;
    the web app's drawings, :func:`zoo.viz.annotated_photo`), whose path goes into the result as ``vis``; the
    frames of each video go to ``video_file`` or ``out/<name>_vis.mp4`` (the attention overlay only with
    ``attention``). Photos with the same name in different folders get ``<name>_2``, ``<name>_3``, ..."""

    def __init__(self, out: str | os.PathLike[str], data_config: Any, video_file: str | os.PathLike[str] | None = None,
                 attention: bool = True, bars: bool = True) -> None:
        self.out = Path(out)
        self.data_config = data_config
        self.video_file = Path(video_file) if video_file is not None else None
        self.attention = attention
        self.bars = bars
        self._names: dict[str, str] = {}  # source -> its unique file name stem
        self._videos: dict[str, VideoVisWriter] = {}

    def write(self, pred: Prediction) -> FrameResult:
        """Draw ``pred``; its result, with the picture's path in ``vis`` for a photo."""
        from dataclasses import replace

        frame, result = pred.frame, pred.result
        if frame.error is not None:
            return result
        name = self._name(frame.source)
        if frame.is_video:
            if frame.source not in self._videos:
                self._videos[frame.source] = VideoVisWriter(self.video_file or self.out / f"{name}_vis.mp4")
            overlay = attention_overlay(pred, self.data_config) if self.attention else None
            self._videos[frame.source].write(pred.image, [f.to_json() for f in result.faces], overlay, frame.rate)
            return result
        picture = annotated_photo(pred.image, result.faces, pred.attention, self.data_config, bars=self.bars,
                                  attention_panels=self.attention)
        final = self.out / f"{name}.png"
        temp = temp_path_for(final)  # written whole, then renamed into place (zoo.outputs)
        try:
            save_picture(picture, temp)
        except BaseException:
            discard(temp)
            raise
        return replace(result, vis=str(replace_into(temp, final)))

    def _name(self, source: str) -> str:
        if source not in self._names:
            stem, taken = _stem(source), set(self._names.values())
            unique, n = stem, 1
            while unique in taken:
                n += 1
                unique = f"{stem}_{n}"
            self._names[source] = unique
        return self._names[source]

    def close(self, commit: bool = True) -> None:
        """Finish the annotated videos (``commit``: rename them into place; else remove them)."""
        for writer in self._videos.values():
            writer.close(commit=commit)


def _stem(source: str) -> str:
    """File name stem of a source; ``<input 3>`` -> ``input3``, ``<input 3[2]>`` -> ``input3_2``."""
    if source.startswith("<"):
        return "input" + "_".join(re.findall(r"\d+", source))
    return Path(source).stem


def attention_overlay(pred: Prediction, data_config: Any, combine: str = "max") -> np.ndarray | None:
    """The faces' context attention maps placed over the frame (H×W, NaN outside the context crop).

    The context input is the whole frame resized to ``context_resize`` and centre-cropped to
    ``context_size``; each h×w map is upsampled onto the frame region that crop shows, divided by its
    maximum, and the faces' maps are combined by their maximum.
    """
    import cv2

    maps = [a for a in pred.attention if a is not None]
    if not maps:
        return None
    width, height = pred.image.size
    rh, rw = data_config.context_resize
    ch, cw = data_config.context_size
    top, left = (rh - ch) // 2, (rw - cw) // 2
    x1, x2 = round(left * width / rw), round((left + cw) * width / rw)
    y1, y2 = round(top * height / rh), round((top + ch) * height / rh)
    combined = np.max(np.stack([a / max(float(a.max()), 1e-12) for a in maps]), axis=0)
    overlay = np.full((height, width), np.nan, dtype=np.float32)
    if x2 > x1 and y2 > y1:
        overlay[y1:y2, x1:x2] = cv2.resize(combined.astype(np.float32), (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)
    return overlay
