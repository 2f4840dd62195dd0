"""Data sources for Latent Lab: built-in sets, the user's .npz files and image folders.

Every source ends up as a `DataSplit`: a train and a test `Dataset` of float32 images (N, C, H, W)
in [0, 1] with int64 class labels, plus a JSON-able `spec` from which `load_from_spec` rebuilds
exactly the same split later (a checkpoint stores it).

    split = load_data("digits", seed=0)           # built-in: digits, shapes, shapes64, mnist, fashion-mnist
    split = load_data("my_images.npz")            # x (N, H, W[, C]), optional y and label_names
    split = load_data("pets.zip", image_size=32)  # one sub-folder per class, as a directory or a .zip

User input is untrusted: files are parsed without pickle, sizes are bounded before anything big is
read or unpacked, and every problem is reported as a one-line `DataError` that says what to do.
The cost of one file is bounded before the work (vae_core/budget.py): the memory a load will take is
estimated from the zip directory and the .npy headers or image headers, and refused over `max_bytes`
(default ESTIMATE_LIMIT_BYTES, within the 256 MB promise); a caller that trusts its own big file (the
command line's --max-data-mb) may pass more. A path written in a checkpoint is never opened
(`load_from_spec`).

One module per concept: `sources` (the entry points), `builtin` (ids, the digits), `mnist`, `shapes`, `npz`,
`image_folders`, `user_files` (opening and fingerprints), `splits` (Dataset, DataSplit, the spec) and `checks`
(the limits and the shared checks). The bundled files stay in vae_core/datasets/.
"""
from vae_core.data.builtin import BUILTIN_SOURCES
from vae_core.data.checks import (IMAGE_EXTENSIONS, MAX_CLASSES, MAX_COMPRESSION_RATIO, MAX_FILE_BYTES,
                                  MAX_FOLDER_DECODED_BYTES, MAX_IMAGE_PIXELS, MAX_MEMBER_BYTES, MAX_NPZ_MEMBERS,
                                  MAX_SIDE, MAX_UNZIPPED_BYTES, MAX_VALUES, MAX_ZIP_DIRECTORY_BYTES, MAX_ZIP_ENTRIES,
                                  MAX_ZIP_FILES, MIN_IMAGES)
from vae_core.data.image_folders import decode_image, load_image_folder
from vae_core.data.mnist import MNIST_BUNDLE, MNIST_BUNDLE_SHA256, MNIST_COPY, mnist_arrays
from vae_core.data.npz import load_npz
from vae_core.data.shapes import (SHAPE_FACTOR_NAMES, SHAPE_FACTOR_SIZES, SHAPE_NAMES, SHAPES_COUNT, factor_sweeps,
                                  make_shapes, render_shapes)
from vae_core.data.sources import load_data, load_from_spec, spec_cache_key
from vae_core.data.splits import Dataset, DataSplit

__all__ = [
    "load_data", "load_from_spec", "spec_cache_key", "load_npz", "load_image_folder", "decode_image",
    "Dataset", "DataSplit", "BUILTIN_SOURCES", "mnist_arrays", "MNIST_BUNDLE", "MNIST_BUNDLE_SHA256", "MNIST_COPY",
    "factor_sweeps", "make_shapes", "render_shapes", "SHAPE_NAMES", "SHAPE_FACTOR_NAMES", "SHAPE_FACTOR_SIZES", "SHAPES_COUNT",
    "MIN_IMAGES", "MAX_SIDE", "MAX_VALUES", "MAX_CLASSES", "MAX_FILE_BYTES", "MAX_ZIP_FILES", "MAX_ZIP_ENTRIES",
    "MAX_ZIP_DIRECTORY_BYTES", "MAX_NPZ_MEMBERS", "MAX_UNZIPPED_BYTES", "MAX_MEMBER_BYTES", "MAX_COMPRESSION_RATIO",
    "MAX_IMAGE_PIXELS", "MAX_FOLDER_DECODED_BYTES", "IMAGE_EXTENSIONS",
]
