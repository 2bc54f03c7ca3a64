"""One YAML file, validated strictly: cameras, centre tree, rules, ingest, detector, dispatch, bus, store, api.

``load_config(path)`` expands ``${ENV_VAR}`` references (secrets stay out of the
file), validates, and on failure raises :class:`ConfigError` whose message names
each bad field's path, its line in the file, and the reason.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from xueliang.config._base import StrictModel
from xueliang.config.bus import BusConfig, KafkaBusConfig, MemoryBusConfig
from xueliang.config.cameras import CameraConfig, mask_url
from xueliang.config.centres import Centre, Tier
from xueliang.config.detector import DetectorConfig
from xueliang.config.dispatch import DispatchConfig
from xueliang.config.ingest import IngestConfig

_DWELL_RULES = {"loitering", "crowding", "stalled_vehicle", "abandoned_object"}


class StoreConfig(StrictModel):
    url: str = Field(
        "sqlite:///var/xueliang.db", description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://..."
    )

    @field_validator("url")
    @classmethod
    def _supported(cls, url: str) -> str:
        scheme = url.split(":", 1)[0]
        if scheme.split("+", 1)[0] not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported store URL scheme {scheme!r}: use sqlite:///path or postgresql+psycopg://...")
        return url


class ApiConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    jwt_secret: str = Field("${XL_JWT_SECRET}", description="from the environment; the demo generates one if unset")
    token_ttl_s: int = Field(8 * 3600, gt=0)
    max_body_bytes: int = Field(
        8 * 1024 * 1024,
        ge=1024,
        le=256 * 1024 * 1024,
        description="request bodies larger than this are refused (413) before they are read",
    )


class MetricsConfig(StrictModel):
    port: int | None = Field(None, ge=1, le=65535, description="standalone /metrics port for workers without the API")


class Settings(StrictModel):
    """The whole configuration file."""

    centres: Centre = Field(description="the root of the command-centre tree (city or county)")
    cameras: list[CameraConfig] = Field(default_factory=list, description="every camera, its source, zones and rules")
    ingest: IngestConfig = Field(default_factory=IngestConfig, description="stream workers: bus buffer bounds")
    detector: DetectorConfig = Field(default_factory=DetectorConfig, description="inference backend and batching")
    dispatch: DispatchConfig = Field(default_factory=DispatchConfig, description="routing by severity, SLA clocks")
    bus: BusConfig = Field(default_factory=MemoryBusConfig, description="`memory` (embedded, one process) or `kafka`")
    store: StoreConfig = Field(default_factory=StoreConfig, description="SQLite (default) or PostgreSQL")
    api: ApiConfig = Field(default_factory=ApiConfig, description="operator API and console")
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="Prometheus endpoint of workers")

    @model_validator(mode="after")
    def _cross_references(self) -> Settings:
        centres = {c.id: c for c, _ in self.centres.walk()}
        ids = [c.id for c, _ in self.centres.walk()]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate centre ids: {sorted({i for i in ids if ids.count(i) > 1})}")
        seen: set[str] = set()
        for cam in self.cameras:
            if cam.id in seen:
                raise ValueError(f"duplicate camera id {cam.id!r}")
            seen.add(cam.id)
            if cam.village is not None:
                centre = centres.get(cam.village)
                if centre is None:
                    raise ValueError(f"camera {cam.id!r}: village {cam.village!r} is not a centre in the tree")
                if centre.tier is not Tier.village:
                    raise ValueError(f"camera {cam.id!r}: {cam.village!r} is a {centre.tier} centre, not a village")
            elif cam.gb28181_division is None:
                raise ValueError(f"camera {cam.id!r}: give `village`, or use a GB/T 28181 20-digit id")
            if cam.detector_backend is not None and cam.detector_backend not in self.detector.backends:
                raise ValueError(
                    f"camera {cam.id!r}: detector_backend {cam.detector_backend!r} is not in detector.backends "
                    f"({sorted(self.detector.backends) or 'none defined'})"
                )
            dwell_rules = [r.name for r in cam.rules if r.type in _DWELL_RULES and r.enabled]
            ttl = self.detector.tracker.lost_ttl_s
            if cam.motion.enabled and dwell_rules and cam.motion.keepalive_s >= ttl:
                raise ValueError(
                    f"camera {cam.id!r}: motion.keepalive_s ({cam.motion.keepalive_s} s) must be below "
                    f"detector.tracker.lost_ttl_s ({ttl} s): without motion a still object would lose its track "
                    f"between keep-alive frames and rules {dwell_rules} would restart their clocks"
                )
        return self

    def camera(self, camera_id: str) -> CameraConfig:
        for cam in self.cameras:
            if cam.id == camera_id:
                return cam
        raise KeyError(camera_id)


class ConfigError(ValueError):
    """The configuration file is invalid; the message points at the fields and lines."""


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand_env(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):

        def sub(m: re.Match[str]) -> str:
            value = env.get(m.group(1))
            if value is None:
                if m.group(2) is not None:
                    return m.group(2)
                return m.group(0)  # left for the consumer to report (e.g. a missing secret)
            return value

        return _ENV.sub(sub, node)
    if isinstance(node, list):
        return [_expand_env(v, env) for v in node]
    if isinstance(node, dict):
        return {k: _expand_env(v, env) for k, v in node.items()}
    return node


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Line (1-based) of the deepest YAML node on ``loc``."""
    node, line = root, None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            # discriminated-union tags (e.g. 'intrusion') are not YAML keys: stay on this node
            continue
    if node is not None:
        line = node.start_mark.line + 1
    return line


def parse_config(text: str, source: str = "<string>", env: Mapping[str, str] | None = None) -> Settings:
    """Validate configuration text; ``${VAR}`` / ``${VAR:-default}`` come from ``env`` (default: os.environ)."""
    try:
        raw = yaml.safe_load(text)
        tree = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    try:
        return Settings.model_validate(_expand_env(raw, os.environ if env is None else env))
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            path = ".".join(str(p) for p in loc) or "(top level)"
            line = _line_of(tree, loc)
            where = f"{source}:{line}" if line else source
            lines.append(f"{where}: {path}: {err['msg']}")
        raise ConfigError("invalid configuration\n  " + "\n  ".join(lines)) from None


def load_config(path: str | Path) -> Settings:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror}") from None
    return parse_config(text, str(path))


__all__ = [
    "ApiConfig",
    "BusConfig",
    "CameraConfig",
    "Centre",
    "ConfigError",
    "DetectorConfig",
    "DispatchConfig",
    "KafkaBusConfig",
    "MemoryBusConfig",
    "MetricsConfig",
    "Settings",
    "StoreConfig",
    "Tier",
    "load_config",
    "mask_url",
    "parse_config",
]
