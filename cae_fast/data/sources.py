"""Readers for what ``--data`` may point at: a folder of images, a ``.npy`` array, a ``.npz``
with ``images`` (and optional ``labels``). Each yields RGB uint8 frames of one size, in frame
order, one at a time or in small chunks, so memory stays bounded whatever the data size.

Every problem with the input is an ``InputError`` naming the offending path. Inputs are only
ever opened for reading.
"""

from __future__ import annotations

import os
import re
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from cae_fast.errors import InputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
ARRAY_CHUNK = 64  # frames converted at a time from an array source
_FLOAT_DTYPES = (np.float16, np.float32, np.float64)


def natural_key(text: str) -> list:
    """Sort key under which 'f2' < 'f10' (digit runs compare as numbers)."""
    return [(0, int(part), part) if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text)]


@dataclass
class Source:
    """An opened ``--data`` path: what it holds and how to identify its current contents."""

    path: Path
    kind: str  # "folder" | "npy" | "npz"
    files: list[str] = field(default_factory=list)  # folder: relative paths in frame order
    n: int = 0  # frames before any --skip-bad
    labels: np.ndarray | None = None

    def fingerprint(self) -> list:
        """Changes whenever a file the frames come from changes (name, size, mtime, and the inode
        change time, which any rewrite sets and no copy tool can set back)."""
        targets = [self.path / f for f in self.files] if self.kind == "folder" else [self.path]
        out = []
        for t in targets:
            st = t.stat()
            out.append([str(t), st.st_size, st.st_mtime_ns, st.st_ctime_ns])
        return out

    def frame_name(self, i: int) -> str:
        """The source path of frame ``i``: the image file, or ``array.npy[i]``."""
        if self.kind == "folder":
            return str(self.path / self.files[i])
        return f"{self.path}[{i}]"


def open_source(path: str | os.PathLike[str]) -> Source:
    """Inspect ``path`` (cheaply: headers and directory listings) and return its ``Source``."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "no such file or directory")
    if p.is_dir():
        return _open_folder(p)
    suffix = p.suffix.lower()
    if suffix == ".npy":
        return _open_npy(p)
    if suffix == ".npz":
        return _open_npz(p)
    raise InputError(p, "not a folder of images, a .npy or a .npz file")


def _open_folder(p: Path) -> Source:
    try:
        files = [
            os.path.relpath(os.path.join(root, name), p)
            for root, _dirs, names in os.walk(p)
            for name in names
            if name.lower().endswith(IMAGE_EXTENSIONS)
        ]
    except OSError as exc:
        raise InputError(p, f"cannot list folder: {exc.strerror or exc}") from None
    if not files:
        raise InputError(p, f"folder has no images ({', '.join(IMAGE_EXTENSIONS)}, searched recursively)")
    files.sort(key=natural_key)
    return Source(path=p, kind="folder", files=files, n=len(files))


def _check_array_header(p: Path, shape: tuple, dtype: np.dtype) -> None:
    if dtype != np.uint8 and dtype not in _FLOAT_DTYPES:
        raise InputError(p, f"images have dtype {dtype}; expected uint8, or float with values in [0, 1]")
    if len(shape) in (3, 4) and shape[0] == 0:
        raise InputError(p, f"images have shape {shape}: the array holds no frames")
    if len(shape) == 3:
        return
    if len(shape) == 4 and (shape[3] in (1, 3, 4) or shape[1] in (1, 3, 4)):
        return
    raise InputError(
        p,
        f"images have shape {shape}; expected (N, H, W, 3), (N, 3, H, W) or (N, H, W) (or 1 or 4 channels)",
    )


def _open_npy(p: Path) -> Source:
    arr = _load_npy(p)
    _check_array_header(p, arr.shape, arr.dtype)
    return Source(path=p, kind="npy", n=int(arr.shape[0]))


def _load_npy(p: Path) -> np.ndarray:
    try:
        return np.load(p, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(p, f"cannot read .npy file: {exc}") from None


def _open_npz(p: Path) -> Source:
    with _load_npz(p) as z:
        if "images" not in z.files:
            raise InputError(p, f"no 'images' array in .npz (it has: {', '.join(z.files) or 'nothing'})")
        shape, dtype = _npz_member_header(p, z, "images")
        _check_array_header(p, shape, dtype)
        labels = None
        if "labels" in z.files:
            _shape, label_dtype = _npz_member_header(p, z, "labels")
            if label_dtype.hasobject:  # loading it would need pickle, which is never used
                raise InputError(p, "'labels' has dtype object; expected 0/1 integers, one per frame")
            try:
                raw = z["labels"]
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
                raise InputError(p, f"cannot read 'labels' in .npz: {exc}") from None
            labels = _read_labels(p, raw, int(shape[0]))
    return Source(path=p, kind="npz", n=int(shape[0]), labels=labels)


def _load_npz(p: Path) -> np.lib.npyio.NpzFile:
    try:
        return np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(p, f"cannot read .npz file: {exc}") from None


def _npz_member_header(p: Path, z: np.lib.npyio.NpzFile, key: str) -> tuple[tuple, np.dtype]:
    """Shape and dtype of a member without decompressing the whole array."""
    try:
        with z.zip.open(f"{key}.npy") as f:
            version = np.lib.format.read_magic(f)
            read = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _fortran, dtype = read(f)
    except (ValueError, OSError, KeyError, zipfile.BadZipFile) as exc:
        raise InputError(p, f"cannot read '{key}' in .npz: {exc}") from None
    return tuple(shape), np.dtype(dtype)


def _read_labels(p: Path, labels: np.ndarray, n: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise InputError(p, f"'labels' has shape {labels.shape}, expected one label per frame: ({n},)")
    if not np.isin(labels, (0, 1)).all():
        raise InputError(p, "'labels' must be 0 (clean) or 1 (dirty)")
    return labels.astype(np.uint8)


def decode_image(path: str | os.PathLike[str], size: int) -> np.ndarray:
    """Read one image file as RGB uint8 ``(size, size, 3)``. Truncated or unreadable: ``InputError``."""
    try:
        with Image.open(path) as im:
            im.load()  # decodes fully now, so a truncated file fails here, not later
            rgb = _to_rgb_image(im)
            if rgb.size != (size, size):
                rgb = rgb.resize((size, size), Image.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise InputError(path, f"cannot decode image ({exc})") from None


def _to_rgb_image(im: Image.Image) -> Image.Image:
    if im.mode == "RGB":
        return im
    if im.mode in ("RGBA", "LA", "P", "PA"):
        # Transparent pixels become black, as they would be on screen over a dark background.
        rgba = im.convert("RGBA")
        back = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(back, rgba).convert("RGB")
    if im.mode.startswith("I;16") or im.mode == "I":
        # 16-bit samples (PNG's only integer mode: "I" in older Pillow), scaled by the bit depth and
        # never by content: a nearly black frame (a covered lens) must stay nearly black.
        arr = np.asarray(im, dtype=np.float64) * (255.0 / 65535.0)
        im = Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "L")
    return im.convert("RGB")


def _array_to_rgb_uint8(p: Path, chunk: np.ndarray, start: int) -> np.ndarray:
    """(n, H, W[, C]) or (n, C, H, W), uint8 or float in [0, 1] -> (n, H, W, 3) uint8."""
    if chunk.ndim == 4 and chunk.shape[3] not in (1, 3, 4):
        chunk = np.moveaxis(chunk, 1, 3)
    if chunk.ndim == 3:
        chunk = chunk[..., None]
    if chunk.dtype != np.uint8:
        lo, hi = np.nanmin(chunk), np.nanmax(chunk)
        if np.isnan(chunk).any() or lo < 0 or hi > 1:
            raise InputError(
                p,
                f"float images must have values in [0, 1]; frames {start}..{start + len(chunk) - 1} "
                f"have min {lo:.4g}, max {hi:.4g}" + (" and NaN" if np.isnan(chunk).any() else ""),
            )
        chunk = np.rint(chunk.astype(np.float32) * 255.0).astype(np.uint8)
    c = chunk.shape[3]
    if c == 1:
        chunk = np.repeat(chunk, 3, axis=3)
    elif c == 4:
        alpha = chunk[..., 3:4].astype(np.float32) / 255.0
        chunk = np.rint(chunk[..., :3].astype(np.float32) * alpha).astype(np.uint8)
    return np.ascontiguousarray(chunk)


def resize_frame(frame: np.ndarray, size: int) -> np.ndarray:
    if frame.shape[:2] == (size, size):
        return frame
    return np.asarray(Image.fromarray(frame).resize((size, size), Image.BILINEAR), dtype=np.uint8)


def iter_frames(source: Source, size: int, skip_bad: bool = False) -> Iterator[tuple[int, np.ndarray | None]]:
    """Yield ``(source index, frame)`` in frame order; ``frame`` is None for a skipped bad file."""
    if source.kind == "folder":
        for i in range(source.n):
            try:
                yield i, decode_image(source.path / source.files[i], size)
            except InputError:
                if not skip_bad:
                    raise
                yield i, None
        return
    if source.kind == "npy":
        arr = _load_npy(source.path)
        yield from _iter_array(source.path, arr, size)
        return
    arr = npz_member_memmap(source.path, "images")
    if arr is None:  # compressed: this one array has to be read whole
        with _load_npz(source.path) as z:
            try:
                arr = z["images"]
            except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
                raise InputError(source.path, f"cannot read 'images' in .npz: {exc}") from None
    yield from _iter_array(source.path, arr, size)


def npz_member_memmap(path: Path, key: str) -> np.ndarray | None:
    """Memory-map an uncompressed member of an .npz (what ``np.savez`` writes); None when the
    member is compressed or not mappable. Keeps RAM bounded for large uncompressed archives."""
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(f"{key}.npy")
        if info.compress_type != zipfile.ZIP_STORED:
            return None
        with open(path, "rb") as f:
            f.seek(info.header_offset)
            local = f.read(30)  # zip local file header; name and extra field lengths at 26..30
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            f.seek(info.header_offset + 30 + name_len + extra_len)
            version = np.lib.format.read_magic(f)
            read = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read(f)
            offset = f.tell()
    except (OSError, ValueError, KeyError, struct.error, zipfile.BadZipFile):
        return None
    if fortran or dtype.hasobject:
        return None
    return np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset)


def _iter_array(p: Path, arr: np.ndarray, size: int) -> Iterator[tuple[int, np.ndarray]]:
    for start in range(0, arr.shape[0], ARRAY_CHUNK):
        chunk = _array_to_rgb_uint8(p, np.asarray(arr[start : start + ARRAY_CHUNK]), start)
        for j, frame in enumerate(chunk):
            yield start + j, resize_frame(frame, size)


def native_size(source: Source) -> tuple[int, int]:
    """``(height, width)`` of the frames as stored, before any resizing (a folder: its first image)."""
    if source.kind == "folder":
        first = source.path / source.files[0]
        try:
            with Image.open(first) as im:  # reads the header only
                return im.size[1], im.size[0]
        except (OSError, UnidentifiedImageError) as exc:
            raise InputError(first, f"cannot read image: {exc}") from None
    if source.kind == "npy":
        shape = _load_npy(source.path).shape
    else:
        with _load_npz(source.path) as z:
            shape, _dtype = _npz_member_header(source.path, z, "images")
    if len(shape) == 4 and shape[3] not in (1, 3, 4):  # channels first, as _array_to_rgb_uint8 reads it
        return int(shape[2]), int(shape[3])
    return int(shape[1]), int(shape[2])


def array_frames(X: np.ndarray, size: int, where: str = "frames") -> np.ndarray:
    """An in-memory array of frames, ``(N, H, W, 3)``, ``(N, 3, H, W)`` or ``(N, H, W)``, uint8 or
    float in [0, 1], as uint8 ``(N, size, size, 3)``: the same conversion as an ``.npy`` file."""
    arr, p = np.asarray(X), Path(where)
    if arr.dtype == object or arr.ndim not in (3, 4):
        raise InputError(p, f"expected an array (N, H, W, 3) or (N, H, W), got shape {arr.shape}")
    _check_array_header(p, arr.shape, arr.dtype)
    if arr.shape[0] == 0 or 0 in arr.shape[1:3]:
        raise InputError(p, f"no frames (shape {arr.shape})")
    out = np.empty((arr.shape[0], size, size, 3), np.uint8)
    for i, frame in _iter_array(p, arr, size):
        out[i] = frame
    return out
