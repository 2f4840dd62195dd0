"""The cost budget of one untrusted file, checked from headers and declared sizes before any real work.

The promise: loading any one file (a checkpoint .pt, a data .npz, a .zip of images, a single image) is refused or
bounded before it costs the process more than MEMORY_BUDGET_BYTES of extra memory or CPU_BUDGET_SECONDS of CPU.
A refusal reads only the file's directory and headers: milliseconds and a few MB whatever the file declares.

How each kind of file is bounded (the numbers live next to the code that reads the file):

- zip archives (all three kinds are zips): the end-of-central-directory record is read first, and the number of
  entries and the directory's size are bounded before `zipfile` parses a single entry (`zip_members`);
- checkpoints (vae_core/checkpoint.py): every record stored uncompressed, the pickle at most 1 MiB, the model
  settings bounded (vae_core/config.py: side, layers, widths, classes, parameters, activations per example), and
  every tensor's shape and dtype checked against the settings before the model is built;
- .npz files (vae_core/data/npz.py): each member's .npy header is read from the archive before its data; bzip2 and
  LZMA members, non-numeric dtypes and declared sizes that do not match the directory are refused, and the
  declared bytes plus the float32 tensors they become must fit ESTIMATE_LIMIT_BYTES;
- images (here, `check_image_header`): width x height x bytes per pixel of the decoded mode, from the header,
  before a pixel is decoded.

The estimates count the big arrays a load makes; ESTIMATE_LIMIT_BYTES leaves a quarter of the promise for what
they do not count (the interpreter, torch's allocator, small temporaries).
"""
from __future__ import annotations

import io
import struct
import zipfile
from typing import TYPE_CHECKING

from vae_core.errors import UserInputError

if TYPE_CHECKING:
    from PIL import Image as PILImage

MEMORY_BUDGET_BYTES = 256 * 10**6  # the promise: extra memory one file may cost, in bytes
CPU_BUDGET_SECONDS = 2.0  # the promise: CPU time one file may cost, in seconds
ESTIMATE_LIMIT_BYTES = 192 * 2**20  # what the estimated big arrays of one load may add up to, in bytes

# Decoded images: bytes per pixel of each PIL mode as Pillow holds it in memory (RGB is padded to 4 bytes).
_MODE_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2, "LA": 4, "La": 4, "PA": 4,
               "RGB": 4, "RGBA": 4, "RGBa": 4, "RGBX": 4, "CMYK": 4, "YCbCr": 4, "LAB": 4, "HSV": 4, "I": 4, "F": 4}
MAX_IMAGE_DECODED_BYTES = 48 * 2**20  # one decoded image, in bytes: 12 MP of RGB, 24 MP of 16-bit grey, 48 MP of L

_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record (22 bytes)
_ZIP64_LOCATOR = struct.Struct("<4sLQL")  # zip64 end of central directory locator (20 bytes)
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")  # zip64 end of central directory record (56 bytes)
_CENTRAL_ENTRY_SIGNATURE = b"PK\x01\x02"


def zip_members(blob: bytes, name: str, *, max_entries: int, max_directory_bytes: int,
                error: type[UserInputError], remedy: str = "use fewer files or shorter names") -> zipfile.ZipFile:
    """The archive of `blob` (bytes), opened only after its directory's declared size was checked.

    `zipfile` parses every central-directory entry on opening (about 13 µs and 0.6 kB each), so a 60 MB file of
    empty entries would cost seconds and hundreds of MB. Here the end record is read first; the entries are
    counted by their signature in the directory's bytes (an upper bound on what zipfile will parse), and the
    directory's size in bytes (names and extra fields) is bounded, so parsing costs at most max_entries entries.
    `name` is how messages name the file (e.g. "'pets.zip'" or "the checkpoint"), `remedy` what to do about too
    many entries. Raises `error` with a one-line message.
    """
    entries, directory_bytes, directory_start = _central_directory(blob, name, error)
    if directory_bytes > max_directory_bytes:
        raise error(f"{name} has a zip directory of {directory_bytes:,} bytes, over the {max_directory_bytes:,}-byte "
                    f"limit for this kind of file: {remedy}")
    counted = blob[directory_start:directory_start + directory_bytes].count(_CENTRAL_ENTRY_SIGNATURE)
    if max(entries, counted) > max_entries:
        raise error(f"{name} holds {max(entries, counted):,} files, over the limit of {max_entries:,}: {remedy}")
    try:
        return zipfile.ZipFile(io.BytesIO(blob))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, struct.error,
            UnicodeDecodeError, NotImplementedError) as exc:
        raise error(f"{name} is corrupt or truncated (not a valid zip archive: {type(exc).__name__}): "
                    "save the file again") from None


def _central_directory(blob: bytes, name: str, error: type[UserInputError]) -> tuple[int, int, int]:
    """(entries declared, directory size in bytes, directory start offset) from the end record(s), as zipfile
    reads them (zip64 records sit just before their locator)."""
    not_zip = f"{name} is corrupt or truncated (no zip end-of-directory record): save the file again"
    pos = blob.rfind(b"PK\x05\x06", max(0, len(blob) - (_EOCD.size + 0xFFFF)))
    if pos < 0 or pos + _EOCD.size > len(blob):
        raise error(not_zip)
    _, _, _, _, entries, size, _, _ = _EOCD.unpack_from(blob, pos)
    end = pos
    locator = pos - _ZIP64_LOCATOR.size
    if locator >= _ZIP64_EOCD.size and blob[locator:locator + 4] == b"PK\x06\x07":
        record = locator - _ZIP64_EOCD.size
        if blob[record:record + 4] == b"PK\x06\x06":
            fields = _ZIP64_EOCD.unpack_from(blob, record)
            entries, size, end = fields[7], fields[8], record
    start = end - size
    if start < 0:
        raise error(f"{name} is corrupt or truncated (its zip directory is larger than the file): save the file again")
    return entries, size, start


def check_stored_records(archive: zipfile.ZipFile, name: str, *, max_total_bytes: int,
                         error: type[UserInputError]) -> list[zipfile.ZipInfo]:
    """A checkpoint's records: all stored uncompressed, sizes consistent, total at most max_total_bytes.

    torch.save writes every record uncompressed; a deflated record would let a 1 MB file unpack to 1 GB (its
    declared size is not checked by torch's reader until it has been inflated). Stored records cost exactly their
    bytes, which are in the file; overlapping records (the same bytes named twice) are caught by the total.
    """
    infos = archive.infolist()
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise error(f"record {info.filename!r} of {name} is encrypted: not a Latent Lab checkpoint")
        if info.compress_type != zipfile.ZIP_STORED:
            raise error(f"record {info.filename!r} of {name} is compressed (method {info.compress_type}); a Latent "
                        "Lab checkpoint stores its records uncompressed: save it again with torch.save")
        if info.file_size != info.compress_size:
            raise error(f"record {info.filename!r} of {name} declares {info.file_size:,} bytes but holds "
                        f"{info.compress_size:,}: the file is damaged or was edited")
        total += info.file_size
    if total > max_total_bytes:
        raise error(f"the records of {name} add up to {total / 2**20:,.0f} MiB, more than the file holds or over "
                    f"the {max_total_bytes >> 20} MiB limit: the file is damaged or was edited")
    return infos


def image_decoded_bytes(size: tuple[int, int], mode: str) -> int:
    """Bytes Pillow allocates to decode an image of `size` (width, height in pixels) in PIL `mode`."""
    width, height = size
    return int(width) * int(height) * _MODE_BYTES.get(mode, 8)  # unknown modes: assume the widest


def check_image_header(image: PILImage.Image, what: str, *, max_pixels: int | None = None,
                       max_bytes: int = MAX_IMAGE_DECODED_BYTES, error: type[UserInputError] = UserInputError) -> int:
    """Refuse an opened (header only, nothing decoded) image whose decoded size is over the bounds; returns its
    decoded bytes. Pillow's Image.open reads only the header, so this costs microseconds whatever the file."""
    width, height = image.size
    if max_pixels is not None and width * height > max_pixels:
        raise error(f"{what} is {width}x{height} pixels, over the {max_pixels // 1_000_000} megapixel limit: "
                    "shrink it first")
    decoded = image_decoded_bytes(image.size, image.mode)
    if decoded > max_bytes:
        raise error(f"{what} is {width}x{height} pixels of mode {image.mode}, {decoded / 2**20:,.0f} MiB once "
                    f"decoded, over the {max_bytes >> 20} MiB limit per image: shrink it or save it with 8 bits "
                    "per channel")
    return decoded


__all__ = ["MEMORY_BUDGET_BYTES", "CPU_BUDGET_SECONDS", "ESTIMATE_LIMIT_BYTES", "MAX_IMAGE_DECODED_BYTES",
           "zip_members", "check_stored_records", "image_decoded_bytes", "check_image_header"]
