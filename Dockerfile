# syntax=docker/dockerfile:1
#
# rotator's container image: `docker build -t rotator:0.1.0 .` from the
# repository root (.dockerignore sends only pyproject.toml, README.md,
# rotator/, providers/ and the lock deploy/image/requirements.txt).
#
# Two stages. The builder installs into a virtualenv at /opt/rotator/venv
# every package of rotator-keys[all] (every provider, PostgreSQL and MySQL), from the
# hashed lock deploy/image/requirements.txt, then a wheel of this project. The
# final image is the same Python base plus that venv and nothing else: no
# compiler, no build tools, no pip, no source tree.
#
# It runs as the numeric user 10001 (numeric, so that Kubernetes can check
# runAsNonRoot without reading /etc/passwd) and writes nothing outside:
#   /var/lib/rotator   the SQLite journal and its fingerprint key
#                      (rotator.db.key) when ROTATOR_STATE is the SQLite
#                      default; mount a volume here. With PostgreSQL
#                      (ROTATOR_STATE=postgresql://...) only the key file
#                      (ROTATOR_KEY_FILE) lives here.
#   /tmp               HOME and TMPDIR (temporary files, SDK caches): an
#                      emptyDir or a tmpfs.
# so it runs with a read-only root filesystem, e.g.
#   docker run --read-only --tmpfs /tmp -v rotator-state:/var/lib/rotator \
#     -v "$PWD/schedules:/etc/rotator/schedules:ro" -p 9464:9464 rotator:0.1.0
#
# The base is pinned by tag (Python 3.11, Debian bookworm, both stages the
# same, so the venv's interpreter path exists in the final image). For
# reproducible builds pin it by digest as well: python:3.11-slim-bookworm@sha256:...

FROM python:3.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src
# The lock first, on its own layer: a change to the source alone reuses it.
COPY deploy/image/requirements.txt /src/requirements.txt
# The dependencies exactly as locked: == versions, each file checked against
# its sha256 (--require-hashes), wheels only (--only-binary :all:). Every one
# ships wheels for linux amd64 and arm64, so nothing is compiled here either;
# were one ever to need a compiler, install it in this stage only. The lock
# holds setuptools too, the build backend of the next step.
RUN python -m venv /opt/rotator/venv \
 && /opt/rotator/venv/bin/pip install --require-hashes --only-binary :all: \
        -r /src/requirements.txt

COPY pyproject.toml README.md ./
COPY rotator/ rotator/
COPY providers/ providers/

# rotator itself is built here from the source tree, so it has no published
# hash to lock: its wheel is built with the locked setuptools
# (--no-build-isolation, so pip fetches no build backend of its own) and
# installed with --no-deps (everything it needs is in already; pip check
# proves it). pip and setuptools are removed from the venv at the end: the
# final image never installs anything.
RUN /opt/rotator/venv/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
 && /opt/rotator/venv/bin/pip install --no-deps /wheels/rotator_keys-*.whl \
 && /opt/rotator/venv/bin/pip check \
 && /opt/rotator/venv/bin/pip uninstall --yes pip setuptools \
 && /opt/rotator/venv/bin/rotator --version


FROM python:3.11-slim-bookworm

# A fixed UID/GID, the same as the Kubernetes manifests' runAsUser/fsGroup.
RUN groupadd --system --gid 10001 rotator \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /tmp --shell /usr/sbin/nologin rotator \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/rotator \
 && install -d -m 0755 /etc/rotator/schedules

COPY --from=builder /opt/rotator/venv /opt/rotator/venv

# ROTATOR_LISTEN: all interfaces, because in a pod the probes and Prometheus
# come from outside the container (the CLI's own default is loopback only).
ENV PATH=/opt/rotator/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    ROTATOR_CONFIG=/etc/rotator/schedules \
    ROTATOR_STATE=sqlite:////var/lib/rotator/rotator.db \
    ROTATOR_LISTEN=0.0.0.0:9464

WORKDIR /var/lib/rotator
VOLUME ["/var/lib/rotator"]
USER 10001:10001
EXPOSE 9464

# For `docker run` only (Kubernetes ignores HEALTHCHECK and uses the probes):
# /healthz answers 200 while the service loop keeps passing. A one-shot
# (`run --once`) or another command has no endpoint; run those with
# --no-healthcheck.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4)"]

ENTRYPOINT ["rotator"]
CMD ["run"]
