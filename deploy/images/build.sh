#!/usr/bin/env bash
# Builds, or reuses when their inputs are unchanged, local stand-ins for the images that
# docker-compose.yml pulls from a registry, from reachable sources only: Debian packages
# (mmdebstrap -> docker import), Maven Central (the Kafka jars) and PyPI (wheels downloaded on
# the host). No build step touches the network. Prints the variables for docker compose:
#
#   eval "$(bash deploy/images/build.sh)"      # exports KAFKA_IMAGE, POSTGRES_IMAGE, ...
#   docker compose build && docker compose up  # the project image is built FROM $BASE_IMAGE
#
# Images (tags are stable; the label io.fraudstream.inputs holds a hash of what went in, and
# an image whose hash matches is reused as it is):
#   fraudstream-local/debian-python:bookworm   Debian + python3 + venv
#   fraudstream-local/python-deps:bookworm     + /opt/venv with the project's dependencies
#                                              (BASE_IMAGE of the project Dockerfile)
#   fraudstream-local/debian-jre:bookworm      Debian + openjdk-17-jre-headless
#   fraudstream-local/kafka:<version>          + the broker jars (KAFKA_IMAGE)
#   fraudstream-local/debian-postgresql:bookworm, fraudstream-local/postgres:<major>
#   fraudstream-local/debian-prometheus:bookworm, fraudstream-local/prometheus:bookworm
# Usage: build.sh [all|kafka]   (kafka: only what the Kafka image needs, for the test fixture)
# Environment: DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR (default: the host's apt mirrors), PYTHON (the host Python used to
# download wheels; default .venv/bin/python), FRAUDSTREAM_IMAGE_CACHE (wheels, jars).
set -euo pipefail
log() { echo "images: $*" >&2; }
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/deploy/images"
SUITE=bookworm
REV=2  # bump to rebuild every image
LABEL=io.fraudstream.inputs
CACHE="${FRAUDSTREAM_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fraudstream/images}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$CACHE"

sha() { sha256sum | cut -c1-16; }
files_sha() { (cd "$ROOT" && for f in "$@"; do echo "== $f"; cat "$f"; done) | sha; }
current() {  # the input hash an existing image was built from ("" if none)
  docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true
}
fresh() { [ "$(current "$1")" = "$2" ]; }

# The apt sources of the images: the host's Debian mirror (or DEBIAN_MIRROR) for SUITE and
# SUITE-updates, and its security mirror for SUITE-security when the host has one.
host_uri() {  # host_uri security|main
  local want=$1
  { awk '/^URIs:/ {print $2}' /etc/apt/sources.list.d/*.sources 2>/dev/null
    awk '$1 == "deb" {print $2}' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
  } | if [ "$want" = security ]; then grep security; else grep -v security; fi | head -n 1 || true
}
sources() {
  local main security
  main="${DEBIAN_MIRROR:-$(host_uri main)}"
  main="${main:-http://deb.debian.org/debian}"
  echo "deb $main $SUITE main"
  echo "deb $main $SUITE-updates main"
  security="${DEBIAN_SECURITY_MIRROR:-$(host_uri security)}"
  if [ -n "$security" ]; then echo "deb $security $SUITE-security main"; fi
}

need_mmdebstrap() {
  command -v mmdebstrap >/dev/null && return
  log "installing the Debian package mmdebstrap"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >&2
}

# rootfs NAME PACKAGES: a minimal Debian (apt variant) with PACKAGES, imported as an image.
rootfs() {
  local name=$1 packages=$2 hash
  hash=$(printf '%s %s %s' "$REV" "$SUITE" "$packages" | sha)
  if fresh "$name" "$hash"; then log "reusing $name"; echo "$hash"; return; fi
  need_mmdebstrap
  local tar="$WORK/${name//[\/:]/_}.tar" mirrors=()
  mapfile -t mirrors < <(sources)
  log "building $name with mmdebstrap ($packages)"
  local start=$SECONDS
  # The man1 directory: openjdk's postinst links its man page there even when man pages are
  # excluded (the unverified recipe missed this: the JRE install fails without it).
  mmdebstrap --quiet --variant=apt --include="$packages" \
    --setup-hook='mkdir -p "$1/usr/share/man/man1"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    "$SUITE" "$tar" "${mirrors[@]}" >&2
  docker import --change "LABEL $LABEL=$hash" --change 'CMD ["/bin/bash"]' \
    "$tar" "$name" >/dev/null
  rm -f "$tar"
  log "built $name in $((SECONDS - start)) s"
  echo "$hash"
}

# build NAME HASH CONTEXT [docker build args...]
build() {
  local name=$1 hash=$2 context=$3
  shift 3
  local start=$SECONDS
  log "building $name"
  DOCKER_BUILDKIT=0 docker build -q --network none --label "$LABEL=$hash" -t "$name" "$@" \
    "$context" >/dev/null
  log "built $name in $((SECONDS - start)) s"
}

kafka_version() {
  sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/deploy/kafka/pom.xml"
}

kafka_image() {
  local version jre name hash libs
  version=$(kafka_version)
  jre=$(rootfs fraudstream-local/debian-jre:$SUITE ca-certificates,openjdk-17-jre-headless)
  name=fraudstream-local/kafka:$version
  hash=$( (echo "$jre $version"; files_sha deploy/images/kafka/Dockerfile deploy/images/kafka/run.sh \
           deploy/images/kafka/kafka-topics.sh deploy/images/kafka/pom.xml \
           deploy/images/kafka/default.properties deploy/images/kafka/tools-log4j2.properties \
           deploy/kafka/log4j2.properties) | sha)
  if ! fresh "$name" "$hash"; then
    libs="$CACHE/kafka-$version-image-libs"
    if [ ! -f "$libs/.complete" ]; then
      log "resolving the Kafka $version broker and tools jars with Maven"
      rm -rf "$libs.partial"
      mvn -q -B -f "$HERE/kafka/pom.xml" -Dkafka.version="$version" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs.partial" \
        > "$WORK/mvn.log" 2>&1 || { cat "$WORK/mvn.log" >&2; exit 1; }
      touch "$libs.partial/.complete"
      rm -rf "$libs" && mv "$libs.partial" "$libs"
    fi
    local ctx="$WORK/kafka"
    mkdir -p "$ctx"
    cp -r "$HERE/kafka/." "$ctx/"
    cp "$ROOT/deploy/kafka/log4j2.properties" "$ctx/"
    cp -r "$libs" "$ctx/libs" && rm -f "$ctx/libs/.complete"
    build "$name" "$hash" "$ctx" --build-arg JRE_IMAGE="fraudstream-local/debian-jre:$SUITE"
  else
    log "reusing $name"
  fi
  echo "KAFKA_IMAGE=$name"
}

postgres_image() {
  local base name hash major
  base=$(rootfs fraudstream-local/debian-postgresql:$SUITE ca-certificates,postgresql)
  major=$(docker run --rm --network none fraudstream-local/debian-postgresql:$SUITE \
          ls /usr/lib/postgresql | sort -V | tail -n 1)
  name=fraudstream-local/postgres:$major
  hash=$( (echo "$base"; files_sha deploy/images/postgres/Dockerfile \
           deploy/images/postgres/docker-entrypoint.sh) | sha)
  if ! fresh "$name" "$hash"; then
    build "$name" "$hash" "$HERE/postgres" \
      --build-arg DEBIAN_POSTGRESQL_IMAGE="fraudstream-local/debian-postgresql:$SUITE" \
      --build-arg PG_MAJOR="$major"
  else
    log "reusing $name"
  fi
  echo "POSTGRES_IMAGE=$name"
}

prometheus_image() {
  local base name hash
  base=$(rootfs fraudstream-local/debian-prometheus:$SUITE ca-certificates,prometheus)
  name=fraudstream-local/prometheus:$SUITE
  hash=$( (echo "$base"; files_sha deploy/images/prometheus/Dockerfile) | sha)
  if ! fresh "$name" "$hash"; then
    build "$name" "$hash" "$HERE/prometheus" \
      --build-arg DEBIAN_PROMETHEUS_IMAGE="fraudstream-local/debian-prometheus:$SUITE"
  else
    log "reusing $name"
  fi
  echo "PROMETHEUS_IMAGE=$name"
}

# The project's runtime dependencies ([project] dependencies + the postgres extra) and the build
# backend, as a requirements file; wheels for them are downloaded (or built) on the host.
python_deps_image() {
  local base name hash reqs wheels
  base=$(rootfs fraudstream-local/debian-python:$SUITE ca-certificates,python3,python3-venv)
  reqs="$WORK/requirements.txt"
  "$PYTHON" - "$ROOT/pyproject.toml" > "$reqs" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))
deps = project["project"]["dependencies"] + project["project"]["optional-dependencies"]["postgres"]
deps += project["build-system"]["requires"] + ["wheel"]
print("\n".join(sorted(deps)))
PY
  name=fraudstream-local/python-deps:$SUITE
  hash=$( (echo "$base"; cat "$reqs") | sha)
  if fresh "$name" "$hash"; then log "reusing $name"; echo "BASE_IMAGE=$name"; return; fi
  wheels="$CACHE/wheels-$hash"
  if [ ! -f "$wheels/.complete" ]; then
    log "downloading wheels for the project's dependencies (pip wheel, on the host)"
    rm -rf "$wheels.partial" && mkdir -p "$wheels.partial"
    "$PYTHON" -m pip wheel -q --disable-pip-version-check -w "$wheels.partial" -r "$reqs" >&2
    cp "$reqs" "$wheels.partial/requirements.txt"
    touch "$wheels.partial/.complete"
    rm -rf "$wheels" && mv "$wheels.partial" "$wheels"
    find "$CACHE" -maxdepth 1 -name 'wheels-*' ! -name "wheels-$hash" -exec rm -rf {} +
  fi
  log "installing them offline into /opt/venv of $name"
  local start=$SECONDS cid="fraudstream-python-deps-$$"
  docker rm -f "$cid" >/dev/null 2>&1 || true
  docker run --name "$cid" --network none -v "$wheels:/wheels:ro" \
    "fraudstream-local/debian-python:$SUITE" /bin/sh -ec \
    'python3 -m venv /opt/venv
     /opt/venv/bin/pip install -q --no-cache-dir --disable-pip-version-check --no-index \
       --find-links /wheels -r /wheels/requirements.txt' >&2
  docker commit --change "LABEL $LABEL=$hash" \
    --change 'ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' "$cid" "$name" >/dev/null
  docker rm "$cid" >/dev/null
  log "built $name in $((SECONDS - start)) s"
  echo "BASE_IMAGE=$name"
}

docker info >/dev/null 2>&1 || { log "no Docker daemon answers (bash deploy/docker-for-tests.sh)"; exit 1; }
case "${1:-all}" in
  kafka) kafka_image ;;
  all)
    # The Debian root filesystems are independent (and mostly waiting on the mirror): build the
    # missing ones side by side, then the images on top of them.
    need_mmdebstrap
    pids=()
    rootfs fraudstream-local/debian-jre:$SUITE ca-certificates,openjdk-17-jre-headless \
      >/dev/null & pids+=($!)
    rootfs fraudstream-local/debian-postgresql:$SUITE ca-certificates,postgresql >/dev/null &
    pids+=($!)
    rootfs fraudstream-local/debian-prometheus:$SUITE ca-certificates,prometheus >/dev/null &
    pids+=($!)
    rootfs fraudstream-local/debian-python:$SUITE ca-certificates,python3,python3-venv \
      >/dev/null & pids+=($!)
    for pid in "${pids[@]}"; do wait "$pid"; done
    kafka_image
    postgres_image
    prometheus_image
    python_deps_image
    echo "PIP_OFFLINE=1"
    ;;
  *) echo "usage: $0 [all|kafka]" >&2; exit 2 ;;
esac
