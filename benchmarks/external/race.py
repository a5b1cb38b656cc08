"""Rendered frames of a driving simulator: gymnasium's CarRacing (Box2D; the ``[bench]`` extra),
driven by a simple road-following controller. Each track is a random layout drawn from its seed,
so a new track is a scene cut; nothing is downloaded.

The frame is the simulator's 600 x 400 view without its dashboard, cut square around the car
and resized to ``corrupt.CAPTURE``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from benchmarks.external.corrupt import CAPTURE

WARMUP = 60  # steps skipped at the start of a track: the camera zooms in there
VIEW = (slice(0, 350), slice(125, 475))  # square, above the dashboard (the bottom 50 rows)


def _steer(obs: np.ndarray) -> float:
    """Towards the side with more road (grey pixels) in a band ahead of the car."""
    o = obs.astype(np.int16)
    road = (np.abs(o[..., 0] - o[..., 1]) < 15) & (o[..., 0] > 80) & (o[..., 0] < 130)
    band = road[50:66]
    left, right = int(band[:, :48].sum()), int(band[:, 48:].sum())
    return float(np.clip(2.0 * (right - left) / max(1, left + right), -1.0, 1.0))


def track_frames(seed: int, n: int, size: int = CAPTURE) -> np.ndarray:
    """``n`` consecutive frames (uint8, ``size`` square) of one drive on the track of ``seed``."""
    import gymnasium as gym

    env = gym.make("CarRacing-v3", render_mode="rgb_array")
    try:
        obs, _ = env.reset(seed=int(seed))
        out = np.empty((n, size, size, 3), np.uint8)
        for step in range(WARMUP + n):
            gas = 0.1 if step % 3 else 0.0  # slow enough to stay on the road through curves
            obs, *_ = env.step(np.array([_steer(obs), gas, 0.0], np.float32))
            if step >= WARMUP:
                view = env.render()[VIEW]
                out[step - WARMUP] = np.asarray(Image.fromarray(view).resize((size, size), Image.BILINEAR))
        return out
    finally:
        env.close()


def available() -> bool:
    try:
        import gymnasium  # noqa: F401
        from gymnasium.envs.box2d import car_racing  # noqa: F401
    except ImportError:
        return False
    return True
