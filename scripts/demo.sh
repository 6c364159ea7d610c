#!/usr/bin/env bash
# The whole pipeline on built-in synthetic data (make demo). Each step is a plain CLI call.
set -euo pipefail
NOETIK=${NOETIK:-.venv/bin/noetik}
OUT=${OUT:-demo_out}
rm -rf "$OUT"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. Synthesize a small KuaiRand-Pure dataset (official names and schema)"
$NOETIK data synth "$OUT/data" --release pure --users 300 --videos 1000 --seed 0

step "2. Validate and cache it as typed Parquet"
$NOETIK data prepare "$OUT/data" --cache "$OUT/cache"

step "3. Describe it"
$NOETIK data info "$OUT/data" --cache "$OUT/cache"

step "4. A few episodes (sessions) as offline-RL transitions"
$NOETIK data episodes "$OUT/data" --cache "$OUT/cache" --n 2

step "5. Fit the KuaiRand user simulator (debiased with the random-exposure log)"
$NOETIK sim fit "$OUT/data" --cache "$OUT/cache" --out "$OUT/sim" --holdout-log "$OUT/heldout_random.csv"

step "6. Validate it on the random exposures of held-out users"
$NOETIK sim validate "$OUT/sim" --log "$OUT/heldout_random.csv"

printf '\nDemo finished: outputs in %s/\n' "$OUT"
