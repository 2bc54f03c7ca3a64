#!/bin/sh
# The documented benchmark, in pieces so that each finished piece is kept (results_*.json).
# spopt's model build is a Python loop over all n x m pairs: on 2 shared cores it takes minutes
# at 10,000 x 1,000, so spopt runs there for k = 100 first, then the other k while time allows.
set -e
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
B=bench/coverage/bench_mclp.py
$PY $B --kinds terrain --ks 100 --out bench/coverage/results_terrain_k100.json
$PY $B --sizes 10000x1000 --kinds clustered --ks 100 --out bench/coverage/results_10k_clustered_k100.json
$PY $B --sizes 10000x1000 --kinds random --ks 100 --out bench/coverage/results_10k_random_k100.json
$PY $B --kinds terrain --ks 20,300 --out bench/coverage/results_terrain_k20_300.json
$PY $B --sizes 10000x1000 --kinds clustered --ks 20,300 --out bench/coverage/results_10k_clustered_k20_300.json
$PY $B --sizes 10000x1000 --kinds random --ks 20,300 --out bench/coverage/results_10k_random_k20_300.json
