"""Video and webcam frames for ``zoo.predict`` / ``zoo-cli predict``, and the annotated video they write.

Frames are read with OpenCV one at a time and handed on as they come (a generator), so a long video never
sits in memory. ``every=N`` keeps frames 0, N, 2N, ...; ``fps=F`` keeps the first frame at or after each
multiple of 1/F seconds. A frame's timestamp is ``index / fps`` of the file (OpenCV's container frame rate);
for a webcam it is the time since its first frame.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from zoo.errors import ZooError
from zoo.outputs import discard, replace_into, temp_path_for

#: file extensions read as videos (everything else is read as an image)
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
#: FourCC codes used to write annotated videos, by extension
_WRITE_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG"}


class VideoError(ZooError, ValueError):
    """A video or camera that cannot be opened, read or written."""


def is_video(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


@dataclass
class Frame:
    """One image to run on: a still image (``index`` None) or a video / webcam frame."""

    source: str
    image: Image.Image | None
    index: int | None = None
    timestamp: float | None = None
    #: frames per second after sampling (videos); the annotated video is written at this rate
    rate: float | None = None
    #: known face boxes (skip detection); None = detect
    boxes: list[Any] | None = None
    #: why this input could not be read (``on_error`` skip): ``image`` is then None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_video(self) -> bool:
        return self.index is not None


def check_sampling(every: int | None, fps: float | None) -> None:
    if every is not None and fps is not None:
        raise VideoError("Give --every N or --fps F, not both.")
    if every is not None and every < 1:
        raise VideoError(f"every must be a positive number of frames, got {every}.")
    if fps is not None and not 0 < fps <= MAX_FPS:  # NaN fails too; the sampling loop steps by 1/fps
        raise VideoError(f"fps must be a number in (0, {MAX_FPS:g}] frames per second, got {fps}.")


#: the largest ``--fps``: a bound on the sampling loop, which steps through a video's time by ``1 / fps``
MAX_FPS = 1000.0


def check_max_frames(max_frames: int | None) -> None:
    """``max_frames`` is None (no limit) or a positive number of frames."""
    if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1):
        raise VideoError(f"max_frames must be a positive number of frames (or None for no limit), got {max_frames!r}.")


def check_camera(camera: int) -> None:
    """A webcam index is an integer >= 0 (OpenCV treats -1 as "any camera", which crashes some backends)."""
    if isinstance(camera, bool) or not isinstance(camera, int) or not 0 <= camera <= 1023:
        raise VideoError(f"camera must be a webcam index 0, 1, 2, ..., got {camera!r}.")


def open_capture(source: str | int) -> Any:
    """``cv2.VideoCapture`` of a file or a camera index, opened, or a :class:`VideoError` saying why not."""
    import cv2

    if isinstance(source, int):
        check_camera(source)
    capture = cv2.VideoCapture(source if isinstance(source, int) else str(source))
    if not capture.isOpened():
        capture.release()
        if isinstance(source, int):
            raise VideoError(f"Could not open camera {source}: no such device, or it is in use / not permitted.")
        if not Path(source).is_file():
            raise VideoError(f"{source}: no such video file.")
        raise VideoError(f"{source}: OpenCV could not open this video (unsupported codec or damaged file); "
                         f"convert it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4.")
    return capture


def iter_video_frames(
    source: str | int,
    every: int | None = None,
    fps: float | None = None,
    max_frames: int | None = None,
    name: str | None = None,
) -> Iterator[Frame]:
    """The sampled frames of a video file or camera (``source`` an int), as RGB images, one at a time."""
    import cv2

    check_sampling(every, fps)
    check_max_frames(max_frames)
    camera = isinstance(source, int)
    capture = open_capture(source)
    name = name or (f"camera:{source}" if camera else str(source))
    try:
        native = capture.get(cv2.CAP_PROP_FPS)
        native = float(native) if native and native > 0 and np.isfinite(native) else None
        if native is None and not camera:
            raise VideoError(f"{source}: the video reports no frame rate, so frames have no timestamps; "
                             f"re-encode it with a frame rate.")
        rate = (native / every if every else fps if fps else native) if native else fps
        next_time, index, kept, start = 0.0, -1, 0, None
        while max_frames is None or kept < max_frames:
            if not capture.grab():
                break
            index += 1
            if camera:
                now = time.monotonic()
                start = now if start is None else start
                timestamp = now - start
            else:
                timestamp = index / native  # type: ignore[operator]
            if every is not None:
                keep = index % every == 0
            elif fps is not None:
                keep = timestamp >= next_time - 1e-9
                if next_time <= timestamp + 1e-9:  # the first sampling time after this frame, in one step
                    next_time += (math.floor((timestamp + 1e-9 - next_time) * fps) + 1) / fps
            else:
                keep = True
            if not keep:
                continue
            ok, bgr = capture.retrieve()
            if not ok or bgr is None:
                raise VideoError(f"{name}: frame {index} could not be decoded.")
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr.ndim == 3 else cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
            kept += 1
            yield Frame(name, Image.fromarray(rgb), index=index, timestamp=round(timestamp, 6), rate=rate)
    finally:
        capture.release()


class VideoVisWriter:
    """Writes annotated frames to a video file: boxes, ``label score`` and track ids, and an attention overlay.

    The file is opened at the first frame (its size is the frame's). ``fps`` defaults to the frames' sampled
    rate. Codec by extension: ``.mp4``/``.m4v``/``.mov`` mp4v, ``.avi`` MJPG.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float | None = None) -> None:
        self.path = Path(path)
        codec = _WRITE_CODECS.get(self.path.suffix.lower())
        if codec is None:
            raise VideoError(f"--save-vis {self.path}: write videos as {', '.join(_WRITE_CODECS)}.")
        self.codec = codec
        self.fps = fps
        self._writer: Any = None
        self._size: tuple[int, int] | None = None
        self._temp = temp_path_for(self.path)  # renamed onto path by close() (zoo.outputs)
        self.frames = 0

    def write(self, image: Image.Image, faces: list[dict[str, Any]], overlay: np.ndarray | None = None,
              rate: float | None = None) -> None:
        """Add one frame. ``overlay``: an H×W map in [0, 1] (or NaN where there is none) blended in colour."""
        import cv2

        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._size = image.size
            fps = self.fps or rate or 25.0
            self._writer = cv2.VideoWriter(str(self._temp), cv2.VideoWriter_fourcc(*self.codec), float(fps), image.size)
            if not self._writer.isOpened():
                raise VideoError(f"OpenCV cannot write {self.path} with codec {self.codec}; try an .avi file.")
        if image.size != self._size:
            image = image.resize(self._size)
        self._writer.write(draw_faces(np.asarray(image.convert("RGB")), faces, overlay)[:, :, ::-1].copy())
        self.frames += 1

    def close(self, commit: bool = True) -> None:
        """Finish the video and rename it into place (``commit``), or remove it."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            if commit:
                replace_into(self._temp, self.path)
            else:
                discard(self._temp)

    def __enter__(self) -> VideoVisWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(commit=exc_type is None)


def draw_faces(rgb: np.ndarray, faces: list[dict[str, Any]], overlay: np.ndarray | None = None) -> np.ndarray:
    """An RGB copy of ``rgb`` with the attention overlay (JET colours, 45 %) and each face's box and label."""
    import cv2

    out = rgb.copy()
    if overlay is not None:
        valid = np.isfinite(overlay)
        if valid.any():
            heat = cv2.applyColorMap(np.uint8(np.clip(np.nan_to_num(overlay), 0, 1) * 255), cv2.COLORMAP_JET)[:, :, ::-1]
            blend = (0.55 * out + 0.45 * heat).astype(np.uint8)
            out[valid] = blend[valid]
    thickness = max(1, round(min(out.shape[:2]) / 300))
    for face in faces:
        if face.get("box") is None:
            continue
        x1, y1, x2, y2 = (int(round(v)) for v in face["box"])
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 255, 0), thickness)
        text = f"{face['label']} {face['probability']:.2f}" + (f" #{face['track']}" if face.get("track") is not None else "")
        scale = max(0.4, min(out.shape[:2]) / 900)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        ty = y1 - 4 if y1 - th - base - 4 >= 0 else y2 + th + 4
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw, ty + base), (0, 0, 0), -1)
        cv2.putText(out, text, (x1, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return out
