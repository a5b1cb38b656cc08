"""Frames in: a ``--data`` path (folder / .npy / .npz, cached as a uint8 memmap), a built-in
labelled set (``builtin:digits``, ``builtin:drive``; see ``data.builtin``) or the built-in
synthetic sequence. Everything downstream sees one ``Frames``: uint8 ``(N, S, S, 3)`` images in
frame order, a source name per frame, and labels when they are known."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cae_fast.config import Config
from cae_fast.data.builtin import is_builtin, load_builtin
from cae_fast.data.cache import load_or_build
from cae_fast.data.sources import native_size, open_source
from cae_fast.errors import InputError

__all__ = ["FrameDataset", "Frames", "check_same_size", "load_frames", "to_float"]


@dataclass
class Frames:
    images: np.ndarray  # (N, S, S, 3) uint8: a memmap for --data, an array for the demo
    names: list[str]  # per frame: its image file, or "<array file>[i]", or "synthetic[i]"
    labels: np.ndarray | None = None  # (N,) uint8, 1 = dirty, when known
    kinds: np.ndarray | None = None  # (N,) int8 corruption kind, -1 clean (built-in data only)
    kind_names: tuple[str, ...] = ()  # what kinds index
    paths: list[str] | None = None  # per frame image file, for folder input only
    skipped: list[str] = field(default_factory=list)  # unreadable files skipped with --skip-bad
    from_cache: bool = False  # True when the frames came from an existing cache entry
    description: str = ""

    def __len__(self) -> int:
        return int(self.images.shape[0])


def default_cache_dir(out: str | os.PathLike[str]) -> Path:
    """Next to the run folder, so runs on the same data share it."""
    return Path(out).resolve().parent / ".cae_fast_cache"


def load_frames(cfg: Config) -> Frames:
    """The frames ``cfg`` asks for (``cfg`` must be ``resolved()``)."""
    if cfg.data is None:
        return _synthetic(cfg)
    if is_builtin(cfg.data):
        return _builtin(cfg)
    source = open_source(cfg.data)
    cache_dir = cfg.cache_dir or default_cache_dir(cfg.out)
    cached = load_or_build(
        source, cfg.image_size, cache_dir, cfg.skip_bad, workers=cfg.workers, progress=cfg.progress
    )
    names = [source.frame_name(i) for i in cached.kept]
    labels = source.labels[cached.kept] if source.labels is not None else None
    return Frames(
        images=cached.images,
        names=names,
        labels=labels,
        paths=names if source.kind == "folder" else None,
        skipped=[source.frame_name(i) for i in cached.skipped],
        from_cache=cached.reused,
        description=f"{source.kind} {source.path}",
    )


def check_same_size(train_path: str | None, data_path: str | None) -> None:
    """A network trained on one image size and scoring another compares resampled pixels, not
    content: refuse ``--train-data`` whose stored frames differ in size from ``--data``'s.
    Built-in and synthetic data are made at ``--image-size`` and always match."""
    if not train_path or not data_path or is_builtin(train_path) or is_builtin(data_path):
        return
    train_hw, data_hw = native_size(open_source(train_path)), native_size(open_source(data_path))
    if train_hw != data_hw:
        (th, tw), (dh, dw) = train_hw, data_hw
        raise InputError(
            train_path,
            f"training images are {th}x{tw} but --data images are {dh}x{dw}; "
            "train and score on images of the same size",
        )


def _synthetic(cfg: Config) -> Frames:
    from cae_fast.data.synth import KINDS, SynthSpec, generate  # the generator is only needed for the demo

    data = generate(
        SynthSpec(n_frames=cfg.demo_frames, size=cfg.image_size, seed=cfg.seed, kinds=tuple(cfg.demo_kinds))
    )
    n = data.images.shape[0]
    return Frames(
        images=np.ascontiguousarray(data.images, dtype=np.uint8),
        names=[f"synthetic[{i}]" for i in range(n)],
        labels=np.asarray(data.labels, dtype=np.uint8),
        kinds=np.asarray(data.kinds, dtype=np.int8),
        kind_names=tuple(KINDS),
        description=f"built-in synthetic sequence ({n} frames, {', '.join(cfg.demo_kinds)})",
    )


def _builtin(cfg: Config) -> Frames:
    try:
        data = load_builtin(cfg.data, cfg.image_size)
    except ValueError as exc:  # a misspelt name or split
        raise InputError(cfg.data, str(exc)) from None
    return Frames(
        images=data.images,
        names=[f"{cfg.data}[{i}]" for i in range(len(data.images))],
        labels=data.labels,
        kinds=data.kinds,
        kind_names=data.kind_names,
        description=data.description,
    )


class FrameDataset(torch.utils.data.Dataset):
    """Batches of uint8 frames ``[B, S, S, 3]``; conversion to float happens on the device."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = images

    def __getstate__(self) -> dict:
        # A memmap would be pickled with all its data (DataLoader workers under spawn/forkserver);
        # send its file name instead and map it again in the worker.
        m = self.images
        if isinstance(m, np.memmap) and m.filename is not None:
            return {"memmap": (m.filename, m.shape, m.offset)}
        return {"images": m}

    def __setstate__(self, state: dict) -> None:
        if "memmap" in state:
            filename, shape, offset = state["memmap"]
            self.images = np.memmap(filename, dtype=np.uint8, mode="r", shape=shape, offset=offset)
        else:
            self.images = state["images"]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(np.array(self.images[i]))

    def __getitems__(self, indices: list[int]) -> torch.Tensor:
        # One fancy-indexed read per batch (sorted: sequential on a memmap), then restore order.
        idx = np.asarray(indices)
        order = np.argsort(idx, kind="stable")
        batch = np.empty((len(idx), *self.images.shape[1:]), dtype=np.uint8)
        batch[order] = self.images[idx[order]]
        return torch.from_numpy(batch)


def collate_batch(batch: torch.Tensor) -> torch.Tensor:
    """``__getitems__`` already returns the batch; a module-level function so workers can pickle it."""
    return batch


def to_float(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 ``[B, S, S, 3]`` -> float32 ``[B, 3, S, S]`` in [0, 1] on ``device``, channels-last.

    The frames are stored NHWC, so the NCHW view is already channels-last in memory: no transpose
    copy, and the network runs channels-last (measured: +7% training, +14% scoring on a CPU)."""
    batch = batch.to(device, non_blocking=True)
    return batch.permute(0, 3, 1, 2).float().div_(255.0)
