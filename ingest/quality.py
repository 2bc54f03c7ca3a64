"""Video quality diagnosis (视频质量诊断) on one sampled frame every few seconds.

Every check gives a score in [0, 1] (1 = worst); a check fails when its score
exceeds the camera's threshold in :class:`xueliang.config.cameras.QualityConfig`.
All checks run on a copy downscaled by an integer factor to ≥ 320 px wide (noise on a
full-resolution centre crop), ≈ 2–3 ms a diagnosis at 576p.

=============  ==================================================================
check          score
=============  ==================================================================
signal_loss    uniform black or uniform blue picture ("no video" screens)
covered        share of the picture that is featureless (lens covered, sprayed,
               turned to a wall): 8×8 blocks with almost no texture
moved          camera turned or moved (tamper): normalised correlation of the view's edge
               map with a learnt reference (0 at ≥ 0.65, 1 at ≤ 0.2); the reference
               follows slow changes, and a new view kept ``moved_rebaseline_s`` replaces it
frozen         identical picture across diagnoses for ``frozen_s`` seconds
too_dark       mean luminance: 0 at ≥ 100 grey levels, 1 at ≤ 10
too_bright     mean luminance: 0 at ≤ 155, 1 at ≥ 245
colour_cast    cast factor K = |mean chroma| / chroma spread (Lab a*, b*): 0 at K ≤ 1.5,
               1 at K ≥ 3 (and a mean chroma of at least 12)
blur           loss of high frequencies: variance of the Laplacian over the grey
               variance, on a log scale: 0 at ≥ 2, 1 at ≤ 0.05
noise          sensor noise σ (Immerkær's estimator) 0 at 0, 1 at ≥ 12 grey levels
=============  ==================================================================

A failing check hides the checks it makes meaningless (no point calling a black
picture blurred): signal_loss hides all others, covered hides blur, noise,
too_dark, colour_cast and moved; too_dark hides blur and noise. :func:`primary_fault`
names the one fault an operator should see first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from xueliang.config.cameras import QualityConfig

CHECKS = ("signal_loss", "covered", "moved", "frozen", "too_dark", "too_bright", "colour_cast", "blur", "noise")
_HIDES = {
    "signal_loss": set(CHECKS) - {"signal_loss"},
    "covered": {"blur", "noise", "too_dark", "colour_cast", "moved"},
    "too_dark": {"blur", "noise"},
    "too_bright": {"blur"},
}
_WIDTH = 320
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def _clip(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


@dataclass(frozen=True, slots=True)
class Diagnosis:
    scores: dict[str, float]
    faults: tuple[str, ...]

    @property
    def primary(self) -> str | None:
        return primary_fault(self.faults)


def primary_fault(faults: tuple[str, ...] | list[str]) -> str | None:
    for check in CHECKS:
        if check in faults:
            return check
    return None


def _shrink(img: np.ndarray, k: int) -> np.ndarray:
    """Downscale by the integer factor ``k`` (OpenCV's fast INTER_AREA path; 10x faster than 2.4x)."""
    if k <= 1:
        return img
    h, w = img.shape[:2]
    return cv2.resize(img[: h - h % k, : w - w % k], (w // k, h // k), interpolation=cv2.INTER_AREA)


def _small(frame: np.ndarray) -> np.ndarray:
    """The diagnosis copy: downscaled by the integer factor that keeps it at least _WIDTH wide."""
    return _shrink(frame, frame.shape[1] // _WIDTH)


def noise_sigma(frame: np.ndarray) -> float:
    """Sensor noise σ in grey levels (Immerkær 1996), at full resolution (downscaling averages noise away)."""
    h, w = frame.shape[:2]
    ch, cw = min(h, 360), min(w, 480)  # a centre crop keeps the noise statistics at a fraction of the cost
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    crop = frame[y0 : y0 + ch, x0 : x0 + cw]
    g = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    h, w = g.shape
    # int16 holds the kernel's range (±16·255) exactly: the same sum as float32, a third of the work
    response = cv2.filter2D(g, cv2.CV_16S, _NOISE_KERNEL)[1:-1, 1:-1]
    return math.sqrt(math.pi / 2) / (6 * (w - 2) * (h - 2)) * float(cv2.norm(response, cv2.NORM_L1))


def measure(frame: np.ndarray, small: np.ndarray | None = None) -> dict[str, float]:
    """Scores of the single-frame checks (all but ``frozen`` and ``moved``); ``small`` = ``_small(frame)``."""
    small = _small(frame) if small is None else small
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    g = grey.astype(np.float32)
    # cv2.meanStdDev: one pass per image (numpy's strided per-channel reductions cost ten times more)
    m, sd = cv2.meanStdDev(grey)
    mean, std = float(m[0, 0]), float(sd[0, 0])
    cm, cs = cv2.meanStdDev(small)
    b, gch, r = (float(v) for v in cm[:, 0])
    chan_std = float(cs.max())

    uniform = _clip(1 - (chan_std - 3) / 7)  # 1 when every channel is flat (σ ≤ 3)
    black = uniform * _clip(1 - (mean - 16) / 24)
    blue = uniform * _clip((b - max(gch, r) - 40) / 60)
    signal_loss = max(black, blue)

    # texture per 8x8-ish block: std of the grey level inside it
    h, w = grey.shape
    bh, bw = h // 8, w // 8
    blocks = g[: bh * 8, : bw * 8].reshape(8, bh, 8, bw).transpose(0, 2, 1, 3).reshape(64, -1)
    flat = float((blocks.std(axis=1) < 4.0).mean())
    covered = _clip((flat - 0.3) / 0.6)  # 30 % flat is normal sky/road, 90 % flat = covered

    lap = cv2.Laplacian(g, cv2.CV_32F, ksize=3)
    sharpness = float(cv2.meanStdDev(lap)[1][0, 0]) ** 2 / (std * std + 1.0)
    blur = _clip(1 - math.log(max(sharpness, 1e-6) / 0.05) / math.log(2.0 / 0.05))

    # colour statistics of a half-size copy: the 8-bit Lab conversion is the costliest step of the
    # diagnosis, and mean chroma and its spread barely change with a 2× area average
    lab = cv2.cvtColor(_shrink(small, 2), cv2.COLOR_BGR2LAB)
    a = lab[..., 1].astype(np.float32) - 128.0
    bb = lab[..., 2].astype(np.float32) - 128.0
    da, db = float(a.mean()), float(bb.mean())
    spread = math.hypot(float(np.abs(a - da).mean()), float(np.abs(bb - db).mean()))
    k = math.hypot(da, db) / (spread + 1.0)  # cast factor: mean chroma against its spread
    colour_cast = _clip((k - 1.5) / 1.5) * _clip((math.hypot(da, db) - 4) / 8)

    noise = _clip(noise_sigma(frame) / 12)

    return {
        "signal_loss": round(signal_loss, 4),
        "covered": round(covered, 4),
        "too_dark": round(_clip((100 - mean) / 90), 4),
        "too_bright": round(_clip((mean - 155) / 90), 4),
        "colour_cast": round(colour_cast, 4),
        "blur": round(blur, 4),
        "noise": round(noise, 4),
    }


def edge_map(grey: np.ndarray) -> np.ndarray:
    """Blurred gradient magnitude of a ≈160-px copy of the diagnosis grey: the view's structure,
    blind to gain and colour."""
    small = _shrink(grey, grey.shape[1] // 160).astype(np.float32)
    mag = cv2.magnitude(cv2.Sobel(small, cv2.CV_32F, 1, 0), cv2.Sobel(small, cv2.CV_32F, 0, 1))
    return cv2.GaussianBlur(mag, (0, 0), 1.5)


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / math.sqrt(float((a * a).sum()) * float((b * b).sum()) + 1e-9))


def _thresholds(cfg: QualityConfig) -> dict[str, float]:
    return {
        "signal_loss": cfg.signal_loss,
        "covered": cfg.covered,
        "moved": cfg.moved,
        "frozen": 0.999,
        "too_dark": cfg.too_dark,
        "too_bright": cfg.too_bright,
        "colour_cast": cfg.colour_cast,
        "blur": cfg.blur,
        "noise": cfg.noise,
    }


def faults_of(scores: dict[str, float], cfg: QualityConfig) -> tuple[str, ...]:
    limits = _thresholds(cfg)
    failing = {c for c in CHECKS if c in scores and scores[c] > limits[c]}
    hidden: set[str] = set()
    for check in CHECKS:
        if check in failing and check not in hidden:
            hidden |= _HIDES.get(check, set())
    return tuple(c for c in CHECKS if c in failing and c not in hidden)


@dataclass
class QualityDiagnoser:
    """Per-camera diagnosis state: the previous diagnosed picture, for the frozen check."""

    config: QualityConfig
    frozen_diff: float = 0.6  # mean |Δ| grey level under which two pictures count as identical
    _prev: np.ndarray | None = field(default=None, repr=False)
    _prev_ts: float = 0.0
    _frozen_since: float | None = None
    _last_ts: float | None = None
    _reference: np.ndarray | None = field(default=None, repr=False)  # learnt edge map of the normal view
    _moved_since: float | None = None

    def due(self, ts: float) -> bool:
        return self.config.enabled and (self._last_ts is None or ts - self._last_ts >= self.config.interval_s)

    def diagnose(self, frame: np.ndarray, ts: float) -> Diagnosis:
        self._last_ts = ts
        small = _small(frame)
        scores = measure(frame, small)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        if (
            self._prev is not None
            and self._prev.shape == grey.shape
            and float(cv2.absdiff(grey, self._prev).mean()) < self.frozen_diff
        ):
            if self._frozen_since is None:
                self._frozen_since = self._prev_ts
        else:
            self._frozen_since = None
        self._prev, self._prev_ts = grey, ts
        frozen_for = 0.0 if self._frozen_since is None else ts - self._frozen_since
        flat = scores["signal_loss"] > 0.5 or scores["covered"] > 0.5
        # a flat picture (black, covered) is "identical" by nature: that is not a frozen encoder
        if flat:
            frozen_for = 0.0
        scores["frozen"] = round(_clip(frozen_for / self.config.frozen_s), 4)
        scores["moved"] = round(self._moved(grey, ts, flat), 4)
        return Diagnosis(scores, faults_of(scores, self.config))

    def _moved(self, grey: np.ndarray, ts: float, flat: bool) -> float:
        """Score of the view having changed (turned/moved camera) against the learnt reference view."""
        if flat:  # nothing to compare, and the reference must not learn a black or covered picture
            return 0.0
        edges = edge_map(grey)
        if self._reference is None or self._reference.shape != edges.shape:
            self._reference = edges
            return 0.0
        score = _clip((0.65 - ncc(edges, self._reference)) / 0.45)
        if score <= self.config.moved:
            self._moved_since = None
            cv2.accumulateWeighted(edges, self._reference, 0.2)  # follow light and season slowly
        elif self._moved_since is None:
            self._moved_since = ts
        elif ts - self._moved_since >= self.config.moved_rebaseline_s:
            self._reference, self._moved_since = edges, None  # the new view is the normal one now
        return score
