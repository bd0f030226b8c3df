"""Keeping a face's identity across video frames: a greedy IoU tracker.

The tracker in the style of Bochinski, Eiselein & Sikora, *High-Speed Tracking-by-Detection Without Using
Image Information*, AVSS 2017: each new detection is matched to the live track whose last box overlaps it
most (IoU at least ``iou_threshold``), pairs taken in order of decreasing IoU, each track and detection used
once; an unmatched detection starts a new track; a track not matched for more than ``max_missed`` processed
frames ends. Track ids count up from 0 and are never reused within one tracker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes (0 when either is empty)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    id: int
    box: tuple[float, float, float, float]
    missed: int = 0
    hits: int = 1


class IoUTracker:
    """Assigns a track id to every face box of consecutive frames (see the module docstring)."""

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 5) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}.")
        if max_missed < 0:
            raise ValueError(f"max_missed must be >= 0, got {max_missed}.")
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.tracks: list[Track] = []
        self._next_id = 0

    def update(self, boxes: Sequence[Sequence[float]]) -> list[int]:
        """Track ids for ``boxes`` (one frame's ``(x1, y1, x2, y2, ...)``), in the same order."""
        pairs = sorted(
            ((box_iou(track.box, box[:4]), t, d) for t, track in enumerate(self.tracks) for d, box in enumerate(boxes)),
            reverse=True,
        )
        ids: list[int | None] = [None] * len(boxes)
        used_tracks: set[int] = set()
        for overlap, t, d in pairs:
            if overlap < self.iou_threshold:
                break
            if t in used_tracks or ids[d] is not None:
                continue
            used_tracks.add(t)
            track = self.tracks[t]
            track.box, track.missed, track.hits = tuple(float(v) for v in boxes[d][:4]), 0, track.hits + 1
            ids[d] = track.id
        for t, track in enumerate(self.tracks):
            if t not in used_tracks:
                track.missed += 1
        self.tracks = [track for track in self.tracks if track.missed <= self.max_missed]
        for d, box in enumerate(boxes):
            if ids[d] is None:
                track = Track(self._next_id, tuple(float(v) for v in box[:4]))
                self._next_id += 1
                self.tracks.append(track)
                ids[d] = track.id
        return [int(i) for i in ids]  # type: ignore[arg-type]
