#!/bin/sh
# The documented benchmark, in pieces so that each finished piece is kept (results_*.json).
# On 2 shared cores spopt's 10,000x1,000 model build alone takes minutes per k.
set -e
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
B=bench/coverage/bench_mclp.py
$PY $B --sizes 50000x5000 --kinds random,clustered --spopt-max-n 0 --out bench/coverage/results_50k.json
$PY $B --sizes 1000x200 --kinds random,clustered --out bench/coverage/results_1k.json
$PY $B --kinds terrain --out bench/coverage/results_terrain.json
$PY $B --sizes 10000x1000 --kinds clustered --out bench/coverage/results_10k_clustered.json
$PY $B --sizes 10000x1000 --kinds random --out bench/coverage/results_10k_random.json
