#!/bin/sh
# The documented benchmark (docs/coverage.md), in pieces so that each finished piece is kept
# (bench/coverage/results_*.json); merge them with bench/coverage/table.py.
# spopt's model build is a Python loop over all n x m pairs: on 2 shared cores it takes minutes
# per k at 10,000 x 1,000, and an estimated hour or more (and > 3 GB) at 50,000 x 5,000, where
# only ours is run.
set -e
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
B=bench/coverage/bench_mclp.py
OUT=${OUT:-bench/coverage}
mkdir -p "$OUT"
$PY $B --sizes 1000x200 --kinds random,clustered --out $OUT/results_1k.json
for kind in terrain clustered random; do
  sizes="--sizes 10000x1000"
  $PY $B $sizes --kinds $kind --ks 100 --out $OUT/results_10k_${kind}_k100.json
  $PY $B $sizes --kinds $kind --ks 20,300 --out $OUT/results_10k_${kind}_k20_300.json
done
$PY $B --sizes 50000x5000 --kinds random,clustered --spopt-max-n 50000 --out $OUT/results_50k.json
$PY $B --sizes 10000x1000 --kinds clustered,random,terrain --spopt-max-n 0 --ours-limit 2 --out $OUT/results_10k_ours_2s.json
$PY bench/coverage/county.py --out $OUT/results_county.json   # county scale: 442,510 x 146,000, k = 500
$PY bench/coverage/table.py $OUT/results_*.json
