"""Images for display and download: uint8 arrays, crisp grids, PNG and animated GIF bytes, and an uploaded picture
turned into a model input."""
from __future__ import annotations

import math

import numpy as np
import torch


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images (N, C, H, W) in [0, 1] -> (N, H, W, C) uint8 for display (C kept: 1 or 3)."""
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    scaled = (images.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    return scaled.permute(0, 2, 3, 1).contiguous().numpy()


def _tile(images: torch.Tensor, nrow: int, padding: int, pad_value: float) -> torch.Tensor:
    """torchvision.utils.make_grid's layout (checked against it in the tests) without importing torchvision, which
    pulls in torch._dynamo and costs the app's first page ~1.5 s: (N, C, H, W) -> (3, rows*(H+p)+p, cols*(W+p)+p),
    one channel repeated to RGB, and a lone image returned without padding."""
    if images.shape[1] == 1:
        images = images.repeat(1, 3, 1, 1)  # (N, 3, H, W)
    n, c, h, w = images.shape
    if n == 1:
        return images[0]
    cols = min(nrow, n)
    rows = -(-n // cols)  # ceil
    step_h, step_w = h + padding, w + padding
    grid = images.new_full((c, rows * step_h + padding, cols * step_w + padding), pad_value)
    for i in range(n):
        r, col = divmod(i, cols)
        grid[:, r * step_h + padding:r * step_h + padding + h, col * step_w + padding:col * step_w + padding + w] = images[i]
    return grid


def image_grid(images: torch.Tensor, nrow: int, *, padding: int = 1, pad_value: float = 1.0, scale: int = 1
               ) -> np.ndarray:
    """One picture (H, W, 3) uint8 of images (N, C, H, W) in [0, 1], nrow per row, each pixel a scale x scale
    block (nearest neighbour: no blur, an 8x8 digit stays crisp)."""
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"images must be a non-empty (N, C, H, W) batch, got shape {tuple(images.shape)}")
    if not (isinstance(scale, int) and scale >= 1):
        raise ValueError(f"scale must be an integer >= 1, got {scale}")
    grid = _tile(images.detach().float().cpu().clamp(0, 1), nrow=nrow, padding=padding, pad_value=pad_value)
    grid = grid.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)  # (3, H*s, W*s)
    return (grid * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def png_bytes(picture: np.ndarray) -> bytes:
    """A (H, W, 3) or (H, W) uint8 picture as PNG file bytes."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(picture)).save(buffer, format="PNG")
    return buffer.getvalue()


def animated_gif(images: torch.Tensor, *, scale: int = 1, duration_ms: int = 200, progress_bar: bool = True
                 ) -> bytes:
    """Images (N, C, H, W) in [0, 1] as a looping animated GIF of exactly N frames, each pixel a scale x scale
    block (no blur). With progress_bar, a bar under each frame grows with the step: it shows where the animation
    is, and it keeps equal consecutive images (a collapsed model) as separate frames, which GIF writers merge."""
    import io

    from PIL import Image

    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"images must be a non-empty (N, C, H, W) batch, got shape {tuple(images.shape)}")
    if not (isinstance(scale, int) and scale >= 1):
        raise ValueError(f"scale must be an integer >= 1, got {scale}")
    n = len(images)
    frames = to_uint8(images)  # (N, H, W, C)
    if frames.shape[-1] == 1:
        frames = frames.repeat(3, axis=-1)
    frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)  # (N, H*s, W*s, 3)
    if progress_bar:
        width = frames.shape[2]
        if width < n:
            raise ValueError(f"a progress bar needs frames at least {n} pixels wide: raise the scale")
        bar = np.full((n, max(2, scale), width, 3), 255, dtype=np.uint8)  # white track under the image
        for i in range(n):
            bar[i, :, : math.ceil(width * (i + 1) / n)] = (79, 70, 229)  # filled part: strictly longer each step
        frames = np.concatenate([frames, bar], axis=1)
    pictures = [Image.fromarray(f) for f in frames]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=duration_ms,
                     loop=0, disposal=1)
    return buffer.getvalue()


def image_from_bytes(data: bytes, shape: tuple[int, int, int], *, invert: bool = False) -> torch.Tensor:
    """One image file (png, jpg, ...) as a (1, C, H, W) tensor in [0, 1] of the model's input shape: converted
    to grey or RGB, resized (area averaging down, bilinear up), optionally inverted (dark ink on light paper ->
    light on dark, as the digits are). Raises UserInputError for a file that is not a readable image.

    Bounded from the header before any pixel is decoded (vae_core.data.decode_image: at most 40 megapixels and
    48 MiB decoded; JPEGs decode at the smallest scale that covers the model's side); an image far larger than the
    model's input is box-averaged down to about twice its side before the float32 conversion, so the work after
    decoding is a few MB whatever the picture."""
    from PIL import Image

    from vae_core.anomaly import resize_images
    from vae_core.data import decode_image
    from vae_core.errors import DataError, UserInputError

    _, h_out, w_out = (int(v) for v in shape)
    try:
        im, _ = decode_image(bytes(data), "this image", fit=max(h_out, w_out))
        factor = min(im.width // (2 * w_out), im.height // (2 * h_out))
        if factor >= 2:
            im = im.reduce(factor)  # box average: the same area averaging as resize_images, on far fewer pixels
        rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0  # (H, W, 3)
    except DataError as exc:
        message = str(exc)
        if message.startswith("cannot read image"):
            raise UserInputError("This file could not be read as an image: upload a PNG or JPEG picture.") from None
        raise UserInputError(f"{message[0].upper()}{message[1:]}") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UserInputError(f"This file could not be read as an image ({type(exc).__name__}): "
                             "upload a PNG or JPEG picture.") from None
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None]  # (1, 3, H, W)
    x = resize_images(x, shape)  # grey by luminance when the model is greyscale
    return 1.0 - x if invert else x
