"""Connecting to Temporal: the one way every process does it (workers, the root
orchestrator, listeners, the operator, the CLI).

The address and namespace come from the process's own flags (which default to
``TEMPORAL_ADDRESS`` and ``TEMPORAL_NAMESPACE``). Security comes from Temporal's standard
client environment configuration, read by the SDK, so a process configured like any
other Temporal client reaches a TLS or Temporal Cloud endpoint unchanged:

* ``TEMPORAL_API_KEY``: an API key (turns TLS on with the system's roots);
* ``TEMPORAL_TLS=true``: TLS without a client certificate;
* ``TEMPORAL_TLS_SERVER_CA_CERT_PATH`` / ``_DATA``, ``TEMPORAL_TLS_SERVER_NAME``: a private CA
  and the name the server's certificate carries;
* ``TEMPORAL_TLS_CLIENT_CERT_PATH`` / ``_DATA`` and ``TEMPORAL_TLS_CLIENT_KEY_PATH`` /
  ``_DATA``: mutual TLS;
* ``TEMPORAL_GRPC_META_<NAME>``: extra gRPC headers; ``TEMPORAL_PROFILE`` and
  ``TEMPORAL_CONFIG_FILE``: a profile from a TOML file instead.

In Kubernetes the ``_DATA`` forms and the API key come from a Secret through
``spec.workers.env[].valueFrom.secretKeyRef``, without a volume.

The data converter is the pydantic one, with payload encryption when
``TFLOW_PAYLOAD_KEY`` is set (see `tflow_workers.codec`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfig
from temporalio.runtime import Runtime

from tflow_workers.codec import codec_from_env


class TemporalUnavailable(RuntimeError):
    """Temporal could not be reached or did not accept a request, so nothing was done:
    retry later (a listener does not acknowledge its event, the operator sets a condition
    and backs off). The message says where and why."""


# What the environment configuration may set besides the address and namespace.
SECURITY_OPTIONS = ("api_key", "tls", "rpc_metadata")


class ConnectionConfigError(ValueError):
    """The Temporal client configuration in the environment cannot be used."""


def connect_options(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`Client.connect` keyword arguments for TLS, API key and headers, from ``env`` (the
    process environment when None). A certificate file that cannot be read is an error
    naming it, at start, rather than a failed handshake later."""
    try:
        config = ClientConfig.load_client_connect_config(override_env_vars=env)
    except (OSError, ValueError, RuntimeError) as err:
        raise ConnectionConfigError(f"Temporal client configuration (TEMPORAL_*): {err}") from err
    return {key: config[key] for key in SECURITY_OPTIONS if key in config}  # type: ignore[literal-required]


def data_converter(env: Mapping[str, str] | None = None) -> DataConverter:
    """The pydantic converter, encrypting payloads when ``TFLOW_PAYLOAD_KEY`` is set."""
    codec = codec_from_env(env)
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)


async def connect(
    address: str,
    namespace: str,
    runtime: Runtime | None = None,
    *,
    lazy: bool = False,
    env: Mapping[str, str] | None = None,
) -> Client:
    """A client with the pydantic data converter every Temporal Flow process uses."""
    return await Client.connect(
        address,
        namespace=namespace,
        data_converter=data_converter(env),
        runtime=runtime,
        lazy=lazy,
        **connect_options(env),
    )
