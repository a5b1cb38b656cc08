"""Procedural driving scene for the synthetic benchmark: one camera moving down a two-lane road.

Geometry is a pinhole camera over a flat ground plane, so the road, lane dashes, roadside objects
and cars all share one perspective and move consistently. Everything is drawn with analytic
anti-aliasing (pixel coverage), because aliasing shimmer at 64x64 would itself look like a
corruption to an autoencoder. The renderer returns RGB in [0, 1] plus a depth map (fog needs it);
sensor effects and corruptions are applied by the caller.

Images are channel-first (3, H, W) float32 throughout: numpy broadcasting over a trailing axis
of length 3 runs its inner loop three elements at a time, several times slower than over rows.
"""

from __future__ import annotations

import math

import numpy as np

from cae_fast.data.synth_canvas import PIX, Canvas, bilinear, fractal_noise, rgb, span

_HAZE = rgb(0.74, 0.80, 0.86)  # colour distant things fade to
_FAR = 1.0e4  # depth assigned to the sky


class DrivingScene:
    """Camera state, the road and the roadside world; ``render()`` advances one frame."""

    def __init__(self, size: int, rng: np.random.Generator):
        self.n, self.rng = size, rng
        self.f = 0.95 * size  # focal length in pixels: a 55 degree horizontal field of view
        self.cam_h = 1.35
        self.lane_w, self.road_half = 3.5, 3.9
        # Textures are periodic, so they can be scrolled forever; the sky's spans a full turn of yaw.
        sky_w = 1 << int(np.ceil(np.log2(2 * np.pi * self.f)))
        clouds = fractal_noise(rng, (max(64, size), sky_w), 2.0, largest=0.6 * size)
        self.clouds = (clouds - clouds.mean()) / clouds.std()  # thresholds below are in std units
        self.hills = fractal_noise(rng, (sky_w,), 1.9)
        self.treeline = fractal_noise(rng, (sky_w,), 1.1)
        # two ground channels sampled at the same place: fine grain, and metre-scale patches
        self.ground = np.stack(
            [
                fractal_noise(rng, (256, 256), 0.9).ravel(),
                fractal_noise(rng, (256, 256), 2.0, largest=40).ravel(),
            ]
        )
        self.leaf = fractal_noise(rng, (64, 64), 0.6)
        self.ys = np.arange(size, dtype=np.float32) + 0.5
        self.xs = np.arange(size, dtype=np.float32) + 0.5
        r2 = ((self.xs[None, :] / size - 0.5) ** 2 + (self.ys[:, None] / size - 0.5) ** 2) * 2
        self.vignette = (1.0 - 0.22 * r2).astype(np.float32)
        # Camera and road state: all slow drifts, so consecutive frames are strongly correlated.
        self.t, self.s, self.speed, self.yaw = 0, 0.0, 1.0, 0.0
        self.curv, self.curv_goal, self.curv_hold = 0.0, 0.0, 0
        self.phase = rng.uniform(0, 2 * np.pi, 8).tolist()
        self.lead: list[float] | None = None  # [z, relative speed, colour index, goal distance]
        self.cars: list[list[float]] = []  # oncoming: [z, speed, colour index]
        self.objects: list[tuple] = []  # (s_world, side, kind, lateral, params)
        self.next_obj = [0.0, 0.0]
        self._spawn_objects()

    # ---------------------------------------------------------------- world state
    def _urbanity(self, s: float) -> float:
        """0 = countryside (trees), 1 = town (buildings), varying slowly along the road."""
        return float(0.5 + 0.5 * math.sin(s / 900.0 + self.phase[0]) * math.cos(s / 2300.0 + self.phase[1]))

    def _spawn_objects(self) -> None:
        rng, horizon = self.rng, self.s + 160.0
        for side in (0, 1):
            while self.next_obj[side] < horizon:
                s = self.next_obj[side]
                urban = self._urbanity(s)
                r = rng.random()
                sgn = 1.0 if side else -1.0
                if r < 0.16:
                    obj = ("pole", sgn * rng.uniform(5.2, 6.5), (rng.uniform(7, 9),))
                elif r < 0.2:
                    obj = ("sign", sgn * rng.uniform(5.0, 6.0), (int(rng.integers(4)),))
                elif r < 0.2 + 0.45 * urban:
                    wall = rgb(*_FACADES[int(rng.integers(len(_FACADES)))]) * rng.uniform(0.9, 1.1)
                    size = (rng.uniform(8, 20), rng.uniform(6, 18))
                    obj = ("building", sgn * rng.uniform(10, 22), (*size, wall))
                elif r < 0.75:
                    tone = rng.uniform(0, 0.08)
                    shape = (rng.uniform(1.4, 3.2), rng.uniform(1.5, 3), rng.uniform(0.8, 1.15))
                    obj = ("tree", sgn * rng.uniform(6.5, 16), (*shape, rgb(0.16 + tone, 0.36 + tone, 0.14)))
                else:
                    obj = (
                        "bush",
                        sgn * rng.uniform(5.5, 12),
                        (rng.uniform(0.6, 1.4), rgb(0.2, rng.uniform(0.36, 0.48), 0.15)),
                    )
                self.objects.append((s, side) + obj)
                self.next_obj[side] += rng.exponential(9.0 + 8.0 * (1 - urban)) + 2.0

    def _step(self) -> None:
        rng, t = self.rng, self.t
        self.speed = float(np.clip(self.speed + 0.02 * (1.0 - self.speed) + rng.normal(0, 0.01), 0.5, 1.5))
        self.s += self.speed
        if self.curv_hold <= 0:  # a new bend (or straight) every few hundred frames
            bend = rng.choice((-1.0, 1.0)) * rng.uniform(0.003, 0.012)  # radius ~80-330 m
            self.curv_goal = 0.0 if rng.random() < 0.3 else float(bend)
            self.curv_hold = int(rng.integers(150, 600))
        self.curv_hold -= 1
        self.curv += 0.012 * (self.curv_goal - self.curv)
        self.heading = 0.015 * math.sin(t / 97.0 + self.phase[2])
        self.x_cam = 1.75 + 0.25 * math.sin(t / 151.0 + self.phase[3])
        self.yaw += self.curv * self.speed
        self.h0 = self.n * (0.44 + 0.004 * math.sin(t * 0.9 + self.phase[4]) + 0.01 * math.sin(t / 230.0))
        self.objects = [o for o in self.objects if o[0] - self.s > 1.0]
        self._spawn_objects()
        self._step_cars()
        self.t += 1

    def _step_cars(self) -> None:
        rng = self.rng
        if self.lead is None and rng.random() < 0.004:
            self.lead = [150.0, -0.3, float(rng.integers(8)), rng.uniform(12, 70)]
        if self.lead is not None:
            z, v, c, goal = self.lead
            v = 0.97 * v - 0.002 * (z - goal) + rng.normal(0, 0.01)
            if z < 10.0:  # keep a safe distance
                v = max(v, 0.05)
            if rng.random() < 0.002:
                goal = 200.0  # the lead car drives away and is replaced later
            self.lead = None if z > 170 else [z + v, v, c, goal]
        if rng.random() < 0.012:
            self.cars.append([170.0, rng.uniform(0.7, 1.2), float(rng.integers(8))])
        for car in self.cars:
            car[0] -= car[1] + self.speed
        self.cars = [c for c in self.cars if c[0] > 2.0]

    # ---------------------------------------------------------------- drawing
    def road_x(self, z: np.ndarray | float) -> np.ndarray | float:
        """Screen column of the road centre line at distance z (curvature bends far rows most)."""
        return self.n / 2 + self.f * (-self.x_cam / z + self.heading + 0.5 * self.curv * z)

    def render(self) -> tuple[np.ndarray, np.ndarray]:
        """Advance one frame; return (rgb float32 (3, H, W) in ~[0, 1], depth float32 (H, W))."""
        self._step()
        n = self.n
        img = np.empty((3, n, n), np.float32)
        depth = np.full((n, n), _FAR, np.float32)
        g0 = min(max(int(np.floor(self.h0)), 0), n)
        self._sky(img, g0)
        self._ground(img, depth, g0)
        canvas = Canvas(img, depth)
        self._horizon(canvas)
        for item in sorted(self._drawables(), key=lambda d: -d[0]):
            self._draw(canvas, *item)
        # aerial perspective for ground and objects in one pass (the sky and hills are hazy already)
        fade = np.where(depth < _FAR, 1.0 - np.exp(depth * np.float32(-1 / 260.0)), 0.0).astype(np.float32)
        img += fade * (_HAZE - img)
        # lighting drifts (sun behind clouds, time of day) and a slow white-balance wander
        t = self.t
        gain = 1.0 + 0.12 * math.sin(t / 400.0 + self.phase[5]) + 0.05 * math.sin(t / 61.0 + self.phase[6])
        warm = 0.03 * math.sin(t / 700.0 + self.phase[7])
        img *= rgb(gain * (1 + warm), gain, gain * (1 - warm))
        return img, depth

    def _sky(self, img: np.ndarray, g0: int) -> None:
        n = self.n
        y = self.ys[: g0 + 1]
        up = np.clip((self.h0 - y) / self.h0, 0.0, 1.0)[:, None]
        sky = _HAZE + (rgb(0.30, 0.48, 0.82) - _HAZE) * np.sqrt(up)
        th, tw = self.clouds.shape
        # clouds drift with the wind and slide sideways as the road turns
        rows = ((self.h0 - y) / n * th * 1.5).astype(np.int64) % th
        cols = (self.xs - n / 2 + (self.yaw - self.heading) * self.f + self.t * 0.05).astype(np.int64) % tw
        c = self.clouds[rows[:, None], cols[None, :]]
        cover = 0.3 + 0.4 * math.sin(self.t / 800.0 + self.phase[1])  # from scattered to overcast-ish
        a = np.clip((c - cover) * 0.9, 0.0, 0.95) * np.clip(up * 8, 0, 1)
        cloud = rgb(0.95, 0.95, 0.97) * np.clip(0.8 + 0.08 * c, 0.7, 1.05)
        img[:, : g0 + 1] = sky + a * (cloud - sky)

    def _ground(self, img: np.ndarray, depth: np.ndarray, g0: int) -> None:
        n, f = self.n, self.f
        rows = self.ys[g0:]
        if rows.size == 0:
            return
        dy = np.maximum(rows - self.h0, 0.3)
        z = np.minimum(self.cam_h * f / dy, 3000.0)[:, None]
        pz = z * z / (self.cam_h * f)  # metres per pixel along the road
        u = (self.xs[None, :] - self.road_x(z)) * (z / f)  # lateral position from the road centre
        a = np.abs(u)
        # A pixel's footprint across the road includes how far u moves from one row to the next:
        # without it, lines seen at a shallow angle (the far edge line) break up into dashes.
        pw = z / f + (np.abs(np.gradient(u, axis=0)) if rows.size > 1 else 0.0)
        inv = 1.0 / pw

        def inside(edge, dist):  # pixel coverage of "dist < edge" across the road
            return np.clip((edge - dist) * inv + 0.5, 0.0, 1.0)

        # world-anchored textures, so grass and asphalt flow past; detail fades once a pixel spans
        # several texels, which would otherwise shimmer from frame to frame
        v = z + self.s
        tex = bilinear(self.ground, (256, 256), v * 3.0, u * 3.0)
        fine = (tex[0] - 0.5) / (1.0 + 3.0 * pz)
        coarse = tex[1] - 0.5
        col = rgb(0.30, 0.48, 0.19) * (1 + 0.35 * coarse + 0.5 * fine)
        col[0] += 0.08 * coarse  # drier, yellower patches of grass
        col += inside(4.8, a) * (rgb(0.47, 0.44, 0.38) * (1 + 0.3 * fine) - col)
        track = 0.025 * np.clip(np.cos((a - self.lane_w / 2) * 2.3) * 3 - 1.5, 0, 1)  # darker tyre tracks
        asphalt = rgb(0.36, 0.37, 0.39) + (0.12 * fine + 0.08 * coarse - track)
        col += inside(self.road_half, a) * (asphalt - col)
        edge = np.clip((np.minimum(3.58, a + pw / 2) - np.maximum(3.42, a - pw / 2)) * inv, 0.0, 1.0)
        # centre dashes: coverage along the road per row, averaged to the duty cycle when sub-pixel
        period, dash = 12.0, 4.5
        ph = (v % period) / pz
        along = np.clip(np.minimum(dash / pz, ph + 0.5) - np.maximum(0.0, ph - 0.5), 0, 1)
        along += np.clip(np.minimum((period + dash) / pz, ph + 0.5) - np.maximum(period / pz, ph - 0.5), 0, 1)
        along += np.clip(pz / period, 0, 1) * (dash / period - along)
        centre = np.clip((np.minimum(0.08, a + pw / 2) - np.maximum(-0.08, a - pw / 2)) * inv, 0, 1) * along
        col += np.maximum(edge, centre) * (rgb(0.86, 0.86, 0.83) - col)
        # the first ground row is only partly ground: blend it with the sky already there
        first = np.float32(np.clip(g0 + 1 - self.h0, 0, 1))
        img[:, g0] += first * (col[:, 0] - img[:, g0])
        img[:, g0 + 1 :] = col[:, 1:]
        depth[g0:] = np.broadcast_to(z, (rows.size, n))

    def _horizon(self, c: Canvas) -> None:
        """Distant hills and a tree line: far enough to move only with the camera's yaw."""
        n, h0 = self.n, self.h0
        cols = (self.xs - n / 2 + (self.yaw - self.heading) * self.f).astype(np.int64) % self.hills.size
        for prof, amp, base, colour in (
            (self.hills, 0.07, 0.01, rgb(0.50, 0.58, 0.62)),
            (self.treeline, 0.025, 0.004, rgb(0.30, 0.42, 0.30)),
        ):
            top = h0 - n * (base + amp * prof[cols])
            r0, r1 = max(int(top.min()) - 1, 0), min(int(h0) + 1, n)
            y = self.ys[r0:r1, None]
            a = np.clip(np.minimum(y + 0.5 - top, 1.0), 0, 1) * np.clip(h0 - y + 0.5, 0, 1)
            region = c.img[:, r0:r1]
            region += a * (colour - region)

    def _drawables(self) -> list[tuple]:
        out = [(o[0] - self.s, "obj", o) for o in self.objects if 2.0 < o[0] - self.s < 160]
        if self.lead is not None:
            out.append((self.lead[0], "car", (1.75 + 0.1 * math.sin(self.t / 50), int(self.lead[2]), True)))
        out += [(c[0], "car", (-1.75, int(c[2]), False)) for c in self.cars]
        return out

    def _draw(self, c: Canvas, z: float, what: str, obj: tuple) -> None:
        """One object or car, in scene colours; aerial perspective is added later for all at once."""
        k = self.f / z  # pixels per metre at this distance
        gy = self.h0 + self.cam_h * k
        if what == "car":
            x = self.road_x(z) + obj[0] * k
            if -2 * k < x < self.n + 2 * k:
                _draw_car(c, x, gy, k, z, obj[1], obj[2])
            return
        kind, lat, p = obj[2], obj[3], obj[4]
        x = self.road_x(z) + lat * k
        reach = 22.0 * k if kind == "building" else 3.5 * k
        if x + reach < 0 or x - reach > self.n:
            return
        if kind == "pole":
            c.rect(x - 0.12 * k, x + 0.12 * k, gy - p[0] * k, gy, _POLE, z)
            if k > 1.0:  # details thinner than a fraction of a pixel are not worth a draw call
                arm = -math.copysign(1.6 * k, lat)
                c.rect(min(x, x + arm), max(x, x + arm), gy - p[0] * k, gy - (p[0] - 0.18) * k, _POLE, z)
        elif kind == "sign":
            c.rect(x - 0.06 * k, x + 0.06 * k, gy - 2.2 * k, gy, _POLE, z)
            c.rect(x - 0.7 * k, x + 0.7 * k, gy - 3.0 * k, gy - 2.1 * k, _PLATES[p[0]], z)
        elif kind == "building":
            _draw_building(c, x, gy, k, z, lat, p)
        elif kind == "tree":
            r, trunk, squash, green = p
            if k > 0.7:
                c.rect(x - 0.18 * k, x + 0.18 * k, gy - (trunk + r * 0.5) * k, gy, _TRUNK, z)
            self._foliage(c, x, gy - (trunk + r * squash) * k, r * k, r * squash * k, green, z)
        else:  # bush
            r, green = p
            self._foliage(c, x, gy - 0.6 * r * k, r * k, 0.6 * r * k, green, z)

    def _foliage(self, c: Canvas, x: float, y: float, rx: float, ry: float, green, z: float) -> None:
        leaf = self.leaf

        def shade(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
            # lit from the upper left, with leaf clumps that scale with the crown
            lit = 1.0 - 0.35 * (dx[None, :] + dy[:, None])
            iy, ix = ((dy + 1) * 7).astype(np.int64) & 63, ((dx + 1) * 7).astype(np.int64) & 63
            tex = leaf[iy[:, None], ix[None, :]]
            return lit * (0.7 + 0.6 * tex)

        c.ellipse(x, y, rx, ry, green, z, shade if rx > 2 else None)


_POLE, _TRUNK = rgb(0.55, 0.55, 0.57), rgb(0.35, 0.25, 0.15)
_PLATES = (rgb(0.15, 0.3, 0.7), rgb(0.1, 0.5, 0.25), rgb(0.8, 0.15, 0.1), rgb(0.9, 0.8, 0.1))
_CAR_COLOURS = (
    rgb(0.7, 0.1, 0.1),
    rgb(0.15, 0.25, 0.6),
    rgb(0.85, 0.85, 0.85),
    rgb(0.6, 0.62, 0.65),
    rgb(0.1, 0.1, 0.12),
    rgb(0.15, 0.35, 0.2),
    rgb(0.85, 0.7, 0.15),
    rgb(0.45, 0.3, 0.25),
)
_SHADOW, _TYRE, _WINDOW = rgb(0.15, 0.15, 0.16), rgb(0.05, 0.05, 0.05), rgb(0.12, 0.15, 0.2)
_TAIL, _HEAD = rgb(0.9, 0.1, 0.08), rgb(0.95, 0.93, 0.8)
_FACADES = (
    (0.80, 0.74, 0.62),
    (0.66, 0.66, 0.68),
    (0.62, 0.32, 0.26),
    (0.70, 0.76, 0.82),
    (0.85, 0.82, 0.72),
    (0.52, 0.50, 0.46),
)
_GLASS = rgb(0.25, 0.3, 0.38)


def _draw_car(c: Canvas, x: float, gy: float, k: float, z: float, colour: int, rear: bool) -> None:
    body = _CAR_COLOURS[colour]
    if k < 2.0:  # a few pixels: one dark-topped block reads as a car
        c.rect(x - 0.9 * k, x + 0.9 * k, gy - 1.45 * k, gy, body * 0.8, z)
        return
    c.ellipse(x, gy, 1.1 * k, 0.25 * k, _SHADOW, z)  # shadow on the road
    c.rect(x - 0.9 * k, x - 0.55 * k, gy - 0.4 * k, gy, _TYRE, z)
    c.rect(x + 0.55 * k, x + 0.9 * k, gy - 0.4 * k, gy, _TYRE, z)
    c.rect(x - 0.9 * k, x + 0.9 * k, gy - 1.05 * k, gy - 0.3 * k, body, z)
    c.rect(x - 0.72 * k, x + 0.72 * k, gy - 1.45 * k, gy - 1.0 * k, body * 0.9, z)
    c.rect(x - 0.62 * k, x + 0.62 * k, gy - 1.4 * k, gy - 1.05 * k, _WINDOW, z)
    lamp = _TAIL if rear else _HEAD
    c.rect(x - 0.85 * k, x - 0.6 * k, gy - 0.95 * k, gy - 0.8 * k, lamp, z)
    c.rect(x + 0.6 * k, x + 0.85 * k, gy - 0.95 * k, gy - 0.8 * k, lamp, z)


def _draw_building(c: Canvas, x: float, gy: float, k: float, z: float, lat: float, p: tuple) -> None:
    w, h, wall = p
    # the facade extends away from the road, so its near edge sits at the object's position
    x0, x1 = (x - w * k, x) if lat < 0 else (x, x + w * k)
    if k < 1.5:  # windows smaller than a pixel: average them into the wall instead of aliasing
        c.rect(x0, x1, gy - h * k, gy, wall * 0.85 + _GLASS * 0.15, z)
        return
    sx, sy = span(x0, x1, c.n), span(gy - h * k, gy, c.n)
    if sx is None or sy is None:
        return
    a = sy[2][:, None] * sx[2][None, :]
    lx = (PIX[sx[0] : sx[1]] + 0.5 - x0) / k  # facade coordinates in metres
    ly = (gy - PIX[sy[0] : sy[1]] - 0.5) / k
    win = ((lx % 3.0 > 0.9) & (lx % 3.0 < 2.1) & (lx > 0.5) & (lx < w - 0.5))[None, :] & (
        (ly % 3.2 > 1.0) & (ly % 3.2 < 2.3) & (ly < h - 0.6)
    )[:, None]
    colour = np.where(win, _GLASS, wall)
    colour[:, ly > h - 0.5] *= 0.75  # roof edge
    c._blend(sy[0], sy[1], sx[0], sx[1], a, colour, z)
