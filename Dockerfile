# The fraudstream CLI image used by docker-compose.yml (trainer, producer, scorer, label sink).
#   docker build -t fraudstream:local .
#   docker run --rm fraudstream:local --help
# Without a registry (deploy/images/build.sh): BASE_IMAGE is a Debian image whose /opt/venv
# already holds the dependencies (wheels downloaded on the host), and PIP_OFFLINE=1 installs the
# project itself without the network. No BuildKit feature is used, so the classic builder works.
# Runtime configuration comes from the environment only (no credentials are baked in):
#   KAFKA_BOOTSTRAP_SERVERS, FRAUDSTREAM_DB_URL, FRAUDSTREAM_HOME.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ARG PIP_OFFLINE=

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    FRAUDSTREAM_HOME=/var/lib/fraudstream

# Non-root user; the directories that docker-compose.yml mounts named volumes on are created
# here, owned by that user, so fresh volumes inherit a writable owner.
RUN groupadd --system --gid 10001 fraudstream \
    && useradd --system --uid 10001 --gid fraudstream --create-home --home-dir /home/fraudstream \
       --shell /usr/sbin/nologin fraudstream \
    && mkdir -p /var/lib/fraudstream /data \
    && chown fraudstream:fraudstream /var/lib/fraudstream /data

# Only what the package build needs (see .dockerignore as well). README.md is optional.
WORKDIR /src
COPY pyproject.toml README.m[d] fraudstream_cli.py ./
COPY schemas/ schemas/
COPY models/ models/
COPY trainer/ trainer/
COPY producer/ producer/
COPY scorer/ scorer/
COPY store/ store/
COPY stream/ stream/
COPY labels/ labels/
COPY metrics/ metrics/
COPY desk/ desk/
# The project goes into the virtualenv /opt/venv (created here unless the base image has it).
RUN { [ -x /opt/venv/bin/python ] || python3 -m venv /opt/venv; } \
    && pip install --no-cache-dir ${PIP_OFFLINE:+--no-index --no-build-isolation} '.[postgres]' \
    && rm -rf /src

USER fraudstream
WORKDIR /home/fraudstream
ENTRYPOINT ["fraudstream"]
CMD ["--help"]
