import os

import numpy as np
import pytest
import torch
from PIL import Image

import cae_fast.data.cache as cache
import cae_fast.data.sources as sources
from cae_fast.config import Config
from cae_fast.data import FrameDataset, load_frames, to_float
from cae_fast.data.cache import cache_key, load_or_build
from cae_fast.data.sources import decode_image, natural_key, open_source
from cae_fast.errors import InputError


def test_natural_sort():
    names = ["f10.png", "f2.png", "a/f1.png", "f1.png", "b/x.png"]
    assert sorted(names, key=natural_key) == ["a/f1.png", "b/x.png", "f1.png", "f2.png", "f10.png"]


def test_folder_is_recursive_and_naturally_sorted(tiny_folder, tmp_path):
    (tiny_folder / "a" / "readme.txt").write_text("ignored")
    src = open_source(tiny_folder)
    assert src.kind == "folder" and src.n == 48
    assert src.files[:3] == ["a/f0.png", "a/f1.png", "a/f2.png"] and src.files[24] == "b/f24.png"
    frames = load_frames(Config(data=str(tiny_folder), image_size=32, out=str(tmp_path / "o")))
    np.testing.assert_array_equal(frames.images[10], np.asarray(Image.open(tiny_folder / "a" / "f10.png")))
    assert frames.paths[10] == str(tiny_folder / "a" / "f10.png") and frames.labels is None


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16"])
def test_modes_become_rgb_and_are_resized(tmp_path, mode):
    arr = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    img = Image.fromarray(arr)
    if mode == "I;16":
        img = Image.fromarray(arr[..., 0].astype(np.uint16) * 257)  # 16-bit grayscale
    else:
        img = img.convert(mode)
    path = tmp_path / f"x{mode.replace(';', '')}.png"
    img.save(path)
    out = decode_image(path, 16)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    if mode == "L":
        assert (out[..., 0] == out[..., 1]).all()


@pytest.mark.parametrize("layout", ["nhwc", "nchw", "nhw", "float", "float_nchw", "rgba"])
def test_npy_layouts(tmp_path, tiny_frames, layout):
    images, _ = tiny_frames
    arr = {
        "nhwc": images,
        "nchw": images.transpose(0, 3, 1, 2),
        "nhw": images[..., 0],
        "float": images.astype(np.float32) / 255,
        "float_nchw": (images.astype(np.float64) / 255).transpose(0, 3, 1, 2),
        "rgba": np.concatenate([images, np.full(images.shape[:3] + (1,), 255, np.uint8)], -1),
    }[layout]
    path = tmp_path / "a.npy"
    np.save(path, arr)
    frames = load_frames(Config(data=str(path), image_size=32, out=str(tmp_path / "o")))
    expected = np.repeat(images[..., :1], 3, -1) if layout == "nhw" else images
    np.testing.assert_array_equal(frames.images, expected)
    assert frames.names[3] == f"{path}[3]"


def test_npy_is_resized(tmp_path, tiny_frames):
    path = tmp_path / "a.npy"
    np.save(path, tiny_frames[0])
    frames = load_frames(Config(data=str(path), image_size=16, out=str(tmp_path / "o")))
    assert frames.images.shape == (48, 16, 16, 3)


def test_cache_reused_without_decoding_and_invalidated_by_mtime(tiny_folder, tmp_path, monkeypatch):
    cfg = Config(data=str(tiny_folder), image_size=32, out=str(tmp_path / "run1"))
    first = load_frames(cfg)
    assert not first.from_cache and isinstance(first.images, np.memmap)
    cache_dir = tmp_path / ".cae_fast_cache"
    assert len(list(cache_dir.glob("*.u8"))) == 1 and not list(cache_dir.glob("*tmp*"))

    def no_decode(*a, **k):
        raise AssertionError("decoded again although the cache is valid")

    monkeypatch.setattr(sources, "decode_image", no_decode)
    second = load_frames(Config(data=str(tiny_folder), image_size=32, out=str(tmp_path / "run2")))
    assert second.from_cache
    np.testing.assert_array_equal(second.images, first.images)

    monkeypatch.undo()
    target = tiny_folder / "b" / "f30.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(target)
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    third = load_frames(cfg)
    assert not third.from_cache and (third.images[30] == 0).all()
    assert len(list(cache_dir.glob("*.u8"))) == 1  # the stale entry was dropped


def test_cache_key_depends_on_image_size(tiny_folder, tmp_path):
    src = open_source(tiny_folder)
    a = load_or_build(src, 32, tmp_path / "c")
    b = load_or_build(src, 16, tmp_path / "c")
    assert a.images.shape[1] == 32 and b.images.shape[1] == 16 and not b.reused


def test_failed_build_leaves_no_cache_entry(tmp_path, tiny_folder):
    (tiny_folder / "b" / "f40.png").write_bytes(b"junk")
    with pytest.raises(InputError, match="cannot decode"):
        load_or_build(open_source(tiny_folder), 32, tmp_path / "c")
    assert list((tmp_path / "c").iterdir()) == []
    built = load_or_build(open_source(tiny_folder), 32, tmp_path / "c", skip_bad=True)
    assert built.skipped == [open_source(tiny_folder).files.index("b/f40.png")] and len(built.kept) == 47


def test_npz_labels_and_input_untouched(tiny_npz, tmp_path):
    before = (tiny_npz.read_bytes(), tiny_npz.stat().st_mtime_ns)
    frames = load_frames(Config(data=str(tiny_npz), image_size=32, out=str(tmp_path / "o")))
    assert frames.labels.dtype == np.uint8 and frames.labels.sum() == 6
    assert (tiny_npz.read_bytes(), tiny_npz.stat().st_mtime_ns) == before


def test_bad_labels_values(tmp_path, tiny_frames):
    path = tmp_path / "x.npz"
    np.savez(path, images=tiny_frames[0], labels=np.full(48, 2))
    with pytest.raises(InputError, match="0 .clean. or 1"):
        open_source(path)


def test_nan_in_float_npy(tmp_path):
    arr = np.zeros((4, 16, 16, 3), np.float32)
    arr[2, 0, 0, 0] = np.nan
    np.save(tmp_path / "n.npy", arr)
    with pytest.raises(InputError, match="NaN"):
        load_or_build(open_source(tmp_path / "n.npy"), 16, tmp_path / "c")


def test_dataset_batches_and_float_conversion(tiny_frames):
    images, _ = tiny_frames
    ds = FrameDataset(images)
    batch = ds.__getitems__([5, 1, 3])
    np.testing.assert_array_equal(batch.numpy(), images[[5, 1, 3]])
    x = to_float(batch, torch.device("cpu"))
    # NCHW view of the NHWC frames: channels-last in memory, no transpose copy
    assert x.shape == (3, 3, 32, 32) and x.is_contiguous(memory_format=torch.channels_last)
    assert float(x.max()) <= 1.0
    np.testing.assert_allclose(x[0].permute(1, 2, 0).numpy(), images[5] / 255, atol=1e-6)


def test_dataset_pickles_a_memmap_by_name(tiny_folder, tmp_path):
    import pickle

    frames = load_frames(Config(data=str(tiny_folder), image_size=32, out=str(tmp_path / "o")))
    blob = pickle.dumps(FrameDataset(frames.images))
    assert len(blob) < 10_000  # not the 147 kB of pixels: workers re-map the file
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.__getitems__([0, 47]).numpy(), frames.images[[0, 47]])


def test_uncompressed_npz_is_memory_mapped_compressed_is_read(tmp_path, tiny_frames):
    from cae_fast.data.sources import npz_member_memmap

    images, labels = tiny_frames
    np.savez(tmp_path / "raw.npz", labels=labels, images=images)
    np.savez_compressed(tmp_path / "zip.npz", images=images, labels=labels)
    mapped = npz_member_memmap(tmp_path / "raw.npz", "images")
    assert isinstance(mapped, np.memmap)
    np.testing.assert_array_equal(mapped, images)
    assert npz_member_memmap(tmp_path / "zip.npz", "images") is None
    for name in ("raw.npz", "zip.npz"):
        frames = load_frames(Config(data=str(tmp_path / name), image_size=32, out=str(tmp_path / "o")))
        np.testing.assert_array_equal(frames.images, images)
        np.testing.assert_array_equal(frames.labels, labels)


def _count_decodes(monkeypatch):
    calls = []
    real = sources.decode_image

    def counting(path, size):
        calls.append(path)
        return real(path, size)

    monkeypatch.setattr(sources, "decode_image", counting)
    return calls


def test_parallel_cache_build_equals_serial(tiny_folder, tmp_path):
    (tiny_folder / "b" / "f40.png").write_bytes(b"junk")
    src = open_source(tiny_folder)
    serial = load_or_build(src, 32, tmp_path / "s", skip_bad=True, workers=0)
    parallel = load_or_build(src, 32, tmp_path / "p", skip_bad=True, workers=2)
    assert (parallel.kept, parallel.skipped) == (serial.kept, serial.skipped) and len(serial.kept) == 47
    key = cache_key(src, 32, True)
    assert (tmp_path / "p" / f"{key}.u8").read_bytes() == (tmp_path / "s" / f"{key}.u8").read_bytes()
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [f"{key}.json", f"{key}.u8"]
    with pytest.raises(InputError, match="f40.png: cannot decode"):  # the same error as serially
        load_or_build(src, 32, tmp_path / "q", workers=2)
    assert list((tmp_path / "q").iterdir()) == []


class _Interrupted(Exception):
    pass


def _interrupt_after(monkeypatch, chunks):
    real, seen = cache._save_status, []

    def save(record, status):
        if len(seen) == chunks:
            raise _Interrupted
        seen.append(1)
        real(record, status)

    monkeypatch.setattr(cache, "_save_status", save)


@pytest.mark.parametrize("workers", [0, 2])
def test_interrupted_cache_build_resumes(tiny_folder, tmp_path, monkeypatch, workers):
    src, c = open_source(tiny_folder), tmp_path / "c"
    reference = load_or_build(src, 32, tmp_path / "ref", workers=0)
    monkeypatch.setattr(cache, "_CHUNK", 8)
    _interrupt_after(monkeypatch, 2)
    with pytest.raises(_Interrupted):
        load_or_build(src, 32, c, workers=workers)
    key = cache_key(src, 32, False)
    assert not (c / f"{key}.u8").exists() and not (c / f"{key}.json").exists()  # nothing usable
    assert (c / f"{key}.u8.partial").exists()
    monkeypatch.undo()
    monkeypatch.setattr(cache, "_CHUNK", 8)
    calls = _count_decodes(monkeypatch)
    resumed = load_or_build(src, 32, c, workers=0)
    assert not resumed.reused and len(calls) == 48 - 2 * 8  # only the frames not recorded as done
    assert (c / f"{key}.u8").read_bytes() == (tmp_path / "ref" / f"{key}.u8").read_bytes()
    assert sorted(p.name for p in c.iterdir()) == [f"{key}.json", f"{key}.u8"]
    np.testing.assert_array_equal(resumed.images, reference.images)


def test_partial_cache_of_other_files_is_not_reused(tiny_folder, tmp_path, monkeypatch):
    c = tmp_path / "c"
    monkeypatch.setattr(cache, "_CHUNK", 8)
    _interrupt_after(monkeypatch, 3)
    with pytest.raises(_Interrupted):
        load_or_build(open_source(tiny_folder), 32, c, workers=0)
    old_key = cache_key(open_source(tiny_folder), 32, False)
    target = tiny_folder / "a" / "f3.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(target)
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    monkeypatch.undo()
    calls = _count_decodes(monkeypatch)
    built = load_or_build(open_source(tiny_folder), 32, c, workers=0)
    assert len(calls) == 48 and (built.images[3] == 0).all()
    assert not list(c.glob(f"{old_key}*"))  # the stale partial was dropped
