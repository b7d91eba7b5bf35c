#!/usr/bin/env bash
# `make simulate`: the replay simulation of docker-compose.yml, end to end, on this machine.
#   1. a Docker engine (deploy/docker-for-tests.sh: installed and started when missing);
#   2. images: the official ones when IMAGES=official (needs a registry), else local stand-ins
#      built or reused by deploy/images/build.sh (Debian packages, Maven Central, PyPI only);
#   3. docker compose build + up: Kafka, PostgreSQL, trainer (one-shot), producer (one-shot
#      replay), 2 scorers, the label sink, the fraud-ops desk, Prometheus (Grafana too with
#      IMAGES=official; the retrainer with PROFILES=retrain);
#   4. waits for the producer to finish and the scorers and the label sink to commit all it sent;
#   5. prints the counts, the top alerts and where to look; then `docker compose down -v`
#      (KEEP=1 leaves the stack running and prints how to stop it).
# Knobs (environment): SYNTH_ROWS (default 50000), EPOCHS (default 5), SPEEDUP, LABELS, CSV,
# PROMETHEUS_PORT, GRAFANA_PORT, DESK_PORT, POSTGRES_PASSWORD (default: a random one), KEEP,
# IMAGES, PROFILES (e.g. retrain: also the retrainer, a gated round every RETRAIN_EVERY).
# DATA=keyed: keyed transactions instead (CSV default /data/keyed.csv, else a SYNTHETIC
# simulation of SYNTH_CUSTOMERS/SYNTH_TERMINALS/SYNTH_DAYS, default 400/800/70): the trainer
# trains FAMILY (default xgboost) with behaviour features, labels are delayed 7 days (the
# features' feedback delay), the scorers keep per-card state, and the retrainer retrains from
# the keyed stream over RETRAIN_DAYS (default 60: the protocol needs 3 weeks of mature events).
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n== %s\n' "$*"; }

export SYNTH_ROWS="${SYNTH_ROWS:-50000}" EPOCHS="${EPOCHS:-5}" DATA="${DATA:-ulb}"
case "$DATA" in
  ulb) ;;
  keyed)
    export CSV="${CSV:-/data/keyed.csv}" LABELS="${LABELS:-delayed:7d}" FAMILY="${FAMILY:-xgboost}" \
      MATURE_AFTER="${MATURE_AFTER:-7d}" TRAIN_SHARE="${TRAIN_SHARE:-0.3}" \
      RETRAIN_DAYS="${RETRAIN_DAYS:-60}" ;;
  *) echo "DATA=$DATA: make simulate takes DATA=ulb (the default) or DATA=keyed" >&2; exit 2 ;;
esac
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-fraudstream-sim}"
export POSTGRES_PASSWORD="${POSTGRES_PASSWORD:-$(tr -dc 'a-zA-Z0-9' < /dev/urandom | head -c 24)}"
export COMPOSE_BAKE=false DOCKER_BUILDKIT=0  # the classic builder: no BuildKit here

step "Docker engine"
bash deploy/docker-for-tests.sh start
DC=(docker compose)  # the script above installs the plugin when missing
DC+=(-f docker-compose.yml)
for profile in ${PROFILES:-}; do DC+=(--profile "$profile"); done

UP=(up -d)
if [ "${IMAGES:-local}" = official ]; then
  step "images: the official ones (pulled from the registry)"
else
  step "images: local stand-ins (deploy/images/build.sh; reused when unchanged)"
  start=$SECONDS
  env_lines=$(bash deploy/images/build.sh all)
  echo "$env_lines"
  set -a
  eval "$env_lines"
  set +a
  echo "images ready in $((SECONDS - start)) s"
  # No Grafana image can be built from Debian packages: the local simulation runs without it
  # (and must not try to pull it).
  UP+=(--scale grafana=0 --pull never)
fi
"${DC[@]}" build

cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then
    echo "stop it: COMPOSE_PROJECT_NAME=$COMPOSE_PROJECT_NAME POSTGRES_PASSWORD=$POSTGRES_PASSWORD ${DC[*]} down -v"
  else
    step "down"
    "${DC[@]}" down -v --remove-orphans
  fi
}
trap cleanup EXIT

step "up: kafka, postgres, trainer, producer, scorer x2, labels, desk, prometheus${PROFILES:+ (profiles: $PROFILES)}"
"${DC[@]}" "${UP[@]}"

sql() {  # one number from the simulation's database
  "${DC[@]}" exec -T postgres psql -qtA -U "${POSTGRES_USER:-fraudstream}" \
    -d "${POSTGRES_DB:-fraudstream}" -c "$1" 2>/dev/null | tr -d '[:space:]'
}
state() { docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$("${DC[@]}" ps -aq "$1")"; }

# Done when the consumers' offsets committed in the store reach what the producer sent: the
# events on `transactions` for the scorers' group and the label events on `labels` for the label
# sink (decisions alone going quiet is not enough: delayed labels arrive after the last event).
committed() {
  sql "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE group_id = '$1' AND topic = '$2'"
}
sent() {  # what the producer's summary says it sent: "sent N events to ..." / "sent N label events"
  "${DC[@]}" logs --no-log-prefix producer 2>/dev/null | sed -n "s/^sent \([0-9]*\) $1 to .*/\1/p" | tail -n 1
}

step "waiting for the trainer, the replay and the consumers"
last="" stable=0
while :; do
  read -r tstatus tcode < <(state trainer)
  if [ "$tstatus" = exited ] && [ "$tcode" != 0 ]; then
    "${DC[@]}" logs trainer | tail -n 30
    echo "the trainer failed (exit $tcode)" >&2
    exit 1
  fi
  pstatus=none
  if [ -n "$("${DC[@]}" ps -aq producer)" ]; then read -r pstatus pcode < <(state producer); fi
  if [ "$pstatus" = exited ] && [ "$pcode" != 0 ]; then
    "${DC[@]}" logs producer | tail -n 30
    echo "the producer failed (exit $pcode)" >&2
    exit 1
  fi
  decided=$(sql "SELECT count(*) FROM decisions" || true)
  labelled=$(sql "SELECT count(*) FROM labels" || true)
  echo "  trainer: $tstatus  producer: $pstatus  decisions: ${decided:-0}  labels: ${labelled:-0}"
  now="$decided/$labelled"
  if [ "$pstatus" = exited ]; then
    events=$(sent events) labels_sent=$(sent "label events")
    scored=$(committed fraudstream-scorer transactions || true)
    sunk=$(committed fraudstream-labels labels || true)
    if [ "${scored:-0}" -ge "${events:-0}" ] && [ "${sunk:-0}" -ge "${labels_sent:-0}" ]; then
      echo "  drained: ${scored:-0} of ${events:-0} events and ${sunk:-0} of ${labels_sent:-0} label events committed"
      break
    fi
    if [ "$now" = "$last" ]; then
      stable=$((stable + 1))
      if [ "$stable" -ge 24 ]; then  # two minutes without progress: say what is left, go on
        echo "  not drained after 2 min without progress: ${scored:-0} of ${events:-0} events," \
          "${sunk:-0} of ${labels_sent:-0} label events committed" >&2
        break
      fi
    else
      stable=0
    fi
  fi
  last=$now
  sleep 5
done

step "which rows trained the model, which were replayed (split by time: never graded on training rows)"
"${DC[@]}" logs --no-log-prefix trainer | grep -A2 '^split ' || true
step "producer"
"${DC[@]}" logs --no-log-prefix producer | tail -n 5
step "counts (per model version; labels that arrived through the label sink)"
labels="${LABELS:-delayed:6h}"
if [ "${labels#delayed:}" != "$labels" ]; then
  # unlabelled decisions older than the label delay count as genuine, younger ones as pending
  "${DC[@]}" exec -T scorer fraudstream counts --mature-after "${labels#delayed:}"
else
  "${DC[@]}" exec -T scorer fraudstream counts
fi
if [ "$DATA" = keyed ]; then
  step "what each model scored: ROC AUC, average precision, card precision top-100"
  "${DC[@]}" exec -T scorer fraudstream counts --ranking --mature-after "${labels#delayed:}"
fi
step "top alerts"
"${DC[@]}" exec -T scorer fraudstream alerts list --limit 10

step "where to look"
if [ "${KEEP:-0}" = 1 ]; then
  cat <<EOF
The stack keeps running (stop it with the command at the end). Prometheus scrapes the 2 scorers
and the label sink and evaluates the alert rules: http://127.0.0.1:${PROMETHEUS_PORT:-9090}/targets
and /alerts. Look at the results:
  export COMPOSE_PROJECT_NAME=$COMPOSE_PROJECT_NAME POSTGRES_PASSWORD=$POSTGRES_PASSWORD
  ${DC[*]} exec scorer fraudstream counts --by day
  ${DC[*]} exec scorer fraudstream alerts list --label fraud
  ${DC[*]} exec scorer fraudstream alerts show <TRANSACTION_ID>
  ${DC[*]} logs scorer labels
The fraud-ops desk: create a login, then open http://127.0.0.1:${DESK_PORT:-8080}/
  ${DC[*]} exec desk fraudstream desk user add alice --role analyst
EOF
else
  cat <<EOF
KEEP=1 make simulate leaves the stack running to look around: Prometheus on
http://127.0.0.1:${PROMETHEUS_PORT:-9090} (targets: 2 scorers, the label sink and the desk; alert
rules), the fraud-ops desk on http://127.0.0.1:${DESK_PORT:-8080}/ (a login first: 'exec desk
fraudstream desk user add NAME --role analyst'), and the fraudstream CLI in a scorer container
(counts --by day, alerts list, alerts show ID).
EOF
fi
if "${DC[@]}" logs --no-log-prefix trainer 2>/dev/null | grep -q '(SYNTHETIC data)'; then
  echo
  echo "NOTE: every figure above comes from SYNTHETIC data (a \`fraudstream synth\` stand-in for"
  echo "creditcard.csv): it shows how the system works, not how well it catches real fraud."
fi
cat <<EOF
Grafana (dashboard deploy/grafana/dashboards/fraudstream.json) has no Debian package, so it runs
only on the official images: IMAGES=official make simulate (needs a registry), then
http://127.0.0.1:${GRAFANA_PORT:-3000}.
EOF
