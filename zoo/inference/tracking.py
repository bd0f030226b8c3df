"""Keeping a face's identity across video frames: a greedy IoU tracker.

The tracker in the style of Bochinski, Eiselein & Sikora, *High-Speed Tracking-by-Detection Without Using
Image Information*, AVSS 2017: each new detection is matched to the live track whose last box overlaps it
most (IoU at least ``iou_threshold``), pairs taken in order of decreasing IoU, each track and detection used
once; an unmatched detection starts a new track; a track not matched for more than ``max_missed`` processed
frames ends. Track ids count up from 0 and are never reused within one tracker.

Sampled video (``every=5``, ``fps=2``) moves a face further between the frames the tracker sees than IoU can
follow, so a second pass (this project's addition, not in the paper) matches the detections and tracks left
over by the distance between box centres: at most ``max_shift`` times the track box's larger side, for boxes
of similar size (side ratio within 1/2..2), nearest pairs first, each used once.
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


def centre_shift(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Distance between the centres of boxes ``a`` (a track's) and ``b`` in units of ``a``'s larger side;
    None when the boxes differ in size by more than a factor 2 (or ``a`` is empty)."""
    side_a, side_b = max(a[2] - a[0], a[3] - a[1]), max(b[2] - b[0], b[3] - b[1])
    if side_a <= 0 or side_b <= 0 or not 0.5 <= side_b / side_a <= 2.0:
        return None
    dx, dy = (b[0] + b[2] - a[0] - a[2]) / 2, (b[1] + b[3] - a[1] - a[3]) / 2
    return (dx * dx + dy * dy) ** 0.5 / side_a


@dataclass
class Track:
    id: int
    box: tuple[float, float, float, float]
    missed: int = 0
    hits: int = 1


class IoUTracker:
    """Assigns a track id to every face box of consecutive frames (see the module docstring)."""

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 5, max_shift: float = 1.0) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}.")
        if max_missed < 0:
            raise ValueError(f"max_missed must be >= 0, got {max_missed}.")
        if max_shift < 0:
            raise ValueError(f"max_shift must be >= 0, got {max_shift}.")
        self.max_shift = max_shift
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.tracks: list[Track] = []
        self._next_id = 0

    def update(self, boxes: Sequence[Sequence[float]]) -> list[int]:
        """Track ids for ``boxes`` (one frame's ``(x1, y1, x2, y2, ...)``), in the same order."""
        ids: list[int | None] = [None] * len(boxes)
        used_tracks: set[int] = set()
        by_overlap = sorted(
            ((box_iou(track.box, box[:4]), t, d) for t, track in enumerate(self.tracks) for d, box in enumerate(boxes)),
            reverse=True)
        self._assign([(t, d) for iou, t, d in by_overlap if iou >= self.iou_threshold], boxes, ids, used_tracks)
        # what IoU could not follow (sampled frames): the nearest box of similar size, within max_shift sides
        by_shift = sorted(
            (shift, t, d) for t, track in enumerate(self.tracks) if t not in used_tracks
            for d, box in enumerate(boxes) if ids[d] is None
            for shift in [centre_shift(track.box, box[:4])] if shift is not None and shift <= self.max_shift)
        self._assign([(t, d) for _, t, d in by_shift], boxes, ids, used_tracks)
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

    def _assign(self, pairs: list[tuple[int, int]], boxes: Sequence[Sequence[float]], ids: list[int | None],
                used_tracks: set[int]) -> None:
        """Give each (track, detection) pair, best first, the track's id; each track and detection used once."""
        for t, d in pairs:
            if t in used_tracks or ids[d] is not None:
                continue
            used_tracks.add(t)
            track = self.tracks[t]
            track.box, track.missed, track.hits = tuple(float(v) for v in boxes[d][:4]), 0, track.hits + 1
            ids[d] = track.id
