"""Image decoding: any file PIL reads, returned as 8-bit RGB in display orientation.

Grey, grey+alpha, palette, RGBA, CMYK and 16-bit images are converted explicitly (16-bit by keeping the high
byte, not by PIL's clipping ``convert``); EXIF orientation is applied; truncated and corrupt files raise
:class:`~zoo.errors.ImageReadError` naming the file instead of yielding a partly grey image.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from zoo.errors import ImageReadError

# Never pad a truncated file with grey (PIL's LOAD_TRUNCATED_IMAGES would): it must be an error.
ImageFile.LOAD_TRUNCATED_IMAGES = False

#: The largest image :func:`load_image` decodes, in pixels (width × height; docs/safety.md). Larger files are
#: refused from their header, before decoding, as an ``ImageReadError`` naming the file (so ``on_error="skip"``
#: skips them): a small PNG can declare 30000×30000 pixels and need gigabytes once decoded. This is PIL's own
#: warning threshold (``PIL.Image.MAX_IMAGE_PIXELS``, ≈ 9459×9459); PIL's global setting is left untouched.
MAX_IMAGE_PIXELS = 89_478_485


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Read ``path`` as an RGB ``PIL.Image`` with EXIF rotation applied; raise ``ImageReadError`` on failure."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"Image file {str(path)!r} does not exist (or is not a file); check the dataset path.")
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ImageReadError(
                    f"Image file {str(path)!r} is {width}×{height} = {width * height:,} pixels, more than the "
                    f"{MAX_IMAGE_PIXELS:,} zoo.data.images.MAX_IMAGE_PIXELS allows (a decompression bomb, or a "
                    f"photo to shrink first). Resize or remove it, or open the dataset with on_error='skip'."
                )
            image.load()
            image = ImageOps.exif_transpose(image)
            return to_rgb(image, source=str(path))
    except ImageReadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageReadError(
            f"Image file {str(path)!r} is refused as a decompression bomb ({exc}). Resize or remove it, or open "
            f"the dataset with on_error='skip'."
        ) from None
    except UnidentifiedImageError:
        raise ImageReadError(
            f"Image file {str(path)!r} is not an image PIL can identify (corrupt, empty or an unsupported format). "
            f"Replace or remove it, or open the dataset with on_error='skip' to skip it."
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated / broken data streams
        raise ImageReadError(
            f"Image file {str(path)!r} could not be decoded ({exc}); it is probably truncated or corrupt. "
            f"Replace or remove it, or open the dataset with on_error='skip' to skip it."
        ) from None


def to_rgb(image: Image.Image, source: str = "<image>") -> Image.Image:
    """Convert any PIL mode to 8-bit RGB; transparent pixels become black (as the masked face does)."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image)
        if mode == "I":  # 32-bit ints: 16-bit PNGs open as "I" in some PIL versions
            array = np.clip(array, 0, 65535)
        grey = (array.astype(np.uint32) >> 8).astype(np.uint8)
        return Image.fromarray(np.repeat(grey[..., None], 3, axis=2), "RGB")
    if mode == "F":
        array = np.asarray(image, dtype=np.float32)
        if array.size and (array.min() < 0.0 or array.max() > 1.0):
            raise ImageReadError(
                f"Image {source!r} is a float image with values outside [0, 1]; convert it to 8-bit first."
            )
        grey = np.round(array * 255.0).astype(np.uint8)
        return Image.fromarray(np.repeat(grey[..., None], 3, axis=2), "RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in ("L", "1", "P", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        return image.convert("RGB")
    raise ImageReadError(f"Image {source!r} has the unsupported pixel mode {mode!r}; convert it to RGB first.")


def image_from_array(array: np.ndarray, source: str = "<array>") -> Image.Image:
    """An H×W (grey) or H×W×3 uint8 array as an RGB image (FER2013 pixel strings, video frames)."""
    if array.dtype != np.uint8:
        raise ImageReadError(f"{source}: expected uint8 pixels, got {array.dtype}.")
    if array.ndim == 2:
        return Image.fromarray(array, "L").convert("RGB")
    if array.ndim == 3 and array.shape[2] == 3:
        return Image.fromarray(array, "RGB")
    raise ImageReadError(f"{source}: expected an H×W or H×W×3 array, got shape {tuple(array.shape)}.")
