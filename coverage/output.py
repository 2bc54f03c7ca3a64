"""Writing a plan: GeoJSON layers, the JSON report and a PNG map (matplotlib, Agg backend)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from xueliang.coverage.planner import PlanOutcome
from xueliang.coverage.terrain import DEM
from xueliang.coverage.visibility import sector_polygon


def write_outputs(outcome: PlanOutcome, out_dir: str | Path, *, png: bool = True) -> dict[str, Path]:
    """Write ``recommended_cameras.geojson``, ``blind_spots.geojson``, ``report.json`` and ``map.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "recommended": out / "recommended_cameras.geojson",
        "blind_spots": out / "blind_spots.geojson",
        "report": out / "report.json",
    }
    files["recommended"].write_text(json.dumps(outcome.recommended, ensure_ascii=False), encoding="utf-8")
    files["blind_spots"].write_text(json.dumps(outcome.blind_geojson, ensure_ascii=False), encoding="utf-8")
    files["report"].write_text(json.dumps(outcome.report, ensure_ascii=False, indent=1), encoding="utf-8")
    if png:
        files["map"] = render_map(outcome, out / "map.png")
    return files


def _fill(ax: Any, geom: Any, **kw: Any) -> None:
    for g in getattr(geom, "geoms", [geom]):
        if g.geom_type == "Polygon" and not g.is_empty:
            x, y = g.exterior.xy
            ax.fill(x, y, **kw)


def render_map(outcome: PlanOutcome, path: str | Path) -> Path:
    """The plan on a map (local metres): terrain, buildings, today's cameras and views, demand by state,
    the 15 largest blind spots and the new cameras with their views, in install order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    D = outcome.demand
    fig, ax = plt.subplots(figsize=(10, 10), dpi=110)
    x0, y0 = D.xy.min(axis=0) - 150
    x1, y1 = D.xy.max(axis=0) + 150
    if outcome.scene.dem is not None:
        _draw_hillshade(ax, outcome.scene.dem)
    _draw_today(ax, outcome)
    _draw_demand(ax, outcome)
    _draw_plan(ax, outcome)
    r = outcome.report
    ax.set_title(
        f"Coverage {r['before']['share']:.1%} -> {r['after']['share']:.1%} with "
        f"{len(r['plan']['cameras'])} new cameras ({r['plan']['status_text']})"
    )
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xlabel("east (m)")
    ax.set_ylabel("north (m)")
    ax.legend(loc="lower left", fontsize=8)
    path = Path(path)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def _draw_hillshade(ax: Any, dem: DEM) -> None:
    from matplotlib.colors import LightSource

    b = dem.bounds
    ls = LightSource(azdeg=315, altdeg=45)
    z = np.where(np.isnan(dem.z), np.nanmin(dem.z), dem.z)
    ax.imshow(
        ls.hillshade(z, dx=dem.dx, dy=dem.dy),
        cmap="gray",
        extent=(b[0], b[2], b[1], b[3]),
        alpha=0.45,
        origin="upper",
        zorder=0,
    )


def _draw_today(ax: Any, outcome: PlanOutcome) -> None:
    """Buildings, the existing cameras and their views, the candidate sites."""
    E, S = outcome.existing, outcome.sites
    for g in outcome.buildings_local:
        _fill(ax, g, color="#555555", alpha=0.8, zorder=2)
    for i in range(len(E.ids)):
        _fill(
            ax,
            sector_polygon(E.xy[i, 0], E.xy[i, 1], E.azimuth[i], E.hfov[i], E.range[i]),
            color="#2ca02c",
            alpha=0.18,
            zorder=1,
        )
    ax.scatter(E.xy[:, 0], E.xy[:, 1], marker="^", c="#2ca02c", s=40, zorder=5, label="existing camera")
    ax.scatter(S.xy[:, 0], S.xy[:, 1], marker=".", c="#999999", s=12, zorder=3, label="candidate site")


def _draw_demand(ax: Any, outcome: PlanOutcome) -> None:
    """Demand samples seen today, seen after the plan and still unseen (sized by weight); the 15 largest
    blind spots outlined with their rank."""
    D = outcome.demand
    before, after = outcome.covered_before, outcome.solution.covered
    groups = [
        (before, "#2ca02c", "seen today"),
        (after & ~before, "#1f77b4", "seen after plan"),
        (~after, "#d62728", "still unseen"),
    ]
    for mask, col, lab in groups:
        ax.scatter(D.xy[mask, 0], D.xy[mask, 1], s=6 + D.weight[mask], c=col, zorder=4, label=lab)
    for spot, fl in list(zip(outcome.blind_spots, outcome.blind_local, strict=False))[:15]:
        for part in getattr(fl, "geoms", [fl]):
            xs, ys = part.exterior.xy
            ax.plot(xs, ys, color="#d62728", lw=1, ls="--", zorder=6)
        c = fl.representative_point()
        ax.annotate(f"#{spot['rank']}", (c.x, c.y), color="#d62728", fontsize=8, zorder=7)


def _draw_plan(ax: Any, outcome: PlanOutcome) -> None:
    """The new cameras (stars, numbered in install order) and their views."""
    S = outcome.sites
    site_index = {sid: i for i, sid in enumerate(S.ids)}
    for cam in outcome.report["plan"]["cameras"]:
        i = site_index[cam["site"]]
        _fill(
            ax,
            sector_polygon(S.xy[i, 0], S.xy[i, 1], cam["heading_deg"], cam["hfov_deg"], cam["range_m"]),
            color="#1f77b4",
            alpha=0.3,
            zorder=3,
        )
        ax.scatter([S.xy[i, 0]], [S.xy[i, 1]], marker="*", c="#1f77b4", s=120, zorder=8)
        ax.annotate(
            str(cam["rank"]),
            (S.xy[i, 0], S.xy[i, 1]),
            color="#1f77b4",
            fontsize=9,
            zorder=9,
            xytext=(4, 4),
            textcoords="offset points",
        )
