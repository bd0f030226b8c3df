"""Errors the data layer raises on purpose; each message names the file, line or value and what to do."""

from __future__ import annotations

from zoo.registry import ZooError


class DataError(ZooError, ValueError):
    """Base class of data errors."""


class ImageReadError(DataError):
    """An image file that is missing, unreadable, corrupt, truncated or in an unsupported pixel format."""


class AnnotationError(DataError):
    """A malformed annotation row or file (bad column count, non-numeric value, x2 < x1, label out of range)."""


class UnknownClassError(DataError):
    """A class folder or label name that the dataset family does not define."""
