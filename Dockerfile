# syntax=docker/dockerfile:1.7
# One image for every component of Temporal Flow: the operator (`tflow-operator`), the
# workers (`tflow-worker`), the listeners (`tflow-listener`) and the CLI (`tflow`).
# Non-root, and happy with a read-only root file system (only /tmp needs to be writable).
#
# BASE_IMAGE is any Debian bookworm image with Python 3.11 as `python3`: the official
# python image for anyone with a registry (the default, pinned by the digest of its
# multi-platform index so that every build starts from the same bytes), or the project's
# own base made from Debian's packages by `make image` (see docs/development.md), which
# builds with `--build-arg BASE_IMAGE=localhost/temporal-flow-base:bookworm-<hash>` and no
# registry. To move the pin to today's image of the tag, take the digest that
# `docker buildx imagetools inspect python:3.11-slim-bookworm` prints (or pass it with
# `--build-arg BASE_IMAGE=python:3.11-slim-bookworm@sha256:...`).
#
# Targets: `production` (the last stage, so the default) is what the chart runs; `samples`
# adds the sample flows' custom functions (tflow_samples), for the sample
# WorkflowDefinitions' worker Deployments.

ARG BASE_IMAGE=python:3.11-slim-bookworm@sha256:6d2502238109c929569ae99355e28890c438cb11bc88ef02cd189c173b3db07c

FROM ${BASE_IMAGE} AS uv
# Behind a TLS-intercepting proxy, the CA bundle pip (PIP_CERT) and uv (SSL_CERT_FILE) trust
# while building; `make image` passes the host's, mounted for RUN only. Unset by default;
# nothing of it stays in the image.
ARG PIP_CERT
ARG SSL_CERT_FILE
# uv in a virtualenv of its own: Debian's python refuses a system-wide `pip install`
# (PEP 668, "externally managed"), the official image's allows it; a venv works on both.
# The version and the hashes of its files come from the lock `make venv` installs from too
# (its version is UV_VERSION of hack/versions.env): the image's uv is the developers'.
COPY hack/uv-requirements.txt /tmp/uv-requirements.txt
RUN python3 -m venv /opt/uv \
    && /opt/uv/bin/pip install --no-cache-dir --disable-pip-version-check \
       --require-hashes --no-deps --only-binary=:all: -r /tmp/uv-requirements.txt

FROM uv AS build
ARG SSL_CERT_FILE
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/tflow
WORKDIR /src
# Dependencies first, so a code change does not rebuild them. No extras: the dev and test
# dependencies stay out of the production image (the PostgreSQL driver is a main
# dependency: the workers' built-in SQL functions use it).
COPY pyproject.toml uv.lock README.md ./
RUN /opt/uv/bin/uv sync --frozen --no-install-project --no-editable
# Only the packages that run in a pod are copied. The wheel lists every package of the
# repository (the dev environment installs them all), and hatchling builds it from those
# present, so tflow_devstack and tflow_samples are not in it; the dev stack's console
# script is still declared by the project, so it is removed from the venv by hand.
COPY operator/ operator/
COPY workers/ workers/
COPY listeners/ listeners/
COPY cli/ cli/
RUN /opt/uv/bin/uv sync --frozen --no-editable \
    && rm /opt/tflow/bin/tflow-dev

FROM build AS build-samples
ARG SSL_CERT_FILE
COPY samples/ samples/
# The project is rebuilt (now with tflow_samples) together with the `samples` extra.
RUN /opt/uv/bin/uv sync --frozen --no-editable --extra samples --reinstall-package temporal-flow \
    && rm /opt/tflow/bin/tflow-dev

FROM ${BASE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="temporal-flow" \
      org.opencontainers.image.description="Durable Temporal workflows from Serverless Workflow YAML" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 65532 tflow \
    && useradd --system --uid 65532 --gid tflow --no-create-home --shell /usr/sbin/nologin tflow
ENV PATH=/opt/tflow/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 9090
ENTRYPOINT []
CMD ["tflow", "--help"]

# Both final images share the base and the runtime layer; each adds one layer, its venv.
FROM runtime AS samples
COPY --from=build-samples /opt/tflow /opt/tflow

FROM runtime AS production
COPY --from=build /opt/tflow /opt/tflow
