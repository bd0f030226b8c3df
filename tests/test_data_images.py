"""Image decoding: every odd pixel format becomes correct 8-bit RGB; broken files raise naming the file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from tiny_face import png

from zoo.data import ImageReadError, load_image


def _gradient(h: int = 12, w: int = 16) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def test_rgb_png_roundtrip(tmp_path):
    pixels = _gradient()
    Image.fromarray(pixels).save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png")
    assert image.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(image), pixels)


def test_grey_becomes_three_equal_channels(tmp_path):
    grey = _gradient()[..., 0]
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    out = np.asarray(load_image(tmp_path / "g.png"))
    assert out.shape == (12, 16, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], grey)


def test_sixteen_bit_keeps_the_high_byte(tmp_path):
    values = np.array([[0, 255, 256, 65535], [1000, 30000, 40000, 512]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "d.png")  # 16-bit grey PNG
    out = np.asarray(load_image(tmp_path / "d.png"))
    np.testing.assert_array_equal(out[..., 0], (values >> 8).astype(np.uint8))
    # PIL's own convert("RGB") would clip 65535 to 255 for every value above 255: not what we return
    assert out[0, 1, 0] == 0 and out[0, 3, 0] == 255


def test_rgba_transparent_pixels_become_black(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., :3] = 200
    rgba[:2, :, 3] = 255  # top half opaque, bottom half fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    out = np.asarray(load_image(tmp_path / "t.png"))
    assert (out[:2] == 200).all() and (out[2:] == 0).all()


def test_cmyk_jpeg_is_converted(tmp_path):
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg")  # pure red in CMYK
    out = np.asarray(load_image(tmp_path / "c.jpg")).astype(int)
    assert out.shape == (8, 8, 3)
    assert out[..., 0].mean() > 200 and out[..., 1].mean() < 60 and out[..., 2].mean() < 60


def test_exif_rotation_is_applied(tmp_path):
    pixels = np.zeros((10, 20, 3), dtype=np.uint8)  # 20 wide, 10 high, left half white
    pixels[:, :10] = 255
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    image.save(tmp_path / "r.jpg", exif=exif, quality=100)
    out = np.asarray(load_image(tmp_path / "r.jpg"))
    assert out.shape == (20, 10, 3)  # displayed upright: 10 wide, 20 high
    assert out[:8].mean() > 200 and out[12:].mean() < 50  # the white half is now on top


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="does not exist"):
        load_image(tmp_path / "nope.png")


def test_corrupt_file_names_the_file(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"this is not an image at all")
    with pytest.raises(ImageReadError, match=r"bad\.png.*on_error='skip'"):
        load_image(tmp_path / "bad.png")


def test_empty_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty.jpg"):
        load_image(tmp_path / "empty.jpg")


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_truncated_file_is_an_error_not_grey_padding(tmp_path, suffix):
    Image.fromarray(_gradient(64, 64)).save(tmp_path / f"full.{suffix}")
    data = (tmp_path / f"full.{suffix}").read_bytes()
    (tmp_path / f"cut.{suffix}").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=rf"cut\.{suffix}.*truncated or corrupt"):
        load_image(tmp_path / f"cut.{suffix}")


@pytest.mark.filterwarnings("ignore::zoo.data.records.DataWarning")  # the skipped bomb is announced
def test_decompression_bombs_are_image_read_errors_naming_the_file(tmp_path, monkeypatch):
    import PIL.Image

    import zoo.data.images as images
    from zoo.data import open_dataset

    bomb = png(tmp_path / "data/train/a/bomb.png", size=(64, 64))
    png(tmp_path / "data/train/a/ok.png", size=(16, 16))
    png(tmp_path / "data/train/b/ok.png", size=(16, 16))
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 1000)  # documented bound, lowered for a small file
    with pytest.raises(ImageReadError, match=r"bomb\.png.*64×64 = 4,096 pixels, more than the 1,000"):
        images.load_image(bomb)
    ds = open_dataset(f"folder:{tmp_path / 'data'}", "train", verify=True, on_error="skip", streams="face")
    assert len(ds) == 2 and ds.report.counts["skipped"] == 1 and "bomb.png" in ds.report.skipped[0][0]
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 10**9)
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 1000)  # PIL's own DecompressionBombError (> 2 × 1000)
    with pytest.raises(ImageReadError, match=r"bomb\.png.*decompression bomb"):
        images.load_image(bomb)
