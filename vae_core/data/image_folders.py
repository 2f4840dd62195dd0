"""User image folders: one sub-folder of images per class, as a directory or a .zip read in memory, resized to a
square side; and the bounded decoding of one image file."""
from __future__ import annotations

import contextlib
import io
import os
import stat
import struct
import zipfile
import zlib
from pathlib import PurePosixPath, PureWindowsPath
from typing import BinaryIO, Iterator

import numpy as np
from PIL import Image, ImageOps

from vae_core.budget import ESTIMATE_LIMIT_BYTES, check_image_header, zip_members
from vae_core.data.checks import (_CONVERT_CHUNK_PIXELS, IMAGE_EXTENSIONS, MAX_CLASSES, MAX_COMPRESSION_RATIO,
                                  MAX_FOLDER_DECODED_BYTES, MAX_IMAGE_PIXELS, MAX_MEMBER_BYTES, MAX_SIDE,
                                  MAX_UNZIPPED_BYTES, MAX_VALUES, MAX_ZIP_DIRECTORY_BYTES, MAX_ZIP_ENTRIES,
                                  MAX_ZIP_FILES, _check_int, _check_member_readable, _check_split_settings,
                                  _max_bytes)
from vae_core.data.splits import DataSplit, _make_spec, _random_split
from vae_core.data.user_files import _hash_tree, _is_ignored, _open_user_data, _sha256, _walk_files
from vae_core.errors import DataError


def load_image_folder(
    path_or_file: str | os.PathLike | BinaryIO,
    *,
    image_size: int = 32,
    seed: int = 0,
    test_fraction: float = 0.2,
    name: str | None = None,
    max_bytes: int | None = None,
) -> DataSplit:
    """Load a folder (or .zip) with one sub-folder of images per class, resized to image_size pixels.

    A .zip is read in memory, never unpacked to disk. Bounded before the work: the zip directory (entries,
    sizes, compression ratios), each image's header (pixels and decoded bytes), the decoding done in all, and
    the memory of the result (estimated, at most max_bytes bytes).
    """
    _check_int("image_size", image_size, 4, MAX_SIDE)
    _check_split_settings(seed, test_fraction)
    limit = _max_bytes(max_bytes)
    blob, path, name = _open_user_data(path_or_file, name, limit)
    return _folder_split(blob, path, name, image_size=image_size, seed=seed, test_fraction=test_fraction,
                         max_bytes=limit)


def _folder_split(
    blob: bytes | None,
    path: str | None,
    name: str,
    *,
    image_size: int,
    seed: int,
    test_fraction: float,
    max_bytes: int = ESTIMATE_LIMIT_BYTES,
) -> DataSplit:
    """Read a class-folder tree (a directory when blob is None, else a .zip's bytes, read in memory) and split it."""
    if blob is None:
        x, y, names = _read_class_folders(_DiskTree(path, name), image_size, name, max_bytes)
        fingerprint = _hash_tree(path)  # after reading: a malformed folder is reported before hashing it all
    else:
        fingerprint = _sha256(blob)
        with _zip_tree(blob, name) as tree:
            x, y, names = _read_class_folders(tree, image_size, name, max_bytes)
    spec = _make_spec("image_folder", name, seed, test_fraction, image_size, fingerprint, path=path)
    return _random_split(x, y, names, 255.0, spec)


class _DiskTree:
    """A folder on disk as a tree of path tuples (for trusted paths: the command line, the app's own files)."""

    def __init__(self, root: str, name: str):
        self.root, self.name = root, name

    def _path(self, rel: tuple[str, ...]) -> str:
        return os.path.join(self.root, *rel)

    def listdir(self, rel: tuple[str, ...]) -> list[str]:
        return sorted(e for e in os.listdir(self._path(rel)) if not _is_ignored(e))

    def isdir(self, rel: tuple[str, ...]) -> bool:
        return os.path.isdir(self._path(rel))

    def files_under(self, rel: tuple[str, ...]) -> list[str]:
        return _walk_files(self._path(rel))

    def open(self, rel: tuple[str, ...]) -> str:
        """The file's path, once it is known to be a regular file (not a device, a pipe or a socket)."""
        path = self._path(rel)
        try:
            regular = stat.S_ISREG(os.stat(path).st_mode)
        except OSError as e:
            raise DataError(f"cannot read {'/'.join(rel)} in {self.name!r} ({e.strerror}): remove it") from e
        if not regular:
            raise DataError(f"{'/'.join(rel)} in {self.name!r} is not a regular file (a device, pipe or socket): remove it")
        return path


class _ZipTree:
    """A .zip's files as a read-only tree of path tuples, read from memory: nothing is written to disk."""

    def __init__(self, archive: zipfile.ZipFile, members: list[tuple[zipfile.ZipInfo, list[str]]], name: str):
        self.archive, self.name = archive, name
        self.files: dict[tuple[str, ...], zipfile.ZipInfo] = {}
        self.children: dict[tuple[str, ...], set[str]] = {(): set()}
        self.under: dict[tuple[str, ...], list[str]] = {}
        for info, parts in members:
            key = tuple(parts)
            if not key:
                continue
            for i in range(len(key)):
                self.children.setdefault(key[:i], set()).add(key[i])
            self.files[key] = info  # a duplicate name: the later member wins, as when unpacking
        clash = next((k for k in self.files if k in self.children), None)
        if clash is not None:
            raise DataError(f"{'/'.join(clash)!r} in {name!r} is both a file and a folder: zip the class folders again")
        for key in self.files:
            for i in range(len(key)):
                self.under.setdefault(key[:i], []).append("/".join(key[i:]))

    def listdir(self, rel: tuple[str, ...]) -> list[str]:
        return sorted(self.children.get(rel, ()))

    def isdir(self, rel: tuple[str, ...]) -> bool:
        return rel in self.children

    def files_under(self, rel: tuple[str, ...]) -> list[str]:
        return sorted(self.under.get(rel, []))

    def open(self, rel: tuple[str, ...]) -> BinaryIO:
        info = self.files[rel]
        try:
            return io.BytesIO(self.archive.read(info))  # zipfile stops at the declared size and checks the CRC
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, ValueError, zlib.error) as e:
            raise DataError(
                f"cannot unpack {info.filename!r} from {self.name!r} ({e}): zip the class folders again"
            ) from e


@contextlib.contextmanager
def _zip_tree(blob: bytes, name: str) -> Iterator[_ZipTree]:
    """The .zip's tree, after its directory, names, sizes and compression were checked (nothing inflated yet)."""
    try:
        archive = zip_members(blob, repr(name), max_entries=MAX_ZIP_ENTRIES,
                              max_directory_bytes=MAX_ZIP_DIRECTORY_BYTES, error=DataError, remedy="use fewer images")
    except DataError as e:
        if "corrupt or truncated" not in str(e):
            raise
        raise DataError(f"{name!r} is not a valid .zip file (no complete zip directory): zip the class folders again"
                        ) from None
    with archive:
        yield _ZipTree(archive, _safe_members(archive, name), name)


def _safe_members(archive: zipfile.ZipFile, name: str) -> list[tuple[zipfile.ZipInfo, list[str]]]:
    """The files to read with their path parts; refuses unsafe names and zip bombs before inflating anything."""
    members, total = [], 0
    for info in archive.infolist():
        parts = _safe_parts(info.filename, name)
        if info.is_dir() or any(_is_ignored(p) for p in parts):
            continue
        _check_member_readable(info, f"{info.filename!r} in {name!r}", "zip the class folders without a password",
                               "zip the class folders with the usual (deflate) compression")
        total += info.file_size
        big = info.file_size > (1 << 20)
        if big and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            raise DataError(
                f"{info.filename!r} in {name!r} expands {info.file_size // max(info.compress_size, 1)}x "
                "(a zip bomb?): refusing it; zip ordinary image files"
            )
        if info.file_size > MAX_MEMBER_BYTES:
            raise DataError(
                f"{info.filename!r} in {name!r} is {info.file_size / 2**20:,.0f} MiB, over the "
                f"{MAX_MEMBER_BYTES >> 20} MiB limit per file: shrink the image"
            )
        members.append((info, parts))
    if len(members) > MAX_ZIP_FILES:
        raise DataError(f"{name!r} holds {len(members):,} files, over the limit of {MAX_ZIP_FILES:,}: use fewer images")
    if total > MAX_UNZIPPED_BYTES:
        raise DataError(
            f"{name!r} would unpack to {total / 2**20:,.0f} MiB, over the {MAX_UNZIPPED_BYTES >> 20} MiB limit "
            "(a zip bomb?): use fewer or smaller images"
        )
    return members


def _safe_parts(filename: str, name: str) -> list[str]:
    """Split a zip member name into path parts; refuse absolute paths and '..' (path traversal)."""
    norm = filename.replace("\\", "/")
    if PurePosixPath(norm).is_absolute() or PureWindowsPath(filename).drive or PureWindowsPath(filename).is_absolute():
        raise DataError(
            f"{name!r} contains an absolute path {filename!r}: refusing to unpack it; zip relative paths only"
        )
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DataError(
            f"{name!r} contains a path with '..' ({filename!r}), which could escape the folder: refusing it"
        )
    return parts


def _read_class_folders(
    tree: _DiskTree | _ZipTree, image_size: int, name: str, max_bytes: int = ESTIMATE_LIMIT_BYTES
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Images (N, S, S, C) uint8 with C = 1 if all are grey else 3, labels (N,), and the class names.

    Bounded before decoding: the result's memory (estimated as colour: the uint8 images, a copy made by the split,
    and the float32 tensors, 18 bytes per pixel) against max_bytes; then each image's header, and the decoding done
    in all (MAX_FOLDER_DECODED_BYTES), before the image is decoded.
    """
    root = _unwrap_single_folder(tree)
    classes = _class_files(tree, root, name)
    n = sum(len(files) for _, files in classes)
    pixels = n * image_size * image_size
    cost = 18 * pixels
    if pixels > MAX_VALUES or cost > max_bytes:
        raise DataError(
            f"{n} images of {image_size}x{image_size} are too many: they would take about {cost / 2**20:,.0f} MiB, "
            f"over the {max_bytes / 2**20:,.0f} MiB limit: use fewer images or a smaller image_size"
        )
    x = np.empty((n, image_size, image_size, 3), np.uint8)
    labels = np.empty(n, np.int64)
    grey, decoded, i = True, 0, 0
    for label, (class_dir, files) in enumerate(classes):
        for rel in files:
            source = tree.open((*root, class_dir, *rel.split("/")))
            pixels, is_grey, cost_i = _read_image(source, f"{class_dir}/{rel}", image_size, name,
                                                  decode_left=MAX_FOLDER_DECODED_BYTES - decoded)
            x[i] = pixels[..., None] if pixels.ndim == 2 else pixels  # grey fills all three channels
            decoded += cost_i
            labels[i] = label
            grey &= is_grey
            i += 1
    return (x[..., :1] if grey else x), labels, tuple(c for c, _ in classes)


def _class_files(tree: _DiskTree | _ZipTree, root: tuple[str, ...], name: str) -> list[tuple[str, list[str]]]:
    """[(class folder name, sorted image paths relative to it)] in sorted class order."""
    entries = tree.listdir(root)
    stray = [e for e in entries if not tree.isdir((*root, e))]
    dirs = [e for e in entries if tree.isdir((*root, e))]
    if len(dirs) < 2:
        found = f"one class ({dirs[0]!r})" if dirs else "no class folders"
        found = "its images directly inside, so one class" if stray and not dirs else found
        raise DataError(
            f"{name!r} has {found}; need at least 2 classes: put each class in its own sub-folder (e.g. cats/, dogs/)"
        )
    if stray:
        raise DataError(
            f"{stray[0]!r} in {name!r} is not inside a class folder: put each class's images in its own sub-folder"
        )
    if len(dirs) > MAX_CLASSES:
        raise DataError(f"{name!r} has {len(dirs)} class folders, over the limit of {MAX_CLASSES}: merge classes")
    classes, total = [], 0
    for d in dirs:
        files = tree.files_under((*root, d))
        for rel in files:
            if not rel.lower().endswith(IMAGE_EXTENSIONS):
                raise DataError(
                    f"{d}/{rel} in {name!r} is not an image ({', '.join(e[1:] for e in IMAGE_EXTENSIONS[:5])}, ...): "
                    "remove it or move it out of the folder"
                )
        if not files:
            raise DataError(f"class folder {d!r} in {name!r} has no images: add images or remove the folder")
        total += len(files)
        if total > MAX_ZIP_FILES:
            raise DataError(f"{name!r} has over {MAX_ZIP_FILES:,} images: use fewer")
        classes.append((d, files))
    return classes


def _unwrap_single_folder(tree: _DiskTree | _ZipTree) -> tuple[str, ...]:
    """Step into a lone top-level folder that only wraps the class folders (common when zipping a folder)."""
    entries = tree.listdir(())
    if len(entries) != 1 or not tree.isdir((entries[0],)):
        return ()
    inner = (entries[0],)
    inner_entries = tree.listdir(inner)
    # A lone folder holding images is one class (reported as such), not a wrapper.
    if inner_entries and all(tree.isdir((*inner, e)) for e in inner_entries):
        return inner
    return ()


def decode_image(
    source: str | bytes | BinaryIO, what: str, *, fit: int | None = None, decode_left: int | None = None
) -> tuple[Image.Image, int]:
    """One image file (a path, bytes or a binary file) as a decoded 'L' or 'RGB' PIL image, and the bytes its
    decoding took. The one bounded image reader of the package (image folders, .zip files, the Interpolate page).

    Bounded from the header, before any pixel is decoded (Image.open reads only the header): at most
    MAX_IMAGE_PIXELS pixels and budget.MAX_IMAGE_DECODED_BYTES decoded bytes (width x height x bytes per pixel of
    the file's mode: 16-bit grey is 2, RGB 4 as Pillow holds it), and at most decode_left bytes when given.
    fit (pixels): a JPEG is decoded at the smallest scale that still covers fit x fit (draft mode). EXIF rotation
    is applied in place; 16- and 32-bit grey is scaled to 8 bits a chunk at a time (no float64 copy of the image).
    Peak memory is about three decoded copies (≤ 144 MiB). Raises DataError with a one-line message.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    try:
        with Image.open(source) as img:
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS:
                raise DataError(
                    f"{what} is {w}x{h} pixels, over the {MAX_IMAGE_PIXELS // 1_000_000} megapixel limit: "
                    "shrink it first"
                )
            if fit is not None:
                img.draft(None, (fit, fit))  # JPEG decodes at reduced size: much faster for photos
            decoded = check_image_header(img, what, error=DataError)
            if decode_left is not None and decoded > decode_left:
                raise DataError(
                    f"decoding the images of {what.split(' in ', 1)[-1]} would take over "
                    f"{MAX_FOLDER_DECODED_BYTES >> 20} MiB of pixels (reached at {what.split(' in ', 1)[0]}): "
                    "shrink the images (e.g. to 256x256) before zipping them"
                )
            img.load()
            ImageOps.exif_transpose(img, in_place=True)  # phone photos store their rotation in EXIF
            return _to_l_or_rgb(img), decoded
    except DataError:
        raise
    except Image.DecompressionBombError as e:
        raise DataError(f"{what} is too many pixels ({e}): shrink it first") from e
    except (OSError, SyntaxError, ValueError, EOFError, TypeError, IndexError, KeyError, struct.error,
            ZeroDivisionError, MemoryError) as e:
        raise DataError(f"cannot read image {what} ({e}): remove it or save it again as PNG or JPEG") from e


def _read_image(
    source: str | BinaryIO, rel: str, image_size: int, name: str, *, decode_left: int | None = None
) -> tuple[np.ndarray, bool, int]:
    """One image file -> ((S, S) grey or (S, S, 3) RGB uint8, whether it is greyscale, bytes its decoding took)."""
    img, decoded = decode_image(source, f"{rel} in {name!r}", fit=image_size, decode_left=decode_left)
    try:
        if img.size != (image_size, image_size):
            img = img.resize((image_size, image_size), Image.Resampling.BILINEAR, reducing_gap=2.0)
        pixels = np.asarray(img)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read image {rel} in {name!r} ({e}): remove it or save it again as PNG or JPEG") from e
    if pixels.ndim == 2:  # 'L'
        return pixels, True, decoded
    grey = bool((pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all())
    return pixels, grey, decoded


def _to_l_or_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 'L' (grey) or 'RGB', dropping alpha and scaling 16-bit grey to 8 bits."""
    if img.mode in ("L", "RGB"):
        return img
    if img.mode in ("1", "LA", "La"):
        return img.convert("L")
    if img.mode.startswith("I") or img.mode == "F":  # 16/32-bit grey: PIL's convert would clip, not scale
        a = np.asarray(img)  # 2 or 4 bytes per pixel
        hi = a.max()
        top = 1.0 if img.mode == "F" and hi <= 1 else (65535.0 if hi > 255 else 255.0)
        out = np.empty(a.shape, np.uint8)
        flat_in, flat_out = a.reshape(-1), out.reshape(-1)
        for start in range(0, flat_in.size, _CONVERT_CHUNK_PIXELS):  # float64 a chunk at a time, not the image
            chunk = flat_in[start : start + _CONVERT_CHUNK_PIXELS].astype(np.float64)
            flat_out[start : start + _CONVERT_CHUNK_PIXELS] = np.clip(chunk / top * 255 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(out)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # PIL warns when palette transparency goes straight to RGB
    return img.convert("RGB")
