"""Where the training pipeline reads and writes, and the offline environment ultralytics runs in."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ROOT / "datasets"
RUNS = ROOT / "runs"
MODELS = ROOT / "detector" / "models"
CONFIG_DIR = RUNS / "yolo-config"


def offline_env() -> None:
    """Ultralytics must never reach the network: offline mode and a local font."""
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_CONFIG_DIR"] = str(CONFIG_DIR)
    CONFIG_DIR.mkdir(parents=True, exist_ok=True)
    font = CONFIG_DIR / "Arial.ttf"
    if not font.exists():
        candidates = [Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")]
        try:
            import matplotlib

            candidates.append(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")
        except ImportError:
            pass
        src = next((c for c in candidates if c.exists()), None)
        if src is None:
            raise SystemExit("no TTF font found to stand in for Arial.ttf (install fonts-dejavu-core)")
        shutil.copy(src, font)
        shutil.copy(src, CONFIG_DIR / "Arial.Unicode.ttf")
