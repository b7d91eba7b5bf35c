#!/usr/bin/env bash
# The main job end to end on embedded defaults (local Kafka broker, SQLite):
# data → train on the earlier hours → broker up → replay the later hours with delayed labels →
# score → counts before the truth arrives → label sink → counts after → alerts → how to look.
# Env: CSV=path/to/creditcard.csv (else the tutorial URL if reachable, else a synthetic stand-in),
#      KAFKA_PORT (default 9092), EPOCHS (default 100), SPEEDUP (default: as fast as possible),
#      TRAIN_SHARE (default 0.6: the first 60 % of rows by Time train the model, the rest replay),
#      LABEL_DELAY (default 6h: fraud labels arrive this long after the transaction).
# Each run starts from a fresh demo home (.fraudstream/demo): models, database and broker data.
set -euo pipefail
cd "$(dirname "$0")/.."
FS=".venv/bin/fraudstream"
PY=".venv/bin/python"
export FRAUDSTREAM_HOME="${DEMO_HOME:-$PWD/.fraudstream/demo}"
export FRAUDSTREAM_DB_URL="sqlite:///$FRAUDSTREAM_HOME/fraudstream.db"
PORT="${KAFKA_PORT:-9092}"
export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$PORT"
DELAY="${LABEL_DELAY:-6h}"
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

step "split by time: train on the earlier rows, replay the later ones (never grade on training data)"
ROWS=$($PY - "$DATA" <<'PYEOF'
import sys
with open(sys.argv[1], "rb") as f:
    print(sum(1 for _ in f) - 1)
PYEOF
)
TRAIN_ROWS=$($PY -c "print(int($ROWS * float('${TRAIN_SHARE:-0.6}')))")
head -n "$((TRAIN_ROWS + 1))" "$DATA" > "$FRAUDSTREAM_HOME/train.csv"
if [ -f "$DATA.synthetic.json" ]; then cp "$DATA.synthetic.json" "$FRAUDSTREAM_HOME/train.csv.synthetic.json"; fi
echo "$ROWS rows (sorted by Time): the first $TRAIN_ROWS train the model; rows $((TRAIN_ROWS + 1))..$ROWS are replayed"

step "train and register (class-weighted model, threshold chosen on validation)"
$FS train --csv "$FRAUDSTREAM_HOME/train.csv" --epochs "${EPOCHS:-100}"

step "local Apache Kafka broker"
trap '$FS kafka down --data-dir "$FRAUDSTREAM_HOME/kafka" >/dev/null 2>&1 || true' EXIT
$FS kafka up --data-dir "$FRAUDSTREAM_HOME/kafka" --port "$PORT"

step "replay the later rows onto 'transactions'; each fraud's label follows $DELAY later on 'labels'"
$FS replay --csv "$DATA" --skip "$TRAIN_ROWS" --topic transactions --partitions 3 \
  --labels "delayed:$DELAY" ${SPEEDUP:+--speedup "$SPEEDUP"}

step "score until idle (10 s without events)"
$FS score --topic transactions --until-idle 10

step "counts BEFORE the truth has arrived (the label sink has not run yet)"
echo "No label yet means genuine once mature: every alert looks like a false positive, every"
echo "missed fraud like a true negative. This is what a dashboard shows if it ignores label delay."
$FS counts --mature-after "$DELAY"

step "the label sink catches up with the delayed truth (chargebacks)"
$FS labels consume --until-idle 5

step "counts AFTER: labelled decisions, plus unlabelled ones older than $DELAY counted as genuine"
$FS counts --mature-after "$DELAY"
step "the same by event-time day (cohorts: the newest day is still maturing)"
$FS counts --mature-after "$DELAY" --by day
step "top alerts, with each transaction's current label"
$FS alerts list --limit 10
step "report"
ls "$FRAUDSTREAM_HOME"/reports/*/index.html

step "look at the results yourself"
TOP=$($FS alerts list --limit 1 --format csv 2>/dev/null | sed -n 2p | cut -d, -f1 || true)
cat <<MSG
The broker stops now; the database, models and report stay in $FRAUDSTREAM_HOME.
  export FRAUDSTREAM_HOME=$FRAUDSTREAM_HOME
  export FRAUDSTREAM_DB_URL=$FRAUDSTREAM_DB_URL
  .venv/bin/fraudstream counts --mature-after $DELAY --by day
  .venv/bin/fraudstream alerts list --order newest --limit 20
  .venv/bin/fraudstream alerts show ${TOP:-TRANSACTION_ID}   # one transaction: alerts, decisions, labels
  .venv/bin/fraudstream alerts list --limit 0 --format csv > alerts.csv
  .venv/bin/fraudstream models show
  xdg-open $(ls "$FRAUDSTREAM_HOME"/reports/*/index.html | head -1)   # the training report
(source .venv/bin/activate to type just 'fraudstream'; every command has --help)
MSG
step "broker down"
