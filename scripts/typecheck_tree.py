"""Link the mapped folders under build/typecheck/ the way they are installed, for mypy.

setup.py installs ``ingest/`` as ``xueliang.ingest`` (and so on); an editable install resolves
that with an import hook that static tools cannot follow. This builds the same layout from
symbolic links, ``build/typecheck/xueliang/ingest -> ../../../ingest``, which pyproject.toml's
``[tool.mypy] mypy_path`` points at; ``xueliang/`` itself is found at the repository root (both
halves of the ``xueliang`` namespace package). Idempotent; run by scripts/lint.sh.
"""

from __future__ import annotations

import ast
import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / "build" / "typecheck"


def mapping() -> dict[str, str]:
    """setup.py's ``MAPPED`` (folder -> import name), read without running setup()."""
    for node in ast.parse((ROOT / "setup.py").read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "MAPPED" for t in node.targets):
            value = ast.literal_eval(node.value)
            assert isinstance(value, dict)
            return {str(k): str(v) for k, v in value.items()}
    raise SystemExit("setup.py has no MAPPED")


def main() -> None:
    shutil.rmtree(TREE, ignore_errors=True)
    for folder, name in mapping().items():
        if name == folder:  # found at the root as it is
            continue
        link = TREE.joinpath(*name.split("."))
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(ROOT / folder, link.parent), target_is_directory=True)


if __name__ == "__main__":
    main()
