#!/usr/bin/env bash
# `make demo DATA=keyed`: the loop on keyed data (cards, terminals, behaviour features), end to
# end on embedded defaults (local Kafka broker, SQLite):
# simulate (the handbook's simulator, small) → split by time → train v1 (behaviour features,
# the handbook's protocol) → broker up → two scorers (one consumer group: per-card state moves
# with the partitions) and the label sink → replay part 1 with labels delayed 7 days → retrain
# FROM THE STREAM (keyed events read back, labels and their observation times from the store;
# both model families; the gate) → promotion → the scorers hot-reload → replay part 2 → ROC
# AUC, average precision and card precision top-100 of what each model scored.
# Env: CSV=path/to/keyed.csv (a keyed CSV: TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID,
#      TERMINAL_ID, TX_AMOUNT, TX_FRAUD; else a SYNTHETIC simulation of CUSTOMERS (default 400)
#      cards, TERMINALS (800) terminals over DAYS (70) days), KAFKA_PORT (default 9092),
#      EPOCHS (default 10, the dense family), TRAIN_SHARE (default 0.3: the first 30 % of the
#      rows by time train v1, the rest replay: five sixths before the retraining round, one
#      sixth after), SPEEDUP (default: as fast as possible).
# The label delay is the behaviour features' feedback delay D: 7 days (the handbook's).
# Each run starts from a fresh demo home (.fraudstream/demo-keyed).
set -euo pipefail
cd "$(dirname "$0")/.."
FS=".venv/bin/fraudstream"
PY=".venv/bin/python"
export FRAUDSTREAM_HOME="${DEMO_HOME:-$PWD/.fraudstream/demo-keyed}"
export FRAUDSTREAM_DB_URL="sqlite:///$FRAUDSTREAM_HOME/fraudstream.db"
PORT="${KAFKA_PORT:-9092}"
export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$PORT"
DELAY=7d
export FRAUDSTREAM_MATURE_AFTER="$DELAY"
source deploy/demo_lib.sh

fresh_home

step "data"
if [ -n "${CSV:-}" ]; then
  DATA="$CSV"; echo "using CSV=$CSV"
else
  DATA="$FRAUDSTREAM_HOME/keyed.csv"
  echo "simulating SYNTHETIC keyed transactions (the handbook's simulator; small populations have"
  echo "a much higher fraud share than its default 0.86 %: the scenarios compromise a fixed number"
  echo "of terminals and cards a day)"
  $FS synth --kind keyed --customers "${CUSTOMERS:-400}" --terminals "${TERMINALS:-800}" \
    --days "${DAYS:-70}" --seed 1 --out "$DATA"
fi

step "split by time: train on the earlier rows, replay the later ones (never grade on training data)"
$FS split --csv "$DATA" --train-share "${TRAIN_SHARE:-0.3}" --out-dir "$FRAUDSTREAM_HOME"
REPLAY="$FRAUDSTREAM_HOME/replay.csv"
REST=$(($(wc -l < "$REPLAY") - 1))

step "train v1 on keyed data: behaviour features, the handbook's protocol (train / delay / test weeks)"
$FS train --csv "$FRAUDSTREAM_HOME/train.csv" --family xgboost

step "local Apache Kafka broker"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
  done
  $FS kafka down --data-dir "$FRAUDSTREAM_HOME/kafka" >/dev/null 2>&1 || true
}
trap cleanup EXIT
$FS kafka up --data-dir "$FRAUDSTREAM_HOME/kafka" --port "$PORT"
make_topics

# Waits until the label sink has stored every label sent so far (no new one for 3 s).
wait_labels() {
  $PY - <<'PYEOF'
import os, time
from sqlalchemy import create_engine, text
engine = create_engine(os.environ["FRAUDSTREAM_DB_URL"])
last, still = -1, 0
while still < 3:
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM labels")).scalar()
    still = still + 1 if n == last else 0
    last = n
    time.sleep(1)
print(f"the label sink has stored {n:,} labels")
PYEOF
}

PART1=$((REST * 5 / 6))
step "two scorers (consumer group fraudstream-scorer; each owns some partitions and their cards' state) and the label sink"
for i in 1 2; do
  $FS score --topic transactions --reload-check 2 --label-sink fraudstream-labels --json \
    > "$FRAUDSTREAM_HOME/scorer-$i.json" 2> "$FRAUDSTREAM_HOME/scorer-$i.log" &
  PIDS+=($!)
done
$FS labels consume > "$FRAUDSTREAM_HOME/labels.json" 2> "$FRAUDSTREAM_HOME/labels.log" &
PIDS+=($!)
echo "scorer pids ${PIDS[0]} ${PIDS[1]}, label sink pid ${PIDS[2]} (logs in $FRAUDSTREAM_HOME);"
echo "with --label-sink the scorers score an event only once the label sink has stored every label"
echo "observed by its time, so the terminal windows see the frauds known then, as offline."

step "replay part 1 (rows 1..$PART1 of replay.csv), keyed by card; each fraud's label follows $DELAY later"
echo "The scorers start with empty card and terminal windows at the replay's first event, as a new"
echo "deployment would: the first 30 days' windows are short of the history v1 was trained with."
$FS replay --csv "$REPLAY" --limit "$PART1" --topic transactions \
  --labels "delayed:$DELAY" ${SPEEDUP:+--speedup "$SPEEDUP"}
wait_decided "$PART1" "scorer-*.log" "${PIDS[@]:0:2}"

step "retrain FROM THE STREAM: keyed events read back from Kafka, labels from the store"
echo "Each fraud counts as known from its label's observation time (what the scorers saw), the"
echo "behaviour features come from the one implementation the scorers use; events younger than"
echo "$DELAY are left out (their labels may still come). Both families; the gate compares each with"
echo "production on the protocol's test week and promotes only a clear winner."
wait_labels
$FS retrain --mature-after "$DELAY" --epochs "${EPOCHS:-10}" --promote auto
$FS models list
promote_if_kept
echo "both scorers switch to v$PRODUCTION at their next batch boundary (no restart)"

step "replay part 2 (rows $((PART1 + 1))..$REST of replay.csv): scored by v$PRODUCTION"
$FS replay --csv "$REPLAY" --skip "$PART1" --topic transactions \
  --labels "delayed:$DELAY" ${SPEEDUP:+--speedup "$SPEEDUP"}
wait_decided "$REST" "scorer-*.log" "${PIDS[@]:0:2}"
echo "from the scorers' logs:"
grep -h "switching from model" "$FRAUDSTREAM_HOME"/scorer-*.log | sed 's/^/  /' || true
wait_labels
for pid in "${PIDS[@]}"; do kill -TERM "$pid"; wait "$pid" || true; done
PIDS=()
for i in 1 2; do echo "scorer $i summary: $(tail -1 "$FRAUDSTREAM_HOME/scorer-$i.json")"; done

step "what each model scored: ROC AUC, average precision, card precision top-100"
echo "The replay has delivered every label (those due after its last event too) and the label sink"
echo "has stored them: every decision's truth is known, so all of them count (--mature-after 0s)."
echo "Card precision top-100: each day, the share of compromised cards among the 100 cards scored"
echo "highest (a card's score: its highest that day), averaged over the days each model scored."
$FS counts --mature-after 0s --ranking
step "counts per model version"
$FS counts --mature-after "$DELAY" --by version
step "top alerts, with each transaction's current label"
$FS alerts list --limit 10
step "reports"
ls "$FRAUDSTREAM_HOME"/reports/*/index.html

step "look at the results yourself"
cat <<MSG
The broker stops now; the database, models and reports stay in $FRAUDSTREAM_HOME.
  export FRAUDSTREAM_HOME=$FRAUDSTREAM_HOME
  export FRAUDSTREAM_DB_URL=$FRAUDSTREAM_DB_URL
  export FRAUDSTREAM_MATURE_AFTER=$DELAY
  .venv/bin/fraudstream counts --ranking            # the three figures per model
  .venv/bin/fraudstream alerts list --order newest --limit 20
  .venv/bin/fraudstream models show      # production: keyed, its behaviour spec and protocol
(source .venv/bin/activate to type just 'fraudstream'; every command has --help)
MSG
step "broker down"
if [ -f "$DATA.synthetic.json" ]; then
  echo
  echo "NOTE: every figure above comes from SYNTHETIC data (\`fraudstream synth --kind keyed\`, the"
  echo "handbook's simulator), and so do the models retrained from the stream (their reports say"
  echo "so): they show how the system works, not how well it catches real fraud."
fi
