"""The configuration tree is strict, points at the bad line, and never leaks credentials."""

from __future__ import annotations

import logging
import textwrap

import pytest

from xueliang.config import ConfigError, parse_config
from xueliang.config.cameras import mask_url
from xueliang.config.rules import FireSmokeRule
from xueliang.log import ScrubbingFormatter, scrub

BASE = """
centres:
  id: city
  name: 市
  tier: city
  children:
    - id: county
      name: 县
      tier: county
      children:
        - id: town
          name: 镇
          tier: township
          children:
            - {id: v1, name: 村一, tier: village, division_code: "330603104201"}
cameras:
  - id: cam1
    village: v1
    source: {type: rtsp, url: "rtsp://admin:s3cret@10.0.0.5/stream1"}
    zones:
      - name: gate
        polygon: [[0, 0], [100, 0], [100, 100]]
    rules:
      - {type: intrusion, name: gate-night, zone: gate, classes: [person]}
"""


def test_valid_config_parses() -> None:
    settings = parse_config(BASE)
    cam = settings.camera("cam1")
    assert cam.rules[0].type == "intrusion"
    assert cam.rules[0].effective_severity == "serious"
    assert settings.bus.type == "memory"
    assert [c.id for c, _ in settings.centres.walk()] == ["city", "county", "town", "v1"]


@pytest.mark.parametrize(
    ("replace", "by", "expected_line", "expected_text"),
    [
        ("zone: gate, classes", "zone: nowhere, classes", 24, "names zone 'nowhere'"),
        ("{type: rtsp,", "{type: onvif,", 19, "source"),
        ("tier: township", "tier: village", 11, "cannot sit under"),
        ("sample_fps", "sample_fps", None, None),
    ],
)
def test_invalid_config_names_field_and_line(
    replace: str, by: str, expected_line: int | None, expected_text: str | None
) -> None:
    if expected_text is None:
        text = BASE.replace("    village: v1\n", "    village: v1\n    sample_fps: -1\n")
        expected_line, expected_text = 19, "cameras.0.sample_fps"
    else:
        text = BASE.replace(replace, by)
    with pytest.raises(ConfigError) as err:
        parse_config(text, "county.yaml")
    message = str(err.value)
    assert expected_text in message
    assert f"county.yaml:{expected_line}" in message, message


def test_unknown_keys_are_errors() -> None:
    with pytest.raises(ConfigError, match=r"cameras.0.colour.*Extra inputs are not permitted"):
        parse_config(BASE.replace("    village: v1\n", "    village: v1\n    colour: red\n"))


def test_camera_must_belong_to_a_village() -> None:
    with pytest.raises(ConfigError, match="is a township centre, not a village"):
        parse_config(BASE.replace("village: v1", "village: town"))
    with pytest.raises(ConfigError, match="give `village`, or use a GB/T 28181"):
        parse_config(BASE.replace("    village: v1\n", ""))
    gb = BASE.replace("    village: v1\n", "").replace("id: cam1", "id: '33060310411320000001'")
    assert parse_config(gb).cameras[0].gb28181_division == "33060310"


def test_env_expansion_keeps_secrets_out_of_the_file() -> None:
    text = BASE.replace("admin:s3cret@", "${CAM_USER}:${CAM_PASS}@")
    settings = parse_config(text, env={"CAM_USER": "admin", "CAM_PASS": "pw"})
    assert settings.cameras[0].source.url == "rtsp://admin:pw@10.0.0.5/stream1"
    assert settings.cameras[0].source.masked == "rtsp://***@10.0.0.5/stream1"
    defaulted = parse_config(
        BASE.replace('url: "rtsp', 'url: "${CAM_URL:-rtsp').replace('stream1"', 'stream1}"'), env={}
    )
    assert defaulted.cameras[0].source.url.endswith("/stream1")


def test_rule_cross_field_validation() -> None:
    with pytest.raises(ValueError, match="k \\(6\\) must not exceed n \\(5\\)"):
        FireSmokeRule(type="fire_smoke", name="f", k=6, n=5)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("rtsp://admin:pw@10.1.2.3:554/h264", "rtsp://***@10.1.2.3:554/h264"),
        ("http://user@cam/mjpeg", "http://***@cam/mjpeg"),
        ("rtsp://10.1.2.3/live", "rtsp://10.1.2.3/live"),
        ("/data/clip.mp4", "/data/clip.mp4"),
        # issue 16 #7: '@' in the password, credentials in the query
        ("rtsp://admin:Admin@123@10.61.1.11/Streaming/Channels/101", "rtsp://***@10.61.1.11/Streaming/Channels/101"),
        ("rtsp://u:pa/ss@10.0.0.2/x", "rtsp://***@10.0.0.2/x"),
        (
            "http://10.0.0.5/snapshot.cgi?loginuse=admin&loginpas=S3cret&res=1",
            "http://10.0.0.5/snapshot.cgi?loginuse=***&loginpas=***&res=1",
        ),
        ("http://cam/cgi?user=bob&pwd=1;token=2#f", "http://cam/cgi?user=***&pwd=***;token=***#f"),
        ("http://cam/cgi-bin/snap.cgi?channel=1&subtype=0", "http://cam/cgi-bin/snap.cgi?channel=1&subtype=0"),
        ("opened rtsp://a:b@h1/x, then rtsp://c:d@h2/y", "opened rtsp://***@h1/x, then rtsp://***@h2/y"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_log_lines_are_scrubbed() -> None:
    assert scrub("open rtsp://a:b@h/x?token=abc&x=1") == "open rtsp://***@h/x?token=***&x=1"
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "camera %s at %s", ("cam1", "rtsp://u:p@h/s"), None)
    assert "u:p" not in ScrubbingFormatter("%(message)s").format(record)


def test_validate_config_command(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from xueliang.cli import main

    good = tmp_path / "good.yaml"
    good.write_text(BASE)
    assert main(["validate-config", str(good)]) == 0
    assert "valid — 1 cameras, 4 centres" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent(BASE).replace("sample", "x").replace("zone: gate, classes", "zone: nope, classes"))
    assert main(["validate-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:24" in err and "nope" in err and "s3cret" not in err


def test_configuration_reference_is_current(repo_root) -> None:  # type: ignore[no-untyped-def]
    """docs/configuration.md is generated from the models; regenerate it when a field changes."""
    from xueliang.config.reference import render

    assert (repo_root / "docs" / "configuration.md").read_text() == render() + "\n", (
        "run: .venv/bin/python -m xueliang.config.reference > docs/configuration.md"
    )


def test_keepalive_must_outpace_track_eviction_for_dwell_rules() -> None:
    loiter = BASE.replace(
        "      - {type: intrusion, name: gate-night, zone: gate, classes: [person]}",
        "      - {type: loitering, name: gate-loiter, zone: gate, dwell_s: 30}",
    )
    assert parse_config(loiter).cameras[0].motion.keepalive_s < 2.0
    slow = loiter.replace("    village: v1\n", "    village: v1\n    motion: {keepalive_s: 5}\n")
    with pytest.raises(ConfigError, match=r"keepalive_s \(5.0 s\) must be below detector.tracker.lost_ttl_s"):
        parse_config(slow)
    # intrusion needs no dwell clock, so a slow keep-alive is fine there
    parse_config(BASE.replace("    village: v1\n", "    village: v1\n    motion: {keepalive_s: 5}\n"))
