#!/usr/bin/env bash
# Set up a fresh machine for Xueliang. Idempotent; seconds when nothing changed.
#   scripts/setup.sh demo   virtualenv + the lean runtime (no torch): what `xueliang demo` needs
#   scripts/setup.sh test   + Debian packages and every extra the test suite exercises
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
MODE=${1:-demo}
PYTHON=${PYTHON:-python3}

if [ "$MODE" = test ]; then
  # real parts the tests run against: footage, RTSP, Prometheus, PostgreSQL, Chromium, GDAL, GStreamer,
  # openssl (the CA and broker certificate of the authenticated Kafka: deploy/kafka/kafka.sh XL_KAFKA_SECURE=1)
  APT_PACKAGES=(opencv-doc ffmpeg prometheus postgresql chromium gdal-bin
                gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
                gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
                gir1.2-gst-rtsp-server-1.0 python3-gi fonts-wqy-microhei openssl)
  missing=()
  for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  EXTRAS="onnx,openvino,detect,coverage,postgres,ingest,test"
else
  EXTRAS="onnx"
  # the demo's second camera plays real CCTV footage: Debian opencv-doc's vtest.avi
  if ! dpkg -s opencv-doc >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "setup: installing Debian package opencv-doc (real footage for the demo's second camera)"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends opencv-doc >/dev/null
    else
      echo "setup: opencv-doc is not installed (needs root: apt-get install opencv-doc); the demo runs without its real-footage camera"
    fi
  fi
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
STAMP=.venv/.xueliang-setup-$MODE
WANT=$(cat pyproject.toml setup.py scripts/setup.sh | sha256sum | cut -c1-16)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[$EXTRAS]"
  # ultralytics pulls the GUI build of OpenCV, which overwrites the headless one: put headless back
  if .venv/bin/python -m pip show -q opencv-python >/dev/null 2>&1; then
    .venv/bin/python -m pip uninstall -q -y opencv-python
    .venv/bin/python -m pip install -q --force-reinstall --no-deps "$(.venv/bin/python -m pip freeze | grep -i '^opencv-python-headless==' || echo opencv-python-headless)"
  fi
  echo "$WANT" > "$STAMP"
fi
echo "setup ($MODE): ready — $(.venv/bin/python -c 'import xueliang.about as a; print("xueliang", a.__version__)')"
