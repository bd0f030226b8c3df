"""Batched, vectorised training augmentation of face crops that imitates the other domains.

One call transforms a whole batch with tensor operations (no per-image Python): the geometric part is a random
similarity (crop scale and shift around the face, rotation, mirror) returned as ``affine_grid`` matrices to be
composed with the alignment (:func:`zoo.data.align.compose_theta`), so each face is resampled once; the
photometric part (colour jitter, greyscale, blur, down-and-up sampling as from a small or compressed photo,
random erasing, Zhong et al., AAAI 2020) acts on the sampled crops. FER2013's crops are loose, grey, 48²;
ExpW's web faces are tight, coloured and sharp: these are the differences the ranges span.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from zoo.data.align import rotation_theta

__all__ = ["FaceAugment", "random_similarity"]


@dataclass(frozen=True)
class FaceAugment:
    """Ranges and probabilities of the batched face augmentation (0 turns a part off)."""

    rotate_degrees: float = 12.0
    scale: tuple[float, float] = (0.88, 1.12)
    shift: float = 0.05
    flip: float = 0.5
    """Geometry: rotation range (degrees), zoom range (> 1 shows more around the face), shift (a fraction of
    the crop), mirror probability."""
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    grayscale: float = 0.2
    """Colour: brightness, contrast and saturation factors in 1 ± value; the probability of greyscale (FER2013 is
    grey)."""
    blur: float = 0.15
    downsample: float = 0.2
    downsample_range: tuple[float, float] = (0.4, 0.8)
    erase: float = 0.25
    erase_area: tuple[float, float] = (0.02, 0.15)
    """Quality: the probability of a Gaussian blur (σ 0.4–1.2 px), of a down-and-up sampling by a factor in
    ``downsample_range`` (as FER2013's upsampled 48² crops), of random erasing over ``erase_area`` of the crop."""

    def geometry(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Random crop similarities (N×2×3) in the crop's own coordinates."""
        return random_similarity(n, generator, self.rotate_degrees, self.scale, self.shift, self.flip)

    def photometric(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Colour jitter, greyscale, blur, down-up sampling and erasing on crops ``x`` (N×C×H×W in [0, 1])."""
        n = x.shape[0]

        def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
            return (low + (high - low) * torch.rand(n, *shape, generator=generator)).to(x.device)

        def chosen(p: float) -> torch.Tensor:
            return (torch.rand(n, generator=generator) < p).to(x.device)

        view = (n, 1, 1, 1)
        if self.brightness:
            x = x * uniform(1 - self.brightness, 1 + self.brightness).view(view)
        if self.contrast:
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * uniform(1 - self.contrast, 1 + self.contrast).view(view) + mean
        if x.shape[1] == 3:
            grey = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
            if self.saturation:
                x = grey + (x - grey) * uniform(1 - self.saturation, 1 + self.saturation).view(view)
            if self.grayscale:
                x = torch.where(chosen(self.grayscale).view(view), grey.expand_as(x), x)
        x = x.clamp(0, 1)
        if self.blur:
            x = torch.where(chosen(self.blur).view(view), _gaussian_blur(x, uniform(0.4, 1.2)), x)
        if self.downsample:
            pick = chosen(self.downsample)
            if pick.any():
                low, high = self.downsample_range
                factor = low + (high - low) * float(torch.rand(1, generator=generator))
                size = [max(8, round(s * factor)) for s in x.shape[2:]]
                small = F.interpolate(x[pick], size=size, mode="bilinear", antialias=True, align_corners=False)
                x = x.clone()
                x[pick] = F.interpolate(small, size=list(x.shape[2:]), mode="bilinear", align_corners=False)
        if self.erase:
            x = _random_erase(x, chosen(self.erase), uniform(*self.erase_area), uniform(-1.2, 1.2), uniform(0, 1, 2),
                              torch.rand(x.shape, generator=generator).to(x.device))
        return x


def random_similarity(n: int, generator: torch.Generator, degrees: float, scale: tuple[float, float],
                      shift: float, flip: float) -> torch.Tensor:
    """N random similarities: rotation in ±``degrees``, zoom in ``scale`` (> 1 shows more around the face),
    shift in ±``shift`` of the crop, mirrored with probability ``flip``."""
    rotation = (torch.rand(n, generator=generator) * 2 - 1) * degrees
    zoom = scale[0] + (scale[1] - scale[0]) * torch.rand(n, generator=generator)
    move = (torch.rand(n, 2, generator=generator) * 2 - 1) * shift
    mirror = (torch.rand(n, generator=generator) < flip).to(torch.float32)
    return rotation_theta(rotation, zoom, move, mirror)


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """Separable Gaussian blur with a per-sample ``sigma`` (N), one grouped convolution per axis."""
    n, c, h, w = x.shape
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(taps[None] ** 2) / (2 * sigma[:, None].to(x.dtype) ** 2))
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # (N·C)×K
    flat = F.pad(x.reshape(1, n * c, h, w), (radius, radius, radius, radius), mode="replicate")
    flat = F.conv2d(flat, kernel[:, None, None, :], groups=n * c)
    flat = F.conv2d(flat, kernel[:, None, :, None], groups=n * c)
    return flat.reshape(n, c, h, w)


def _random_erase(x: torch.Tensor, pick: torch.Tensor, area: torch.Tensor, log_aspect: torch.Tensor,
                  centre: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Random erasing (Zhong et al., AAAI 2020): a rectangle of ``area`` (fraction), aspect exp(``log_aspect``)
    around ``centre`` (fractions) filled with uniform noise, on the samples in ``pick``."""
    n, _, h, w = x.shape
    aspect = torch.exp(log_aspect)
    half_h = (area * aspect).sqrt().clamp(max=1) / 2
    half_w = (area / aspect).sqrt().clamp(max=1) / 2
    ys = (torch.arange(h, dtype=x.dtype, device=x.device) + 0.5) / h
    xs = (torch.arange(w, dtype=x.dtype, device=x.device) + 0.5) / w
    inside_y = (ys[None] - centre[:, 1:2]).abs() < half_h[:, None]
    inside_x = (xs[None] - centre[:, 0:1]).abs() < half_w[:, None]
    mask = (inside_y[:, :, None] & inside_x[:, None, :] & pick[:, None, None])[:, None]
    return torch.where(mask, noise.to(x.dtype), x)
