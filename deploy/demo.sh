#!/usr/bin/env bash
# The main job end to end on embedded defaults (local Kafka broker, SQLite):
# data → train v1 on the earlier hours → broker up → a running scorer → replay part 1 of the later
# hours with delayed labels → counts before the truth arrives → label sink → counts after →
# retrain from the stream (challengers, gate) → the scorer hot-reloads the promoted model →
# replay part 2 → counts per model version → alerts → how to look.
# Env: CSV=path/to/creditcard.csv (else the tutorial URL if reachable, else a synthetic stand-in),
#      KAFKA_PORT (default 9092), EPOCHS (default 100), SPEEDUP (default: as fast as possible),
#      TRAIN_SHARE (default 0.5: the first half of the rows by Time train v1, the rest replay:
#      five sixths before the retraining round, one sixth after),
#      LABEL_DELAY (default 6h: fraud labels arrive this long after the transaction).
# Each run starts from a fresh demo home (.fraudstream/demo): models, database and broker data.
# DATA=keyed (`make demo DATA=keyed`): the same loop on keyed data, see deploy/demo_keyed.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${DATA:-ulb}" in
  keyed) exec bash deploy/demo_keyed.sh ;;
  ulb) ;;
  *) echo "DATA=${DATA}: make demo takes DATA=ulb (the default, creditcard.csv) or DATA=keyed" >&2
     exit 2 ;;
esac
FS=".venv/bin/fraudstream"
PY=".venv/bin/python"
export FRAUDSTREAM_HOME="${DEMO_HOME:-$PWD/.fraudstream/demo}"
export FRAUDSTREAM_DB_URL="sqlite:///$FRAUDSTREAM_HOME/fraudstream.db"
PORT="${KAFKA_PORT:-9092}"
export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$PORT"
DELAY="${LABEL_DELAY:-6h}"
# The deployment's label window (counts, models compare, retrain, the desk): the label delay.
export FRAUDSTREAM_MATURE_AFTER="$DELAY"
source deploy/demo_lib.sh

fresh_home

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
$FS split --csv "$DATA" --train-share "${TRAIN_SHARE:-0.5}" --out-dir "$FRAUDSTREAM_HOME"
REPLAY="$FRAUDSTREAM_HOME/replay.csv"
REST=$($PY - "$REPLAY" <<'PYEOF'
import sys
with open(sys.argv[1], "rb") as f:
    print(sum(1 for _ in f) - 1)
PYEOF
)

step "train and register (class-weighted model, threshold chosen on validation)"
$FS train --csv "$FRAUDSTREAM_HOME/train.csv" --epochs "${EPOCHS:-100}"

step "local Apache Kafka broker"
SCORER_PID=""
cleanup() {
  if [ -n "$SCORER_PID" ] && kill -0 "$SCORER_PID" 2>/dev/null; then kill -TERM "$SCORER_PID"; wait "$SCORER_PID" || true; fi
  $FS kafka down --data-dir "$FRAUDSTREAM_HOME/kafka" >/dev/null 2>&1 || true
}
trap cleanup EXIT
$FS kafka up --data-dir "$FRAUDSTREAM_HOME/kafka" --port "$PORT"
make_topics

PART1=$((REST * 5 / 6))
step "start the scorer (consumer group fraudstream-scorer); it checks the registry every 2 s for a newly promoted model"
$FS score --topic transactions --reload-check 2 --json \
  > "$FRAUDSTREAM_HOME/scorer.json" 2> "$FRAUDSTREAM_HOME/scorer.log" &
SCORER_PID=$!
echo "scorer pid $SCORER_PID (log: $FRAUDSTREAM_HOME/scorer.log)"

step "replay part 1 (rows 1..$PART1 of replay.csv) onto 'transactions'; each fraud's label follows $DELAY later on 'labels'"
$FS replay --csv "$REPLAY" --limit "$PART1" --topic transactions --partitions 3 \
  --labels "delayed:$DELAY" ${SPEEDUP:+--speedup "$SPEEDUP"}
wait_decided "$PART1" scorer.log "$SCORER_PID"

step "counts BEFORE the truth has arrived (the label sink has not run yet)"
echo "No label yet means genuine once mature: every alert looks like a false positive, every"
echo "missed fraud like a true negative. This is what a dashboard shows if it ignores label delay."
$FS counts --mature-after "$DELAY"

step "the label sink catches up with the delayed truth (chargebacks)"
$FS labels consume --until-idle 5

step "counts AFTER: labelled decisions, plus unlabelled ones older than $DELAY counted as genuine"
$FS counts --mature-after "$DELAY"

step "retrain from what the system saw: events read back from Kafka, labels from the store, split out of time"
echo "Challengers: every model family by default, the Keras net again and gradient-boosted trees"
echo "(XGBoost). The gate compares each with production (v1) on the most recent labelled slice and"
echo "promotes only a clear winner."
$FS retrain --mature-after "$DELAY" --epochs "${EPOCHS:-100}" \
  --val-fraction 0.2 --test-fraction 0.25 --promote auto
$FS models list
promote_if_kept
echo "the running scorer switches to v$PRODUCTION at its next batch boundary (no restart)"

step "replay part 2 (rows $((PART1 + 1))..$REST of replay.csv): scored by v$PRODUCTION"
$FS replay --csv "$REPLAY" --skip "$PART1" --topic transactions \
  --labels "delayed:$DELAY" ${SPEEDUP:+--speedup "$SPEEDUP"}
wait_decided "$REST" scorer.log "$SCORER_PID"
echo "from the scorer's log:"
grep -h "switching from model" "$FRAUDSTREAM_HOME/scorer.log" | sed 's/^/  /' || true
$FS labels consume --until-idle 5
kill -TERM "$SCORER_PID"; wait "$SCORER_PID" || true
SCORER_PID=""
echo "scorer summary: $(tail -1 "$FRAUDSTREAM_HOME/scorer.json")"

step "counts per model version: each version on the events it scored"
$FS counts --mature-after "$DELAY" --by version
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
  export FRAUDSTREAM_MATURE_AFTER=$DELAY   # the label window of every matured figure (desk too)
  .venv/bin/fraudstream counts --by day
  .venv/bin/fraudstream alerts list --order newest --limit 20
  .venv/bin/fraudstream alerts show ${TOP:-TRANSACTION_ID}   # one transaction: alerts, decisions, labels
  .venv/bin/fraudstream alerts list --limit 0 --format csv > alerts.csv
  .venv/bin/fraudstream models show          # production: why it is there (gate or person)
  .venv/bin/fraudstream models promote 1 --by you     # rollback: a running scorer switches back within seconds
  xdg-open $(ls "$FRAUDSTREAM_HOME"/reports/*/index.html | head -1)   # the training report
The fraud-ops desk on this data (a fresh analyst login is printed; Ctrl-C stops it):
  make desk MATURE_AFTER=$DELAY   # then open http://127.0.0.1:8080/
(source .venv/bin/activate to type just 'fraudstream'; every command has --help)
MSG
step "broker down"
if [ -f "$DATA.synthetic.json" ]; then
  echo
  echo "NOTE: every figure above comes from SYNTHETIC data (a \`fraudstream synth\` stand-in for"
  echo "creditcard.csv), and so do the models retrained from the stream (their reports say so):"
  echo "they show how the system works, not how well it catches real fraud."
fi
