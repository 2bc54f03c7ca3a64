"""Panel and dashboard builders for deploy/grafana/build_dashboards.py: Grafana's JSON model (targets,
panels, the 24-column grid, the dashboard envelope) and the PromQL shapes the dashboards repeat."""

from __future__ import annotations

from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "xl-prometheus"}

Panel = dict[str, Any]


def quantile(q: float, metric: str, window: str, by: str = "") -> str:
    """The ``q`` quantile of a histogram over ``window``, per ``by`` label (all series together if empty)."""
    labels = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({labels}) (rate({metric}_bucket[{window}])))"


def ratio(by: str, fn: str, numerator: str, denominator: str, window: str) -> str:
    """``fn`` (rate, increase) of one counter over another's, per ``by`` label."""
    return f"sum by ({by}) ({fn}({numerator}[{window}])) / sum by ({by}) ({fn}({denominator}[{window}]))"


def mean(by: str, fn: str, metric: str, window: str) -> str:
    """A histogram's (or summary's) mean over ``window``: its sum over its count, per ``by`` label."""
    return ratio(by, fn, f"{metric}_sum", f"{metric}_count", window)


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> dict[str, Any]:
    return {
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "refId": ref,
        "instant": instant,
        "range": not instant,
    }


def panel(
    kind: str,
    title: str,
    targets: list[dict[str, Any]],
    w: int = 12,
    h: int = 8,
    unit: str = "short",
    description: str = "",
    **options: Any,
) -> Panel:
    for i, t in enumerate(targets):
        t["refId"] = chr(ord("A") + i)
    p: Panel = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "gridPos": {"w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": options,
    }
    return p


def stat(
    title: str,
    expr: str,
    unit: str = "short",
    w: int = 6,
    description: str = "",
    thresholds: list[tuple[float | None, str]] | None = None,
) -> Panel:
    p = panel(
        "stat",
        title,
        [target(expr, instant=True)],
        w=w,
        h=5,
        unit=unit,
        description=description,
        reduceOptions={"calcs": ["lastNotNull"], "fields": "", "values": False},
        colorMode="background",
    )
    if thresholds:
        p["fieldConfig"]["defaults"]["thresholds"] = {
            "mode": "absolute",
            "steps": [{"value": v, "color": c} for v, c in thresholds],
        }
    return p


def series(title: str, exprs: list[tuple[str, str]], unit: str = "short", w: int = 12, description: str = "") -> Panel:
    return panel(
        "timeseries",
        title,
        [target(e, legend) for e, legend in exprs],
        w=w,
        unit=unit,
        description=description,
        legend={"displayMode": "table", "placement": "right"},
    )


def table(title: str, expr: str, unit: str = "short", w: int = 12, description: str = "") -> Panel:
    p = panel("table", title, [target(expr, instant=True)], w=w, h=10, unit=unit, description=description)
    for t in p["targets"]:
        t["format"] = "table"
    return p


def layout(panels: list[Panel]) -> list[Panel]:
    """Flow panels left to right, wrapping at Grafana's 24 columns; give each an id."""
    x = y = row_h = 0
    for i, p in enumerate(panels, start=1):
        g = p["gridPos"]
        if x + g["w"] > 24:
            x, y, row_h = 0, y + row_h, 0
        g["x"], g["y"] = x, y
        x += g["w"]
        row_h = max(row_h, g["h"])
        p["id"] = i
    return panels


def dashboard(uid: str, title: str, description: str, panels: list[Panel], refresh: str = "30s") -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["xueliang"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": refresh,
        "time": {"from": "now-6h", "to": "now"},
        "graphTooltip": 1,
        "templating": {"list": []},
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["xueliang"], "asDropdown": True, "title": "Xueliang"}],
        "panels": layout(panels),
    }
