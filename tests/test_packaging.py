"""The project installs under one `xueliang` namespace and never shadows coverage.py."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DESIGNED = ["ingest", "detector", "coverage", "api", "dispatch", "scenes"]


@pytest.mark.parametrize("cwd", [REPO, REPO / "tests", Path("/")], ids=["repo-root", "tests", "filesystem-root"])
def test_import_coverage_is_coverage_py(cwd: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import coverage; print(coverage.__file__); print(coverage.Coverage)"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert "site-packages" in out[0] and out[0].endswith("coverage/__init__.py"), out
    assert not out[0].startswith(str(REPO / "coverage")), out


def test_designed_folders_import_under_namespace() -> None:
    code = "; ".join(f"import xueliang.{name}" for name in DESIGNED) + "; import xueliang.config, xueliang.contracts"
    subprocess.run([sys.executable, "-c", code], cwd="/", check=True)


def test_top_level_folders_have_no_init() -> None:
    """A folder without __init__.py can never win over a regular package of the same name."""
    for name in [*DESIGNED, "xueliang"]:
        assert not (REPO / name / "__init__.py").exists(), name


@pytest.mark.slow
def test_wheel_installs_only_the_xueliang_namespace(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("xueliang-*.whl"))
    tops = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist()}
    assert tops == {"xueliang", wheel.name.split("-py3")[0] + ".dist-info"}, tops
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in DESIGNED:
        assert any(n.startswith(f"xueliang/{name}/") for n in names), name
