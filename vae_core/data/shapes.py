"""The procedural shapes set: sprites (square, ellipse, heart) drawn from five known generative factors, for the
disentanglement lab. Built-in as 'shapes' (32x32) and 'shapes64'."""
from __future__ import annotations

import functools
import math

import numpy as np

from vae_core.data.checks import MAX_SIDE, _check_int, _check_native_size
from vae_core.data.splits import DataSplit, _make_spec, _random_split
from vae_core.data.user_files import _sha256_arrays
from vae_core.errors import DataError

# The procedural shapes set (dSprites-like): fixed content, whatever the split seed.
SHAPE_NAMES: tuple[str, ...] = ("square", "ellipse", "heart")
SHAPE_FACTOR_NAMES: tuple[str, ...] = ("shape", "scale", "orientation", "pos_x", "pos_y")
SHAPE_FACTOR_SIZES: tuple[int, ...] = (3, 6, 40, 32, 32)
SHAPES_COUNT = 20_000
_SHAPES_GENERATION_SEED = 0
_SHAPE_RADIUS = 0.2  # radius of the disc that holds a sprite at max scale, as a fraction of the image side
_RENDER_CHUNK = 4096  # sprites rendered at once: bounds the float temporaries to ~13 MB each at 64x64


def _load_shapes(source: str, seed: int, image_size: int | None, test_fraction: float) -> DataSplit:
    """The procedural shapes set at 32x32 ('shapes') or 64x64 ('shapes64'), split by `seed`."""
    size = 64 if source == "shapes64" else 32
    _check_native_size(source, size, size, image_size)
    images, factors, fingerprint = _shapes_arrays(size)
    spec = _make_spec(source, source, seed, test_fraction, size, fingerprint)
    return _random_split(
        images[..., None],
        factors[:, 0],
        SHAPE_NAMES,
        1.0,
        spec,
        factors=factors,
        factor_names=SHAPE_FACTOR_NAMES,
        factor_sizes=SHAPE_FACTOR_SIZES,
    )


@functools.lru_cache(maxsize=2)
def _shapes_arrays(image_size: int) -> tuple[np.ndarray, np.ndarray, str]:
    """The fixed shapes set as read-only arrays, with its content hash (cached: the app reloads often)."""
    images, factors = make_shapes(SHAPES_COUNT, image_size, seed=_SHAPES_GENERATION_SEED)
    images.flags.writeable = factors.flags.writeable = False
    return images, factors, _sha256_arrays(images, factors)


def make_shapes(n: int, image_size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n random sprites: images (n, S, S) uint8 in {0, 1} and their factor indices (n, 5) int64."""
    _check_int("n", n, 1, 10_000_000)
    _check_int("image_size", image_size, 8, MAX_SIDE)
    rng = np.random.default_rng(seed)
    factors = rng.integers(0, np.array(SHAPE_FACTOR_SIZES), size=(n, len(SHAPE_FACTOR_SIZES)), dtype=np.int64)
    return render_shapes(factors, image_size), factors


def render_shapes(factors: np.ndarray, image_size: int) -> np.ndarray:
    """Draw one sprite per row of factor indices (shape, scale, orientation, pos_x, pos_y): (n, S, S) uint8."""
    factors = np.asarray(factors, dtype=np.int64).reshape(-1, len(SHAPE_FACTOR_SIZES))
    if (factors < 0).any() or (factors >= np.array(SHAPE_FACTOR_SIZES)).any():
        raise DataError(f"shape factor indices out of range: each column must be below {SHAPE_FACTOR_SIZES}")
    s = image_size
    images = np.zeros((len(factors), s, s), dtype=np.uint8)
    r_max = _SHAPE_RADIUS * s  # pixels
    # Only a window around each sprite is evaluated, not the whole frame: 5x less work at 64x64.
    win = min(s, math.ceil(2 * r_max) + 2)
    for start in range(0, len(factors), _RENDER_CHUNK):
        _render_chunk(images, factors[start : start + _RENDER_CHUNK], start, r_max, win)
    return images


def factor_sweeps(base, n_values: int = 7, image_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """What perfect disentanglement looks like: one row per factor, the sprite `base` (its K factor indices) with that
    factor alone swept evenly from its first value to its last and the others held.

    Returns images (K, n_values, S, S) uint8 and their factor indices (K, n_values, K) int64; row k differs from
    `base` in column k only. A factor with fewer values than n_values repeats them (shape: 0, 0, 1, 1, 1, 2, 2)."""
    base = np.asarray(base, dtype=np.int64)
    sizes = np.array(SHAPE_FACTOR_SIZES)
    if base.shape != sizes.shape or (base < 0).any() or (base >= sizes).any():
        raise DataError(f"a sprite is {len(sizes)} factor indices below {SHAPE_FACTOR_SIZES}, got {base.tolist()}")
    _check_int("n_values", n_values, 2, 64)
    factors = np.repeat(base[None, None, :], len(sizes), axis=0).repeat(n_values, axis=1)  # (K, n, K)
    for k, size in enumerate(sizes):
        factors[k, :, k] = np.rint(np.linspace(0, size - 1, n_values)).astype(np.int64)
    images = render_shapes(factors.reshape(-1, len(sizes)), image_size)  # (K n, S, S)
    return images.reshape(len(sizes), n_values, image_size, image_size), factors


def _render_chunk(images: np.ndarray, factors: np.ndarray, start: int, r_max: float, win: int) -> None:
    """Render factors into images[start : start + len(factors)] by testing each window pixel's centre."""
    s = images.shape[1]
    shape, scale, orient, pos_x, pos_y = factors.T
    radius = r_max * (0.5 + 0.5 * scale / (SHAPE_FACTOR_SIZES[1] - 1))  # pixels, 0.5..1.0 of the max
    theta = 2 * np.pi * orient / SHAPE_FACTOR_SIZES[2]  # radians in [0, 2 pi)
    # Positions in [0, 1] map to centres that keep a sprite at max scale (and any rotation) in frame.
    cx = r_max + pos_x / (SHAPE_FACTOR_SIZES[3] - 1) * (s - 2 * r_max)
    cy = r_max + pos_y / (SHAPE_FACTOR_SIZES[4] - 1) * (s - 2 * r_max)
    x0 = np.clip(np.floor(cx - r_max).astype(np.int64), 0, s - win)  # window corner, pixels
    y0 = np.clip(np.floor(cy - r_max).astype(np.int64), 0, s - win)
    grid = np.arange(win)
    # Pixel centres relative to the sprite centre, in units of its radius (the sprite's unit disc).
    dx = ((x0[:, None] + grid + 0.5 - cx[:, None]) / radius[:, None]).astype(np.float32)
    dy = ((y0[:, None] + grid + 0.5 - cy[:, None]) / radius[:, None]).astype(np.float32)
    cos, sin = np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32)
    for k, inside in enumerate(_SHAPE_TESTS):
        sel = np.flatnonzero(shape == k)
        c, sn = cos[sel, None, None], sin[sel, None, None]
        u = c * dx[sel, None, :] + sn * dy[sel, :, None]  # (m, rows, cols): rotate into the sprite frame
        v = c * dy[sel, :, None] - sn * dx[sel, None, :]
        rows = (y0[sel, None] + grid)[:, :, None]
        cols = (x0[sel, None] + grid)[:, None, :]
        images[(start + sel)[:, None, None], rows, cols] = inside(u, v)


def _inside_square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Square whose corners touch the unit disc."""
    return np.maximum(np.abs(u), np.abs(v)) <= np.float32(1 / math.sqrt(2))


def _inside_ellipse(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Ellipse with semi-axes 1 (along u) and 0.5, so orientation shows."""
    return u * u + 4 * v * v <= 1


def _inside_heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Heart (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, lobes up, scaled and shifted into the unit disc."""
    # The curve spans x in [-1.14, 1.14], y in [-1, 1.24]; its smallest enclosing circle is centred
    # at (0, 0.25) with radius 1.25. Image v points down, so y = -v.
    x = 1.25 * u
    y = 0.25 - 1.25 * v
    q = x * x + y * y - 1
    return q * q * q - x * x * y * y * y <= 0


_SHAPE_TESTS = (_inside_square, _inside_ellipse, _inside_heart)  # in the order of SHAPE_NAMES
