# syntax=docker/dockerfile:1.7
# One image for every component of Temporal Flow: the operator (`tflow-operator`), the
# workers (`tflow-worker`), the listeners (`tflow-listener`) and the CLI (`tflow`).
# Non-root, and happy with a read-only root file system (only /tmp needs to be writable).

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ARG UV_VERSION=0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/tflow
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /src
# Dependencies first, so a code change does not rebuild them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-install-project --no-editable
COPY operator/ operator/
COPY workers/ workers/
COPY listeners/ listeners/
COPY cli/ cli/
COPY devstack/ devstack/
COPY samples/ samples/
RUN uv sync --frozen --no-editable

FROM python:${PYTHON_VERSION}-slim-bookworm
LABEL org.opencontainers.image.title="temporal-flow" \
      org.opencontainers.image.description="Durable Temporal workflows from Serverless Workflow YAML" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 65532 tflow \
    && useradd --system --uid 65532 --gid tflow --no-create-home --shell /usr/sbin/nologin tflow
COPY --from=build /opt/tflow /opt/tflow
ENV PATH=/opt/tflow/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 9090
ENTRYPOINT []
CMD ["tflow", "--help"]
