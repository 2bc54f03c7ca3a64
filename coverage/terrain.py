"""Terrain: a DEM raster, bilinear elevation, vectorised line of sight and viewsheds.

Line of sight from an observer at ``(ox, oy)`` standing ``h_o`` above the ground to a target
``h_t`` above the ground at ``(tx, ty)`` is clear when no terrain sample along the segment
rises above the sight line. With earth curvature and refraction, terrain ``d`` metres from the
observer is lowered by ``cc * d**2 / (2 R)`` (``R`` = 6,378,137 m, ``cc`` = 1 - 1/7 = 0.85714 for
standard refraction), which is exactly GDAL's ``gdal_viewshed -cc`` convention; ``cc = 0``
switches the correction off. Samples are taken every ``step`` metres (half a cell by default)
with bilinear interpolation, all rays of a batch at once with numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xueliang.coverage.errors import CoverageInputError

EARTH_RADIUS_M = 6_378_137.0
STANDARD_REFRACTION_CC = 1.0 - 1.0 / 7.0


@dataclass(frozen=True)
class DEM:
    """A north-up elevation raster. ``z[r, c]`` is the height of the cell whose centre is
    ``(x0 + (c + 0.5) dx, y0 - (r + 0.5) dy)``; missing cells are NaN; ``crs`` is a pyproj CRS
    (or ``None`` for an already-local metric frame)."""

    z: np.ndarray
    x0: float
    y0: float
    dx: float
    dy: float
    crs: object | None = None
    source: str = "dem"

    def __post_init__(self) -> None:
        if self.z.ndim != 2 or min(self.z.shape) < 2:
            raise CoverageInputError(
                f"DEM must be a 2-D raster of at least 2x2 cells, got shape {self.z.shape}", source=self.source
            )
        if not (self.dx > 0 and self.dy > 0):
            raise CoverageInputError("DEM cell size must be positive", source=self.source)

    # ------------------------------------------------------------------ io
    @classmethod
    def from_geotiff(cls, path: str | Path) -> DEM:
        import rasterio
        from pyproj import CRS

        try:
            with rasterio.open(path) as ds:
                z = ds.read(1, masked=True).astype(np.float64).filled(np.nan)
                t = ds.transform
                crs = CRS.from_wkt(ds.crs.to_wkt()) if ds.crs else None
        except rasterio.errors.RasterioIOError as exc:
            raise CoverageInputError(f"cannot read DEM: {exc}", source=str(path)) from exc
        if t.b != 0 or t.d != 0:
            raise CoverageInputError("rotated DEM rasters are not supported", source=str(path))
        if crs is None:
            raise CoverageInputError("DEM has no CRS", source=str(path))
        dy = -t.e
        y0 = t.f
        if dy < 0:  # south-up raster: flip to north-up
            z, dy, y0 = z[::-1], -dy, t.f + t.e * z.shape[0]
        return cls(z, t.c, y0, t.a, dy, crs, str(path))

    @classmethod
    def from_npz(cls, path: str | Path, *, crs: object = "EPSG:4326") -> DEM:
        """matplotlib's sample layouts (``jacksboro_fault_dem.npz``: ``elevation``, ``xmin``,
        ``ymin``/``ymax``, ``dx``, ``dy``; ``topobathy.npz``: ``topo``, ``longitude``, ``latitude``),
        or a generic one (``z``, ``x0``, ``y0``, ``dx``, ``dy``, optional ``crs`` string)."""
        from pyproj import CRS

        try:
            d = np.load(path)
        except (OSError, ValueError) as exc:
            raise CoverageInputError(f"cannot read DEM: {exc}", source=str(path)) from exc
        if "elevation" in d.files:
            z = d["elevation"].astype(np.float64)
            dx, dy = float(d["dx"]), float(d["dy"])
            top = max(float(d["ymin"]), float(d["ymax"]))
            # cell-centre extents in the sample file: convert to the top-left corner
            return cls(z, float(d["xmin"]) - dx / 2, top + dy / 2, dx, dy, CRS.from_user_input(crs), str(path))
        if "topo" in d.files and "longitude" in d.files:  # matplotlib's topobathy.npz: centre coordinates
            lon = d["longitude"].astype(np.float64)
            lat = d["latitude"].astype(np.float64)
            lon = np.where(lon > 180, lon - 360, lon)
            z = d["topo"].astype(np.float64)
            if lat[0] < lat[-1]:
                z, lat = z[::-1], lat[::-1]
            dx = float(np.mean(np.diff(lon)))
            dy = float(np.mean(-np.diff(lat)))
            return cls(z, float(lon[0]) - dx / 2, float(lat[0]) + dy / 2, dx, dy, CRS.from_user_input(crs), str(path))
        if "z" in d.files:
            c = str(d["crs"]) if "crs" in d.files else crs
            return cls(
                d["z"].astype(np.float64),
                float(d["x0"]),
                float(d["y0"]),
                float(d["dx"]),
                float(d["dy"]),
                CRS.from_user_input(c) if c else None,
                str(path),
            )
        raise CoverageInputError(f"unknown npz DEM layout, arrays {d.files}", source=str(path))

    def to_geotiff(self, path: str | Path) -> Path:
        import rasterio
        from rasterio.transform import from_origin

        path = Path(path)
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            height=self.z.shape[0],
            width=self.z.shape[1],
            count=1,
            dtype="float32",
            crs=self.crs.to_wkt() if self.crs is not None else None,  # type: ignore[attr-defined]  # a pyproj CRS
            transform=from_origin(self.x0, self.y0, self.dx, self.dy),
            nodata=-32768.0,
        ) as ds:
            ds.write(np.where(np.isnan(self.z), -32768.0, self.z).astype(np.float32), 1)
        return path

    def to_crs(self, crs: object, resolution: float) -> DEM:
        """Warp (bilinear) onto a north-up grid of ``resolution`` metres in ``crs``."""
        import rasterio.warp
        from pyproj import CRS
        from rasterio.crs import CRS as RCRS
        from rasterio.transform import from_origin

        dst_crs = CRS.from_user_input(crs)
        h, w = self.z.shape
        left, right, top, bottom = self.x0, self.x0 + w * self.dx, self.y0, self.y0 - h * self.dy
        xs, ys = rasterio.warp.transform(
            RCRS.from_wkt(self.crs.to_wkt()),  # type: ignore[attr-defined]  # a pyproj CRS
            RCRS.from_wkt(dst_crs.to_wkt()),
            [left, right, right, left],
            [top, top, bottom, bottom],
        )
        ncols = math.ceil((max(xs) - min(xs)) / resolution)
        nrows = math.ceil((max(ys) - min(ys)) / resolution)
        dst = np.full((nrows, ncols), np.nan, dtype=np.float64)
        rasterio.warp.reproject(
            source=np.where(np.isnan(self.z), -32768.0, self.z),
            destination=dst,
            src_transform=from_origin(self.x0, self.y0, self.dx, self.dy),
            src_crs=RCRS.from_wkt(self.crs.to_wkt()),  # type: ignore[attr-defined]  # a pyproj CRS
            src_nodata=-32768.0,
            dst_transform=from_origin(min(xs), max(ys), resolution, resolution),
            dst_crs=RCRS.from_wkt(dst_crs.to_wkt()),
            dst_nodata=np.nan,
            resampling=rasterio.warp.Resampling.bilinear,
        )
        return DEM(dst, min(xs), max(ys), resolution, resolution, dst_crs, self.source)

    # ------------------------------------------------------------------ queries
    @property
    def bounds(self) -> tuple[float, float, float, float]:
        h, w = self.z.shape
        return self.x0, self.y0 - h * self.dy, self.x0 + w * self.dx, self.y0

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        h, w = self.z.shape
        return self.x0 + (np.arange(w) + 0.5) * self.dx, self.y0 - (np.arange(h) + 0.5) * self.dy

    def elevation(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Bilinear elevation at points; NaN outside the raster's cell centres or on missing cells."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        h, w = self.z.shape
        fc = (x - self.x0) / self.dx - 0.5
        fr = (self.y0 - y) / self.dy - 0.5
        inside = (fc >= -1e-9) & (fc <= w - 1 + 1e-9) & (fr >= -1e-9) & (fr <= h - 1 + 1e-9)
        fc = np.clip(fc, 0, w - 1)
        fr = np.clip(fr, 0, h - 1)
        c0 = np.minimum(fc.astype(np.int64), w - 2)
        r0 = np.minimum(fr.astype(np.int64), h - 2)
        tc = fc - c0
        tr = fr - r0
        z = self.z
        v = (
            z[r0, c0] * (1 - tc) * (1 - tr)
            + z[r0, c0 + 1] * tc * (1 - tr)
            + z[r0 + 1, c0] * (1 - tc) * tr
            + z[r0 + 1, c0 + 1] * tc * tr
        )
        return np.where(inside, v, np.nan)

    def covers(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return ~np.isnan(self.elevation(x, y))

    # ------------------------------------------------------------------ visibility
    def line_of_sight(
        self,
        ox: float | np.ndarray,
        oy: float | np.ndarray,
        oz: float | np.ndarray,
        tx: np.ndarray,
        ty: np.ndarray,
        tz: np.ndarray,
        *,
        curvature: float = 0.0,
        step: float | None = None,
        chunk: int = 4_000_000,
    ) -> np.ndarray:
        """Clear sight from absolute heights ``oz`` to ``tz`` (metres above datum, before curvature)?

        Arrays broadcast to one length (one ray each). ``tz`` is lowered by the curvature drop
        at its distance like the terrain. Terrain outside the raster never blocks.
        """
        ox, oy, oz, tx, ty, tz = np.broadcast_arrays(
            *(np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (ox, oy, oz, tx, ty, tz))
        )
        n = ox.shape[0]
        step = step or 0.5 * min(self.dx, self.dy)
        length = np.hypot(tx - ox, ty - oy)
        ns = np.maximum(np.ceil(length / step).astype(np.int64) - 1, 0)  # interior samples per ray
        k2 = curvature / (2 * EARTH_RADIUS_M)
        tz_eff = tz - k2 * length**2
        visible = np.ones(n, dtype=bool)
        # chunk rays so that the flattened samples stay bounded
        csum = np.cumsum(ns)
        start = 0
        while start < n:
            base = csum[start - 1] if start else 0
            stop = int(np.searchsorted(csum, base + chunk, side="right"))
            stop = max(stop, start + 1)
            sl = slice(start, stop)
            cnt = ns[sl]
            tot = int(cnt.sum())
            if tot:
                ray = np.repeat(np.arange(start, stop), cnt)
                # 1..cnt within each ray
                idx = np.arange(tot) - np.repeat(np.cumsum(cnt) - cnt, cnt) + 1
                t = idx / (cnt + 1)[ray - start]
                sx = ox[ray] + t * (tx[ray] - ox[ray])
                sy = oy[ray] + t * (ty[ray] - oy[ray])
                d = t * length[ray]
                ground = self.elevation(sx, sy) - k2 * d**2
                line = oz[ray] + t * (tz_eff[ray] - oz[ray])
                blocked = ground > line + 1e-9
                hit = np.zeros(stop - start, dtype=bool)
                hit[ray[blocked] - start] = True
                visible[sl] &= ~hit
            start = stop
        return visible

    def viewshed(
        self,
        ox: float,
        oy: float,
        *,
        observer_height: float,
        target_height: float = 0.0,
        max_distance: float | None = None,
        curvature: float = 0.0,
        step: float | None = None,
    ) -> np.ndarray:
        """Boolean raster: cells whose centre, raised by ``target_height``, the observer sees.
        Cells beyond ``max_distance`` are False. The observer stands ``observer_height`` above the
        ground at ``(ox, oy)`` (bilinear ground height, like GDAL's cell height for a centre)."""
        xs, ys = self.cell_centres()
        X, Y = np.meshgrid(xs, ys)
        g0 = float(self.elevation(np.array([ox]), np.array([oy]))[0])
        if math.isnan(g0):
            raise CoverageInputError(f"observer ({ox:.1f}, {oy:.1f}) outside the DEM", source=self.source)
        out = np.zeros(self.z.shape, dtype=bool)
        d = np.hypot(X - ox, Y - oy)
        sel = ~np.isnan(self.z) if max_distance is None else (~np.isnan(self.z) & (d <= max_distance))
        r, c = np.nonzero(sel)
        vis = self.line_of_sight(
            ox, oy, g0 + observer_height, X[r, c], Y[r, c], self.z[r, c] + target_height, curvature=curvature, step=step
        )
        out[r, c] = vis
        return out
