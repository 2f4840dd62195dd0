"""Limits on user data, and the checks of settings and zip members that every loader shares."""
from __future__ import annotations

import zipfile

import numpy as np

from vae_core.budget import ESTIMATE_LIMIT_BYTES
from vae_core.errors import DataError

# Limits on user data. They keep a bad or hostile file from exhausting memory or disk, and keep
# training on a 2-core laptop sensible.
MIN_IMAGES = 10  # fewest images in a data set: enough for a train part of >= 2 and a test part of >= 1
MAX_SIDE = 256  # largest image height or width, in pixels
MAX_VALUES = 200_000_000  # largest N * C * H * W whatever the memory budget (800 MB as float32)
MAX_CLASSES = 100
MAX_FILE_BYTES = 1 << 30  # largest .npz or .zip file read into memory, in bytes (and never over max_bytes)
# Most images in a .zip or folder (system files not counted). Each costs 150-320 µs of CPU at 32x32 (Pillow's open,
# decode and resize; measured on a 2-core machine at load 6-9): 4,000 is 0.6-1.3 s. Larger sets load as an .npz.
MAX_ZIP_FILES = 4_000
MAX_ZIP_ENTRIES = 2 * MAX_ZIP_FILES + 1_000  # zip directory entries (folders, __MACOSX copies) parsed at most
MAX_ZIP_DIRECTORY_BYTES = 8 << 20  # a .zip's central directory (names), in bytes
MAX_NPZ_MEMBERS = 64  # arrays in an .npz (the loader reads at most 7)
MAX_UNZIPPED_BYTES = 256 << 20  # largest total uncompressed size of a .zip, in bytes
MAX_MEMBER_BYTES = 64 << 20  # largest single file inside a .zip, uncompressed, in bytes
MAX_COMPRESSION_RATIO = 200  # larger ratios on big members are zip bombs, not images
MAX_IMAGE_PIXELS = 40_000_000  # largest single image in an image folder, in pixels (40 megapixels)
# Decoding PNG costs 2.8-4 ns per decoded byte on one core (measured: 8 MP RGB in 0.09 s, 16 MP grey in 0.065 s),
# so 192 MiB of decoded pixels per folder or .zip is at most ~0.8 s; each image is also bounded alone
# (budget.MAX_IMAGE_DECODED_BYTES: 48 MiB), and the decoding stops at the image that would pass the total.
MAX_FOLDER_DECODED_BYTES = 192 << 20
_CONVERT_CHUNK_PIXELS = 1 << 20  # 16/32-bit images are scaled to 8 bits this many pixels at a time (8 MB of float64)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm")
_COMPRESSION_NAMES = {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "LZMA"}


def _max_bytes(max_bytes: int | None) -> int:
    """The memory budget of one load, in bytes: the caller's, or ESTIMATE_LIMIT_BYTES."""
    if max_bytes is None:
        return ESTIMATE_LIMIT_BYTES
    _check_int("max_bytes", max_bytes, 1 << 20, 1 << 40)
    return int(max_bytes)


def _check_int(what: str, value: object, low: int, high: int) -> None:
    """Raise DataError unless value is an int in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise DataError(f"{what} is {value!r}: use a whole number from {low} to {high}")


def _check_split_settings(seed: object, test_fraction: object) -> None:
    """Raise DataError unless seed is an int >= 0 and 0 < test_fraction < 1 (checked before slow loading)."""
    _check_int("seed", seed, 0, 2**63 - 1)
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise DataError(f"test_fraction is {test_fraction!r}: use a number between 0 and 1, e.g. 0.2")


def _check_native_size(name: str, height: int, width: int, image_size: int | None) -> None:
    """Sources of fixed size accept image_size only when it matches a side (resizing is for image folders)."""
    if image_size is not None and image_size not in (height, width):
        raise DataError(
            f"image_size={image_size} does not apply to {name!r} (its images are {height}x{width}): "
            "leave image_size unset, or use an image folder, which is resized"
        )


def _check_member_readable(info: zipfile.ZipInfo, what: str, unencrypted: str, deflated: str) -> None:
    """A zip member we read must be unencrypted and stored or deflated (bzip2 and LZMA are slow to inflate, and
    their sizes are known only once inflated); `what` names it, the other two say what to do."""
    if info.flag_bits & 0x1:
        raise DataError(f"{what} is encrypted: {unencrypted}")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        method = _COMPRESSION_NAMES.get(info.compress_type, f"method {info.compress_type}")
        raise DataError(f"{what} is compressed with {method}, which is not read: {deflated}")
