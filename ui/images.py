"""Pictures on a page: crisp upscaled image grids (nearest neighbour, no blur) and inline PNGs."""
from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from vae_core.latent import image_grid

TILE_PX = 84  # images are shown at about this many pixels a side, scaled without blur


def scale_for(images: torch.Tensor, tile_px: int = TILE_PX) -> int:
    """The integer upscaling that shows a tile at about tile_px pixels (nearest neighbour: no blur)."""
    return max(1, round(tile_px / images.shape[-1]))


def show_images(images: torch.Tensor, nrow: int, *, caption: str | None = None, tile_px: int = TILE_PX) -> np.ndarray:
    """Show (N, C, H, W) images in [0, 1] as one crisp grid; returns the grid (H, W, 3) uint8."""
    grid = image_grid(images, nrow=nrow, scale=scale_for(images, tile_px))
    st.image(grid, caption=caption, width="content")
    return grid


def data_uri(picture: np.ndarray) -> str:
    """A (H, W, 3) uint8 picture as an inline PNG data URI: st.image shows it as is (no media-file round trip, so
    a fast-changing image paints sooner) and the page's PNG bytes can be read back from the element."""
    import base64

    from vae_core.latent import png_bytes

    return "data:image/png;base64," + base64.b64encode(png_bytes(picture)).decode("ascii")


def picture(images: torch.Tensor, nrow: int, caption: str, key: str, tile_px: int = TILE_PX) -> None:
    """A crisp grid as an inline PNG (its pixels can be read back from the page), in a container with a stable
    CSS class (st-key-<key>) for browser tests."""
    with st.container(key=key):
        st.image(data_uri(image_grid(images, nrow=nrow, scale=scale_for(images, tile_px))), caption=caption,
                 width="content")
