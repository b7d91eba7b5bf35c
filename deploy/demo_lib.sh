# Sourced by deploy/demo.sh and deploy/demo_keyed.sh (they set FS, PY, FRAUDSTREAM_HOME and
# FRAUDSTREAM_DB_URL first): step headers, a fresh demo home, waiting for the scorers, and the
# promotion a person makes when the gate keeps v1.
step() { printf '\n== %s\n' "$*"; }

fresh_home() {
  step "fresh demo home $FRAUDSTREAM_HOME"
  $FS kafka down --data-dir "$FRAUDSTREAM_HOME/kafka" >/dev/null 2>&1 || true
  rm -rf "$FRAUDSTREAM_HOME"
  mkdir -p "$FRAUDSTREAM_HOME"
}

# make_topics: the topics exist before any consumer subscribes, as an operator would create them. A
# member that joins before its topic exists is rebalanced when the topic appears; in that
# rebalance a kafka-python 3.0.12 scorer was once seen to spin without a group coordinator for
# good (0 decisions after 10 minutes, no heartbeat).
make_topics() {
  $PY -c "import os; from producer.topics import ensure_topics; ensure_topics(os.environ['KAFKA_BOOTSTRAP_SERVERS'], {'transactions': 3, 'labels': 3})"
}

# wait_decided N LOG PID...: waits until the scorers PID... have decided N distinct transactions
# (or fails, naming LOG, if one of them died).
wait_decided() {
  $PY - "$@" <<'PYEOF'
import os, sys, time
from sqlalchemy import create_engine, text
want, log, pids = int(sys.argv[1]), sys.argv[2], [int(p) for p in sys.argv[3:]]
who = "scorer" if len(pids) == 1 else "scorers"
engine = create_engine(os.environ["FRAUDSTREAM_DB_URL"])
deadline = time.monotonic() + 3600
while True:
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(DISTINCT transaction_id) FROM decisions")).scalar()
    if n >= want:
        break
    for pid in pids:
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit(f"the scorer exited after deciding {n:,} of {want:,} transactions: see {log}")
    if time.monotonic() > deadline:
        sys.exit(f"the {who} decided only {n:,} of {want:,} transactions in an hour")
    time.sleep(2)
print(f"the {who} {'has' if len(pids) == 1 else 'have'} decided {n:,} transactions")
PYEOF
}

# promote_if_kept: sets PRODUCTION to the production version after a retraining round; when the
# gate kept v1, a person promotes the newest candidate (recorded as person:demo).
promote_if_kept() {
  PRODUCTION=$($PY -c "
from store.db import connect
from store import registry
print(registry.get(connect(create=False), 'production').version)")
  if [ "$PRODUCTION" = 1 ]; then
    BEST=$($PY -c "
from store.db import connect
from store import registry
print(max(r.version for r in registry.list_versions(connect(create=False)) if r.stage == 'candidate'))")
    echo
    echo "The gate kept v1 (its reasons are above). To show the rest of the lifecycle anyway, a person"
    echo "promotes v$BEST — recorded as person:demo, beside the gate's verdict:"
    $FS models promote "$BEST" --by demo
    PRODUCTION=$BEST
  fi
}
