"""The training loop: ``L = L_rec + lambda * L_ref`` with H_ref rebuilt at every epoch start.

Determinism: the weights come from ``torch.manual_seed(seed)``; the per-epoch shuffle and the
H_ref draw come from one seeded ``torch.Generator``. Both RNG states, the model, the optimiser
and the epoch go into the checkpoint written (atomically) at every epoch end, so on CPU a run
resumed from epoch k reaches bit-identical weights to an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from cae_fast import dist
from cae_fast.config import TRIM_SCORE, Config
from cae_fast.data import FrameDataset, collate_batch, to_float
from cae_fast.decide.rules import below_median_z, dirty_z
from cae_fast.errors import InputError
from cae_fast.model.cae import CAE
from cae_fast.model.encode import autocast_for, encode_frames
from cae_fast.model.losses import rec_loss, ref_loss
from cae_fast.model.zoo import build_model, hparams_of, rebuild
from cae_fast.score.median import effective_k, median_filter_1d
from cae_fast.score.terms import score_frames
from cae_fast.train.integrity import damaged, seal

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "train_log.jsonl"
CHECKPOINT_FORMAT = 1
# Older checkpoints may also hold "early_model" (the network of the first trimming judgement, for the
# removed --score combo_ens, measured not better: docs/history.md, items 7 and 17); loading ignores it.


@dataclass
class EpochStats:
    epoch: int  # 1-based
    l_rec: float
    l_ref: float
    loss: float
    mean_z_norm: float  # watch it: L_ref can be satisfied by shrinking every latent
    frames_per_s: float
    seconds: float
    l_aux: float = 0.0  # the model's own loss term before its weight (the VAE's KL), 0 for the others
    frames: int = 0  # frames trained on this epoch (fewer than all once trimming starts)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device", f"{name} requested but CUDA is not available")
    return device


def _workers(cfg: Config, device: torch.device) -> int:
    if cfg.workers is not None:
        return cfg.workers
    # On CPU the decode is a memmap slice and the cores are better spent on the convolutions.
    return min(4, max(0, (os.cpu_count() or 1) - 1)) if device.type == "cuda" else 0


def _loader(images: np.ndarray, batches: list[list[int]], workers: int, device: torch.device):
    return torch.utils.data.DataLoader(
        FrameDataset(images),
        batch_sampler=batches,
        collate_fn=collate_batch,
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )


def train(images: np.ndarray, cfg: Config, run_dir: str | os.PathLike[str]) -> tuple[CAE, list[EpochStats]]:
    """Train a ``cfg.arch`` network (a CAE by default) on uint8 ``images`` ``(N, S, S, 3)``;
    checkpoints and log go to ``run_dir``.

    Under torchrun (``dist.active()``) the network is wrapped in DistributedDataParallel and
    each global batch of the seeded order is split across the ranks (``dist.shard``), so the
    frames seen per step do not depend on the number of processes; only rank 0 writes the
    checkpoint and the log. The returned network is the plain (unwrapped) one."""
    run_dir = Path(run_dir)
    device = pick_device(cfg.device)
    n = images.shape[0]
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = build_model(cfg).to(device, memory_format=torch.channels_last)
    has_aux = hasattr(model, "aux_loss")
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    start, pool = 0, None  # pool: the frames training may use (None: all of them)
    if cfg.resume:
        start, pool = _restore(cfg.resume, model, opt, gen)
        if cfg.trim_k <= 0:
            pool = None
        elif pool is not None and (len(pool) == 0 or int(pool.max()) >= n):
            raise InputError(cfg.resume, f"checkpoint's training frames do not fit this data ({n} frames)")
    main = dist.is_main()
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        _trim_log(run_dir / LOG_NAME, start)
    net, changed_bn = model, []
    if dist.active():
        changed_bn = dist.global_batchnorm(model)  # statistics over the global batch, as in one process
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[torch.cuda.current_device()] if device.type == "cuda" else None
        )
    loss_fn = rec_loss(cfg.rec_loss)
    workers = _workers(cfg, device)
    subset = train_subset(n, cfg)
    if pool is not None and subset is not None:
        pool = torch.from_numpy(np.intersect1d(pool.numpy(), subset.numpy()))
    m_ref = min(cfg.m_ref, n if subset is None else len(subset))
    history: list[EpochStats] = []

    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        late = pool is None and bool(cfg.trim_at) and epoch > min(cfg.trim_at)
        if cfg.trim_k > 0 and (epoch in cfg.trim_at or late):
            # Early, before the network learns the corruptions; again once it has trained an epoch
            # without the doubtful frames; then fixed (config.TRIM_AT says why). A run resumed from an
            # untrimmed checkpoint past the first judgement is judged at once.
            pool = trusted_frames(model, images, cfg, device)
            if subset is not None:
                pool = torch.from_numpy(np.intersect1d(pool.numpy(), subset.numpy()))
        drawn_from = subset if pool is None else pool
        n_pool = n if drawn_from is None else len(drawn_from)
        if n_pool == 0:  # only a tiny --train-frames whose every frame the judgement doubts
            raise InputError("--train-frames", f"none of the {cfg.train_frames} training frames is trusted")
        ref_rows = (
            _draw(torch.randperm(n_pool, generator=gen)[: min(m_ref, n_pool)], drawn_from).sort().values
        )
        h_ref = encode_frames(model, images, ref_rows, cfg, device)
        exclude_of = torch.full((n,), -1, dtype=torch.int64)
        if cfg.ref_exclude_self:
            exclude_of[ref_rows] = torch.arange(len(ref_rows))
        n_epoch = n_pool if cfg.epoch_frames is None else min(cfg.epoch_frames, n_pool)
        order = _draw(torch.randperm(n_pool, generator=gen)[:n_epoch], drawn_from)
        global_batches = [b.tolist() for b in order.split(cfg.batch_size)]
        batches = [dist.shard(b) for b in global_batches]
        model.train()
        sums = torch.zeros(4, dtype=torch.float64)  # l_rec, l_ref, ||z||, l_aux, each summed over frames
        bar = tqdm(
            total=n_epoch,
            unit="frame",
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            disable=not (cfg.progress and main),
            leave=True,
            dynamic_ncols=True,
            mininterval=0.5,
        )
        done = 0
        loader = _loader(images, batches, workers, device)
        for step, (idx, batch) in enumerate(zip(batches, loader, strict=True)):
            x = to_float(batch, device)
            with autocast_for(cfg, device):
                recon, z = net(x)
            l_rec = loss_fn(recon, x)
            exclude = exclude_of[idx].to(device) if cfg.ref_exclude_self else None
            l_ref = ref_loss(z, h_ref, exclude, cfg.ref_norm)
            loss = l_rec + cfg.lambda_ref * l_ref
            l_aux = model.aux_loss() if has_aux else torch.zeros(())
            if has_aux:
                loss = loss + model.aux_weight(epoch + step / len(batches)) * l_aux
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}; try a lower --lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            b = 0 if dist.is_padding(global_batches[step]) else len(idx)
            z_norm = z.detach().float().norm(dim=1).sum().item() if b else 0.0
            sums += torch.tensor([l_rec.item() * b, l_ref.item() * b, z_norm, l_aux.item() * b])
            done += b * dist.world()
            rate = done / max(time.perf_counter() - t0, 1e-9)
            bar.set_postfix(
                L_rec=f"{sums[0] / done:.4g}", L_ref=f"{sums[1] / done:.4g}", fps=f"{rate:.0f}", refresh=False
            )
            bar.update(b * dist.world())
        bar.close()
        seconds = time.perf_counter() - t0
        mean = (dist.all_sum(sums) / n_epoch).tolist()
        loss = mean[0] + cfg.lambda_ref * mean[1]
        stats = EpochStats(
            epoch + 1,
            mean[0],
            mean[1],
            loss,
            mean[2],
            n_epoch / seconds,
            seconds,
            l_aux=mean[3],
            frames=n_epoch,
        )
        history.append(stats)
        if main:
            with open(run_dir / LOG_NAME, "a") as f:
                f.write(json.dumps(asdict(stats)) + "\n")
            save_checkpoint(run_dir / CHECKPOINT_NAME, model, opt, epoch + 1, gen, cfg, pool)
        dist.barrier()
    dist.restore_batchnorm(changed_bn)
    model.eval()
    return model, history


def train_subset(n: int, cfg: Config) -> torch.Tensor | None:
    """The sorted frames a ``cfg.train_frames`` run may train on (None: all ``n``): drawn from the
    seed alone, so a resumed run and the run's report find the same ones."""
    if cfg.train_frames is None or cfg.train_frames >= n:
        return None
    rows = np.random.default_rng(cfg.seed).choice(n, cfg.train_frames, replace=False)
    return torch.from_numpy(np.sort(rows).astype(np.int64))


def _draw(perm: torch.Tensor, pool: torch.Tensor | None) -> torch.Tensor:
    return perm if pool is None else pool[perm]


def trusted_frames(model: CAE, images: np.ndarray, cfg: Config, device: torch.device) -> torch.Tensor:
    """Indices of the frames training uses from now on: those the current network does not already
    find doubtful (filtered ``TRIM_SCORE`` robust z <= ``cfg.trim_k``, in units of the spread below
    the median: ``threshold.below_median_z``), never fewer than half of them.

    Why: on the mixed, unlabelled set the network otherwise learns to reproduce the corrupted runs
    too (a few percent of the frames each), and then every reconstruction score loses them."""
    raw = score_frames(model, images, cfg, device, (TRIM_SCORE,))[TRIM_SCORE]
    with warnings.catch_warnings():  # a short sequence shrinks the filter; the final decision says so
        warnings.simplefilter("ignore")
        ks = sorted({effective_k(len(raw), k) for k in cfg.median_k})
    # The statistic alone, from the run's filter lengths only: the user's cut settings
    # (--threshold, --detrend) say how to decide the final removal, not who trains.
    z = below_median_z(dirty_z([median_filter_1d(raw, k, cfg.median_mode) for k in ks]))
    keep = np.flatnonzero(z <= cfg.trim_k)
    if 2 * len(keep) < len(raw):
        keep = np.sort(np.argsort(z, kind="stable")[: (len(raw) + 1) // 2])
    return torch.from_numpy(keep.astype(np.int64))


def save_checkpoint(
    path: Path,
    model: CAE,
    opt: torch.optim.Optimizer,
    epoch: int,
    gen: torch.Generator,
    cfg: Config,
    pool: torch.Tensor | None = None,
) -> None:
    state = {
        "format": CHECKPOINT_FORMAT,
        "epoch": epoch,
        "hparams": hparams_of(model),
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "rng": {"torch": torch.get_rng_state(), "generator": gen.get_state()},
        "config": cfg.to_json(),
    }
    if pool is not None:
        state["pool"] = pool
    if torch.cuda.is_available():
        state["rng"]["cuda"] = torch.cuda.get_rng_state_all()
    _save_atomic(state, path)


def store_in_checkpoint(path: str | os.PathLike[str], key: str, value: dict) -> None:
    """Add ``value`` (plain types only) under ``key`` to the checkpoint at ``path``, e.g. the
    best-f1 cut that later ``--score-only`` runs apply."""
    state = load_checkpoint(path)
    state[key] = value
    _save_atomic(state, Path(path))


def _save_atomic(state: dict, path: Path) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        torch.save(seal(state), tmp)  # a checksum, so that a damaged file is refused on load
        os.replace(tmp, path)  # a reader sees the old checkpoint or the new one, never half of one
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: str | os.PathLike[str]) -> dict:
    """Read a checkpoint onto the CPU; a missing or foreign file is an ``InputError``."""
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "no such checkpoint file")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise InputError(p, f"cannot read checkpoint ({_why_unreadable(exc)})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise InputError(p, "not a cae_fast checkpoint")
    problem = damaged(state) or _incomplete(state)
    if problem:
        raise InputError(p, problem)
    return state


def _why_unreadable(exc: Exception) -> str:
    # torch's message advises weights_only=False, i.e. running the file's pickled code: never that.
    if "weights_only" in str(exc):
        return "it holds objects other than tensors and plain values, which are never unpickled"
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def _incomplete(state: dict) -> str | None:
    """What a hand-made or foreign dict lacks that every checkpoint ``save_checkpoint`` writes has."""
    hparams = state.get("hparams")
    if not isinstance(hparams, dict) or not {"image_size", "latent_dim"} <= set(hparams):
        return "not a complete cae_fast checkpoint: no 'hparams' with image_size and latent_dim"
    if not isinstance(state.get("model"), dict):
        return "not a complete cae_fast checkpoint: no 'model' weights"
    return None


def load_model(path: str | os.PathLike[str], device: torch.device) -> CAE:
    """The trained network of a checkpoint, in eval mode (for ``--score-only``)."""
    return network_of(load_checkpoint(path), path, device)


def network_of(state: dict, path: str | os.PathLike[str], device: torch.device, key: str = "model") -> CAE:
    """The network a loaded checkpoint ``state`` stores under ``key``, in eval mode on ``device``
    (``FrameFilter.load`` and ``--score-only``); ``path`` names the file in errors."""
    try:
        model = rebuild(state["hparams"])
    except (TypeError, ValueError) as exc:  # an architecture or setting this version does not know
        raise InputError(path, f"cannot rebuild the network ({exc})") from None
    _load_weights(model, state[key], path)
    return model.to(device, memory_format=torch.channels_last).eval()


def _load_weights(model: torch.nn.Module, weights: dict, path: str | os.PathLike[str]) -> None:
    try:
        model.load_state_dict(weights)
    except (RuntimeError, TypeError, KeyError) as exc:  # missing keys, size mismatch: a foreign dict
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = lines[min(1, len(lines) - 1)][:200] if lines else type(exc).__name__  # the first mismatch
        raise InputError(path, f"weights do not fit the network its 'hparams' describe ({detail})") from None


def _restore(
    path: str, model: CAE, opt: torch.optim.Optimizer, gen: torch.Generator
) -> tuple[int, torch.Tensor | None]:
    state = load_checkpoint(path)
    stored = {"arch": "cae", **state["hparams"]}  # checkpoints from before --arch are CAEs
    if stored != hparams_of(model):
        raise InputError(path, f"checkpoint network {stored} differs from this run's {hparams_of(model)}")
    _load_weights(model, state["model"], path)
    opt.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"]["torch"])
    gen.set_state(state["rng"]["generator"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return int(state["epoch"]), state.get("pool")


def _trim_log(path: Path, keep_epochs: int) -> None:
    """Keep the log lines of epochs already in the checkpoint (a resumed run rewrites the rest)."""
    lines = []
    if keep_epochs and path.exists():
        lines = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln)["epoch"] <= keep_epochs]
    path.write_text("".join(ln + "\n" for ln in lines))
