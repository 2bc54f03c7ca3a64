"""Generate the production configuration example of one county (柯桥区, 16 townships,
~300 village grids, ~500 cameras) and the Kubernetes ConfigMap that carries it.

    python deploy/config/generate_county.py          # rewrites both files
    xueliang validate-config deploy/config/county-production.yaml

Deterministic (no randomness): tests/test_ops_deploy.py checks the committed files equal
this script's output and that the configuration validates. Camera addresses, names and
geometry are illustrative; secrets are ${ENV} references resolved at load time.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from xueliang.config.detector import real_world_backend

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "county-production.yaml"
CONFIGMAP = HERE.parent / "k8s" / "20-configmap.yaml"

# (id, name, villages) — Keqiao district's 16 streets and towns
TOWNSHIPS = [
    ("keqiao", "柯桥街道", 24),
    ("huashe", "华舍街道", 18),
    ("hutang", "湖塘街道", 20),
    ("keyan", "柯岩街道", 22),
    ("qixian", "齐贤街道", 19),
    ("anchang", "安昌街道", 21),
    ("fuquan", "福全街道", 17),
    ("qianqing", "钱清街道", 23),
    ("yangxunqiao", "杨汛桥街道", 18),
    ("lanting", "兰亭街道", 20),
    ("maan", "马鞍街道", 19),
    ("lizhu", "漓渚镇", 16),
    ("xialv", "夏履镇", 12),
    ("pingshui", "平水镇", 22),
    ("jidong", "稽东镇", 26),
    ("wangtan", "王坛镇", 20),
]
COUNTY_LON, COUNTY_LAT = 120.49, 30.08


def cameras_in_village(t: int, v: int) -> int:
    """1–3 cameras a village (entrance always; square and river bank in bigger ones); every 11th has none yet."""
    if (t * 31 + v) % 11 == 0:
        return 0
    return 1 + ((t + v) % 3 > 0) + ((t * 7 + v) % 5 == 0)


def camera(t: int, tid: str, v: int, vid: str, k: int) -> dict[str, Any]:
    kind = ["entrance", "square", "riverbank"][k]
    host = f"10.{60 + t}.{v}.{11 + k}"
    cred = "${XL_CAMERA_USER:-admin}:${XL_CAMERA_PASSWORD}"
    cam: dict[str, Any] = {
        "id": f"{vid}-{kind}",
        "name": {"entrance": "村口", "square": "文化广场", "riverbank": "河埠头"}[kind],
        "village": vid,
        "source": {
            "type": "rtsp",
            "url": f"rtsp://{cred}@{host}:554/Streaming/Channels/101",
            "detect_url": f"rtsp://{cred}@{host}:554/Streaming/Channels/102",
            "transport": "tcp",
        },
        "sample_fps": 2,
        "placement": {
            "lon": round(COUNTY_LON + (t % 4) * 0.04 + v * 0.0012, 5),
            "lat": round(COUNTY_LAT + (t // 4) * 0.03 + k * 0.0008, 5),
            "height_m": 6,
            "azimuth_deg": (t * 45 + v * 30 + k * 90) % 360,
            "hfov_deg": 70,
            "range_m": 60,
        },
    }
    if kind == "entrance":
        cam["lines"] = [{"name": "gate", "a": [120, 400], "b": [840, 400]}]
        cam["rules"] = [
            {
                "type": "line_crossing",
                "name": "night-entry",
                "line": "gate",
                "direction": "a_to_b",
                "classes": ["person", "car", "motorbike"],
                "schedule": [{"start": "22:00:00", "end": "05:00:00"}],
            }
        ]
    elif kind == "square":
        cam["zones"] = [{"name": "square", "polygon": [[80, 200], [880, 200], [940, 540], [20, 540]]}]
        cam["rules"] = [
            {
                "type": "crowding",
                "name": "gathering",
                "zone": "square",
                "min_count": 15,
                "min_duration_s": 120,
                "grades": [{"count": 50, "severity": "major"}],
            }
        ]
    else:
        cam["zones"] = [{"name": "water-edge", "polygon": [[0, 380], [960, 330], [960, 540], [0, 540]]}]
        cam["rules"] = [
            {
                "type": "intrusion",
                "name": "water-edge-intrusion",
                "zone": "water-edge",
                "severity": "major",
                "schedule": [{"start": "19:00:00", "end": "07:00:00"}],
            },
            {"type": "loitering", "name": "water-edge-loitering", "zone": "water-edge", "dwell_s": 300},
            {
                "type": "fire_smoke",
                "name": "straw-burning",
                "k": 3,
                "n": 5,
                "grades": [{"area_px": 60000, "severity": "critical"}],
            },  # ~12 % of a 960x540 substream frame
        ]
    return cam


def build() -> dict[str, Any]:
    townships, cameras = [], []
    for t, (tid, tname, n_villages) in enumerate(TOWNSHIPS, start=1):
        township, township_cameras = _township(t, tid, tname, n_villages)
        townships.append(township)
        cameras += township_cameras
    return {"centres": _centres(townships), "cameras": cameras, **_services()}


def _township(t: int, tid: str, tname: str, n_villages: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One township's centre with its village grids, and the villages' cameras."""
    villages, cameras = [], []
    for v in range(1, n_villages + 1):
        vid = f"{tid}-v{v:02d}"
        villages.append(
            {
                "id": vid,
                "name": f"{tname}第{v}村",
                "tier": "village",
                "division_code": f"330603{t:03d}{200 + v:03d}",
            }
        )
        cameras += [camera(t, tid, v, vid, k) for k in range(cameras_in_village(t, v))]
    township = {
        "id": tid,
        "name": f"{tname}综治中心",
        "tier": "township",
        "division_code": f"330603{t:03d}",
        "children": villages,
    }
    return township, cameras


def _centres(townships: list[dict[str, Any]]) -> dict[str, Any]:
    """The centre tree: city, county, the townships."""
    return {
        "id": "shaoxing",
        "name": "绍兴市社会治理中心",
        "tier": "city",
        "division_code": "330600",
        "children": [
            {
                "id": "keqiao-county",
                "name": "柯桥区综治中心",
                "tier": "county",
                "division_code": "330603",
                "children": townships,
            }
        ],
    }


def _services() -> dict[str, Any]:
    """The stages' and services' sections (everything but the centres and cameras), in the file's order."""
    return {
        # ≈ 60 cameras per ingest pod: room for a few seconds of their frames while the brokers fail over
        "ingest": {"max_buffered_frames": 256, "max_in_flight": 64},
        "detector": {
            # real cameras: COCO-trained people/vehicles + the project's fire/smoke (docs/detector.md)
            "backend": real_world_backend(Path("/opt/xueliang/detector/models")),
            "confidence": 0.25,
            "batch_size": 8,
            "batch_timeout_ms": 50,
            "max_age_s": 5.0,
            "snapshot_dir": "/var/lib/xueliang/snapshots",
        },
        "dispatch": {
            "routing": [
                {"severity": "general", "owner_tier": "village"},
                {"severity": "serious", "owner_tier": "village", "notify_tiers": ["township"]},
                {"severity": "major", "owner_tier": "township", "notify_tiers": ["county"]},
                {"severity": "major", "rule_type": "fire_smoke", "owner_tier": "county", "notify_tiers": ["city"]},
                {"severity": "critical", "owner_tier": "county", "notify_tiers": ["city"]},
            ],
            "sla": {
                "general": {"accept_s": 1800, "close_s": 259200},
                "serious": {"accept_s": 900, "close_s": 86400},
                "major": {"accept_s": 300, "close_s": 14400},
                "critical": {"accept_s": 120, "close_s": 3600},
            },
            "tick_s": 5.0,
        },
        "bus": {
            "type": "kafka",
            "frame_partitions": 24,
            "bootstrap_servers": ["xueliang-kafka-bootstrap.xueliang.svc.cluster.local:9093"],
            # SCRAM over TLS; user, password and CA file from XL_KAFKA_USERNAME/PASSWORD/CA_FILE
            "security": {"protocol": "SASL_SSL"},
        },
        "store": {
            "url": "postgresql+psycopg://xueliang:${XL_POSTGRES_PASSWORD}@xueliang-postgres.xueliang.svc:5432/xueliang"
        },
        "api": {"host": "0.0.0.0", "port": 8000, "jwt_secret": "${XL_JWT_SECRET}"},
        "metrics": {"port": 9100},
    }


HEADER = """\
# Production configuration example: 柯桥区 (Keqiao district, Shaoxing), 16 townships,
# {villages} village grids, {cameras} cameras on Kafka (Strimzi) and PostgreSQL.
# Generated by deploy/config/generate_county.py: edit the script, not this file.
# Validate: xueliang validate-config deploy/config/county-production.yaml
# Secrets (XL_CAMERA_PASSWORD, XL_POSTGRES_PASSWORD, XL_JWT_SECRET) come from the environment.
"""


def render() -> tuple[str, str]:
    config = build()
    n_villages = sum(len(t["children"]) for t in config["centres"]["children"][0]["children"])
    body = yaml.safe_dump(config, allow_unicode=True, sort_keys=False, width=160, default_flow_style=None)
    text = HEADER.format(villages=n_villages, cameras=len(config["cameras"])) + body
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "xueliang-config",
            "namespace": "xueliang",
            "labels": {"app.kubernetes.io/part-of": "xueliang"},
        },
        "data": {"xueliang.yaml": text},
    }
    cm = (
        "# Generated by deploy/config/generate_county.py from county-production.yaml.\n"
        "# Over 256 KiB: apply server-side (kubectl apply --server-side -f ...), client-side apply\n"
        "# cannot store it in its last-applied annotation.\n"
        + yaml.safe_dump(configmap, allow_unicode=True, sort_keys=False, width=120)
    )
    return text, cm


def main() -> int:
    text, cm = render()
    CONFIG.write_text(text, encoding="utf-8")
    CONFIGMAP.write_text(cm, encoding="utf-8")
    print(f"wrote {CONFIG} and {CONFIGMAP}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
