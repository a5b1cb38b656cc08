"""Issue 31, items 4 and 5: 16-bit frames decode by bit depth; a cache entry follows content."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from cae_fast.data.cache import load_or_build
from cae_fast.data.sources import decode_image, open_source


def test_a_dark_16_bit_frame_stays_dark(tmp_path):
    rng = np.random.default_rng(0)
    dark = rng.integers(0, 212, (32, 32), dtype=np.uint16)  # a covered lens: max 211 of 65535
    bright = rng.integers(0, 65536, (32, 32), dtype=np.uint16)
    for name, value in (("dark", dark), ("bright", bright)):
        Image.fromarray(value).save(tmp_path / f"{name}.png")
        got = decode_image(tmp_path / f"{name}.png", 32)
        want = np.floor(value / 257.0 + 0.5)  # 65535 / 255 = 257: the 16-bit range onto 8 bits
        assert got.shape == (32, 32, 3) and (got == got[..., :1]).all()  # gray in every channel
        np.testing.assert_array_equal(got[..., 0], want)
    assert decode_image(tmp_path / "dark.png", 32).max() <= 1  # not stretched to normal brightness


def _frames(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (20, 16, 16, 3), dtype=np.uint8)


def test_an_array_rewritten_with_its_mtime_restored_is_not_served_from_cache(tmp_path):
    path, cache = tmp_path / "x.npy", tmp_path / "cache"
    np.save(path, _frames(1))
    first = load_or_build(open_source(path), 16, cache)
    np.testing.assert_array_equal(first.images, _frames(1))
    st = path.stat()
    np.save(path, _frames(2))  # other frames, same shape and size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # as cp -p and rsync -t leave it
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    second = load_or_build(open_source(path), 16, cache)
    assert not second.reused
    np.testing.assert_array_equal(second.images, _frames(2))
    assert load_or_build(open_source(path), 16, cache).reused  # unchanged content: reused


def test_a_folder_image_rewritten_with_its_mtime_restored_is_noticed(tmp_path):
    root, cache = tmp_path / "frames", tmp_path / "cache"
    root.mkdir()
    for i, frame in enumerate(_frames(1)):
        Image.fromarray(frame).save(root / f"f{i}.png", compress_level=0)  # size set by shape alone
    assert not load_or_build(open_source(root), 16, cache, workers=0).reused
    target = root / "f7.png"
    st = target.stat()
    other = _frames(1)[7].copy()
    other[0, 0] ^= 1  # one pixel
    Image.fromarray(other).save(target, compress_level=0)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert target.stat().st_size == st.st_size and target.stat().st_mtime_ns == st.st_mtime_ns
    again = load_or_build(open_source(root), 16, cache, workers=0)
    assert not again.reused
    np.testing.assert_array_equal(again.images[7], other)
