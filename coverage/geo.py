"""GeoJSON in, local metric coordinates out.

Inputs are GeoJSON FeatureCollections in WGS84 (RFC 7946) or in a projected CRS named by the
legacy ``"crs": {"type": "name", "properties": {"name": "EPSG:32650"}}`` member. Everything is
reprojected with pyproj to one local azimuthal-equidistant CRS centred on the demand, in metres,
where distances and bearings are true near the centre (a county is small enough).
Every geometry is validated; a bad one raises :class:`CoverageInputError` naming file and feature.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from xueliang.coverage.errors import CoverageInputError

WGS84 = CRS.from_epsg(4326)


@dataclass(frozen=True)
class Layer:
    """Features of one input: geometries in the local CRS, their properties, ids for messages."""

    source: str
    geoms: list[Any]
    props: list[dict[str, Any]]
    ids: list[str]

    def __len__(self) -> int:
        return len(self.geoms)


def load_geojson(obj: str | Path | dict[str, Any], source: str | None = None) -> tuple[dict[str, Any], str]:
    """Read a FeatureCollection from a path or take a dict; returns it and its name for messages."""
    if isinstance(obj, dict):
        return obj, source or "request"
    path = Path(obj)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CoverageInputError("file not found", source=str(path)) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CoverageInputError(f"not valid JSON: {exc}", source=str(path)) from exc
    return data, str(path)


def layer_crs(fc: dict[str, Any], source: str) -> CRS:
    crs = fc.get("crs")
    if crs is None:
        return WGS84
    name = (crs.get("properties") or {}).get("name") if isinstance(crs, dict) else None
    if not name:
        raise CoverageInputError(f"unreadable crs member {crs!r}", source=source)
    try:
        return CRS.from_user_input(name)
    except CRSError as exc:
        raise CoverageInputError(f"unknown CRS {name!r}", source=source) from exc


def _features(fc: Any, source: str) -> list[Any]:  # untrusted JSON: checked here
    if not isinstance(fc, dict) or fc.get("type") != "FeatureCollection" or not isinstance(fc.get("features"), list):
        raise CoverageInputError("expected a GeoJSON FeatureCollection", source=source)
    return fc["features"]


def _feature_id(f: dict[str, Any], i: int) -> str:
    p = f.get("properties") or {}
    for key in ("id", "name"):
        if p.get(key) is not None:
            return f"{i} ({p[key]})"
    if f.get("id") is not None:
        return f"{i} ({f['id']})"
    return str(i)


def raw_geometries(
    fc: dict[str, Any], source: str, allowed: tuple[str, ...]
) -> tuple[list[Any], list[dict[str, Any]], list[str]]:
    """Shapely geometries in the layer's own CRS, validated."""
    geoms, props, ids = [], [], []
    for i, f in enumerate(_features(fc, source)):
        fid = _feature_id(f, i) if isinstance(f, dict) else str(i)
        if not isinstance(f, dict) or f.get("type") != "Feature" or not f.get("geometry"):
            raise CoverageInputError("not a Feature with a geometry", source=source, feature=fid)
        try:
            g = shapely.geometry.shape(f["geometry"])
        except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException) as exc:
            raise CoverageInputError(f"unreadable geometry: {exc}", source=source, feature=fid) from exc
        if g.geom_type not in allowed:
            raise CoverageInputError(
                f"{g.geom_type} not allowed here (expected {', '.join(allowed)})", source=source, feature=fid
            )
        if g.is_empty:
            raise CoverageInputError("empty geometry", source=source, feature=fid)
        if not np.all(np.isfinite(shapely.get_coordinates(g))):
            raise CoverageInputError("non-finite coordinates", source=source, feature=fid)
        if not g.is_valid:
            raise CoverageInputError(f"invalid geometry: {shapely.is_valid_reason(g)}", source=source, feature=fid)
        if g.geom_type in ("LineString", "MultiLineString") and not g.is_simple:
            raise CoverageInputError("self-intersecting line", source=source, feature=fid)
        geoms.append(g)
        props.append(dict(f.get("properties") or {}))
        ids.append(fid)
    return geoms, props, ids


class LocalFrame:
    """A local azimuthal-equidistant CRS (metres) centred at ``(lon, lat)``."""

    def __init__(self, lon: float, lat: float) -> None:
        self.lon, self.lat = lon, lat
        self.crs = CRS.from_proj4(f"+proj=aeqd +lat_0={lat} +lon_0={lon} +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs")
        self._to_wgs = Transformer.from_crs(self.crs, WGS84, always_xy=True)

    def transformer_from(self, crs: CRS) -> Transformer:
        return Transformer.from_crs(crs, self.crs, always_xy=True)

    def to_wgs84(self, geom: Any) -> Any:
        return shapely.transform(geom, lambda xy: np.c_[self._to_wgs.transform(xy[:, 0], xy[:, 1])])

    def xy_to_lonlat(self, xy: np.ndarray) -> np.ndarray:
        lon, lat = self._to_wgs.transform(xy[:, 0], xy[:, 1])
        return np.c_[lon, lat]

    @classmethod
    def around(cls, fc: dict[str, Any], source: str) -> LocalFrame:
        geoms, _, _ = raw_geometries(fc, source, ALL_TYPES)
        if not geoms:
            raise CoverageInputError("no features", source=source)
        crs = layer_crs(fc, source)
        c = shapely.get_coordinates(np.asarray(geoms, dtype=object))
        if crs.is_geographic and (np.any(np.abs(c[:, 0]) > 180) or np.any(np.abs(c[:, 1]) > 90)):
            raise CoverageInputError(
                f"coordinates do not fit CRS {crs.to_string()} (projected data without a crs member?)", source=source
            )
        x, y = float(np.mean(c[:, 0])), float(np.mean(c[:, 1]))
        lon, lat = Transformer.from_crs(crs, WGS84, always_xy=True).transform(x, y)
        if not (np.isfinite(lon) and np.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
            hint = " (projected data without a crs member?)" if crs.is_geographic else ""
            raise CoverageInputError(f"coordinates do not fit CRS {crs.to_string()}{hint}", source=source)
        return cls(lon, lat)


ALL_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")


def read_layer(
    obj: str | Path | dict[str, Any], frame: LocalFrame, allowed: tuple[str, ...], source: str | None = None
) -> Layer:
    fc, src = load_geojson(obj, source)
    crs = layer_crs(fc, src)
    geoms, props, ids = raw_geometries(fc, src, allowed)
    tr = frame.transformer_from(crs)
    local = []
    for g, fid in zip(geoms, ids, strict=False):
        if crs.is_geographic:
            c = shapely.get_coordinates(g)
            if np.any(np.abs(c[:, 0]) > 180) or np.any(np.abs(c[:, 1]) > 90):
                raise CoverageInputError(
                    "coordinates out of range for WGS84 (projected data without a crs member?)", source=src, feature=fid
                )
        lg = shapely.transform(g, lambda xy: np.c_[tr.transform(xy[:, 0], xy[:, 1])])
        if not np.all(np.isfinite(shapely.get_coordinates(lg))):
            raise CoverageInputError("cannot be reprojected", source=src, feature=fid)
        if not lg.is_valid:
            lg = shapely.make_valid(lg)
        local.append(lg)
    return Layer(src, local, props, ids)


def sample_geometry(g: Any, spacing: float) -> np.ndarray:
    """Points standing for a feature: the point itself, every ``spacing`` m along a line, on a
    ``spacing`` grid inside a polygon (its representative point if the polygon is smaller)."""
    t = g.geom_type
    if t == "Point":
        return np.array([[g.x, g.y]])
    if t.startswith("Multi") or t == "GeometryCollection":
        parts = [sample_geometry(p, spacing) for p in g.geoms]
        return np.vstack(parts) if parts else np.zeros((0, 2))
    if t == "LineString":
        n = max(1, int(np.ceil(g.length / spacing)))
        d = (np.arange(n) + 0.5) * g.length / n
        return shapely.get_coordinates(shapely.line_interpolate_point(g, d))
    if t == "Polygon":
        x0, y0, x1, y1 = g.bounds
        xs = np.arange(x0 + spacing / 2, x1, spacing)
        ys = np.arange(y0 + spacing / 2, y1, spacing)
        X, Y = np.meshgrid(xs, ys)
        inside = shapely.contains_xy(g, X.ravel(), Y.ravel())
        pts = np.c_[X.ravel()[inside], Y.ravel()[inside]]
        if len(pts) == 0:
            rp = g.representative_point()
            pts = np.array([[rp.x, rp.y]])
        return pts
    raise ValueError(t)
