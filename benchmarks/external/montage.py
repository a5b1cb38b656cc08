"""A montage of every corruption kind at every benchmark severity, to look at before trusting it.

    python -m benchmarks.external.montage /tmp/external_montage.png [--split dev]

One row per kind on one captured frame of the split: the clean frame, then severities 2, 3, 4 as
the 128 px sequences see them, then as the 64 px ones see them (shown at 128 px, nearest). The
last rows show clean frames of the ``minority`` stretch (the other scenery and light) and of the
simulator (``race``, when gymnasium is installed).
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageDraw

from benchmarks.external import photos
from benchmarks.external.corrupt import CAPTURE, KINDS, SEVERITIES, corrupt
from benchmarks.external.sequences import SPLITS

TILE = 128
LABEL_W = 110


def _tile(frame: np.ndarray, size: int) -> np.ndarray:
    small = photos.reduce(frame, size)
    return np.asarray(Image.fromarray(small).resize((TILE, TILE), Image.NEAREST))


def montage(split: str = "dev") -> Image.Image:
    rng = np.random.default_rng([SPLITS[split], 99])
    rows, names = [], []
    for k, kind in enumerate(KINDS):
        shot = photos.random_shot(rng, photos.COLOUR[k % len(photos.COLOUR)], 1, 1)
        base = photos.render(shot, 0, CAPTURE)
        tiles = [_tile(base, TILE)]
        for size in (128, 64):
            tiles += [_tile(corrupt(base, kind, s, seed=k), size) for s in SEVERITIES]
        rows.append(np.concatenate(tiles, axis=1))
        names.append(kind)
    other = [photos.render(photos.random_shot(rng, p, 1, 1), 0, CAPTURE) for p in photos.OTHER_LIGHT]
    rows.append(np.concatenate([_tile(f, 64) for f in (other + other)[:7]], axis=1))
    names.append("minority (clean)")
    from benchmarks.external import race

    if race.available():
        drive = race.track_frames(SPLITS[split], 7 * 30)[::30]
        rows.append(np.concatenate([_tile(f, 64) for f in drive], axis=1))
        names.append("race (clean)")
    grid = np.concatenate(rows, axis=0)
    canvas = Image.new("RGB", (LABEL_W + grid.shape[1], grid.shape[0] + 20), "white")
    canvas.paste(Image.fromarray(grid), (LABEL_W, 20))
    draw = ImageDraw.Draw(canvas)
    heads = ["clean"] + [f"{s} @128" for s in SEVERITIES] + [f"{s} @64" for s in SEVERITIES]
    for j, head in enumerate(heads):
        draw.text((LABEL_W + j * TILE + 4, 4), head, fill="black")
    for i, name in enumerate(names):
        draw.text((4, 20 + i * TILE + TILE // 2), name, fill="black")
    return canvas


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path")
    ap.add_argument("--split", default="dev", choices=tuple(SPLITS))
    args = ap.parse_args()
    montage(args.split).save(args.path)
    print(f"saved {args.path}")


if __name__ == "__main__":
    main()
