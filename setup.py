"""Package discovery for the one `xueliang` import namespace.

The repository keeps its designed top-level folders (ingest/, detector/, ...),
and each is installed as a sub-package of `xueliang` (``ingest/`` becomes
``xueliang.ingest``). The folders carry no ``__init__.py`` at their top, so with
the repository root on ``sys.path`` (``python -c`` run from a checkout) a
top-level ``import coverage`` still finds coverage.py: a directory without
``__init__.py`` never wins over a regular package. Everything else lives in
pyproject.toml.
"""

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).parent
# folder at the repository root -> import name
MAPPED = {
    "xueliang": "xueliang",
    "ingest": "xueliang.ingest",
    "detector": "xueliang.detector",
    "dispatch": "xueliang.dispatch",
    "api": "xueliang.api",
    "coverage": "xueliang.coverage",
    "scenes": "xueliang.scenes",
}
DATA_SUFFIXES = {
    ".yaml",
    ".yml",
    ".json",
    ".html",
    ".js",
    ".css",
    ".svg",
    ".png",
    ".onnx",
    ".pt",
    ".md",
    ".ini",
    ".mako",
    ".wav",
}


def discover() -> tuple[list[str], dict[str, str], dict[str, list[str]]]:
    packages: list[str] = []
    package_dir: dict[str, str] = {}
    package_data: dict[str, list[str]] = {}
    for folder, name in MAPPED.items():
        base = ROOT / folder
        for directory in sorted([base, *[p for p in base.rglob("*") if p.is_dir()]]):
            if "__pycache__" in directory.parts:
                continue
            rel = directory.relative_to(base)
            files = [p for p in directory.iterdir() if p.is_file()]
            if not any(p.suffix == ".py" for p in files) and rel != Path("."):
                continue
            pkg = ".".join([name, *rel.parts]) if rel.parts else name
            packages.append(pkg)
            package_dir[pkg] = str(directory.relative_to(ROOT))
            data = [p.name for p in files if p.suffix in DATA_SUFFIXES]
            # data in plain sub-folders (static assets, scenario files, weights)
            for sub in directory.iterdir():
                if sub.is_dir() and not any(q.suffix == ".py" for q in sub.iterdir() if q.is_file()):
                    data += [
                        str(q.relative_to(directory))
                        for q in sub.rglob("*")
                        if q.is_file() and q.suffix in DATA_SUFFIXES
                    ]
            if data:
                package_data[pkg] = data
    return packages, package_dir, package_data


PACKAGES, PACKAGE_DIR, PACKAGE_DATA = discover()
setup(packages=PACKAGES, package_dir=PACKAGE_DIR, package_data=PACKAGE_DATA, include_package_data=False)
