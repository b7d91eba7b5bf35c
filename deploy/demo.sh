#!/usr/bin/env bash
# The main job end to end on embedded defaults (local Kafka broker, SQLite):
# data → train + register → broker up → replay → score until idle → counts, alerts, report → broker down.
# Env: CSV=path/to/creditcard.csv (else the tutorial URL if reachable, else a synthetic stand-in),
#      KAFKA_PORT (default 9092), EPOCHS (default 100), SPEEDUP (default: as fast as possible).
# Each run starts from a fresh demo home (.fraudstream/demo): models, database and broker data.
set -euo pipefail
cd "$(dirname "$0")/.."
FS=".venv/bin/fraudstream"
export FRAUDSTREAM_HOME="${DEMO_HOME:-$PWD/.fraudstream/demo}"
export FRAUDSTREAM_DB_URL="sqlite:///$FRAUDSTREAM_HOME/fraudstream.db"
PORT="${KAFKA_PORT:-9092}"
export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$PORT"
step() { printf '\n== %s\n' "$*"; }

step "fresh demo home $FRAUDSTREAM_HOME"
$FS kafka down --data-dir "$FRAUDSTREAM_HOME/kafka" >/dev/null 2>&1 || true
rm -rf "$FRAUDSTREAM_HOME"
mkdir -p "$FRAUDSTREAM_HOME"

step "data"
TUTORIAL_URL="https://storage.googleapis.com/download.tensorflow.org/data/creditcard.csv"
if [ -n "${CSV:-}" ]; then
  DATA="$CSV"; echo "using CSV=$CSV"
elif curl -fsS --max-time 120 -o "$FRAUDSTREAM_HOME/creditcard.csv" "$TUTORIAL_URL" 2>/dev/null; then
  DATA="$FRAUDSTREAM_HOME/creditcard.csv"; echo "downloaded the real dataset from the tutorial URL"
else
  DATA="$FRAUDSTREAM_HOME/creditcard.csv"
  echo "the tutorial URL is unreachable: generating a SYNTHETIC 284,807-row stand-in"
  $FS synth --rows 284807 --seed 1 --out "$DATA"
fi

step "train and register (class-weighted model, threshold chosen on validation)"
$FS train --csv "$DATA" --epochs "${EPOCHS:-100}"

step "local Apache Kafka broker"
trap '$FS kafka down --data-dir "$FRAUDSTREAM_HOME/kafka" >/dev/null 2>&1 || true' EXIT
$FS kafka up --data-dir "$FRAUDSTREAM_HOME/kafka" --port "$PORT"

step "replay the CSV onto topic 'transactions'"
$FS replay --csv "$DATA" --topic transactions --partitions 3 ${SPEEDUP:+--speedup "$SPEEDUP"}

step "score until idle (10 s without events)"
$FS score --topic transactions --until-idle 10

step "running confusion counts"
$FS counts
step "top alerts"
$FS alerts list --limit 10
step "report"
$FS models show production --json | .venv/bin/python -c \
  'import json,sys; m=json.load(sys.stdin); print("model", m["version"], "threshold", round(m["threshold"], 4))'
ls "$FRAUDSTREAM_HOME"/reports/*/index.html
step "broker down"
