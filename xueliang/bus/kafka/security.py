"""Who a stage is to the broker (SASL/SCRAM, TLS client options) and what the broker refused it
(authorization failures as :class:`~xueliang.bus.base.BusAccessDenied`, naming the ACL to grant)."""

from __future__ import annotations

from typing import Any

from xueliang.bus.base import BusAccessDenied, BusError
from xueliang.bus.kafka._client import kerr
from xueliang.config.bus import KafkaSecurityConfig

_DENIED = (
    kerr.TopicAuthorizationFailedError,
    kerr.GroupAuthorizationFailedError,
    kerr.ClusterAuthorizationFailedError,
)


def security_options(security: KafkaSecurityConfig) -> dict[str, Any]:
    """kafka-python client options for ``security`` (credentials resolved from the environment)."""
    sec = security.resolved()
    if sec.protocol == "PLAINTEXT":
        return {}
    opts: dict[str, Any] = {"security_protocol": sec.protocol}
    if sec.protocol.startswith("SASL"):
        if not sec.username or not sec.password:
            raise BusError(
                f"bus.security.protocol is {sec.protocol}: set the stage's SCRAM user and password "
                "(XL_KAFKA_USERNAME and XL_KAFKA_PASSWORD, or bus.security.username/password)"
            )
        opts.update(
            sasl_mechanism=sec.sasl_mechanism, sasl_plain_username=sec.username, sasl_plain_password=sec.password
        )
    if sec.protocol.endswith("SSL"):
        if sec.ca_file:
            opts["ssl_cafile"] = sec.ca_file
        opts["ssl_check_hostname"] = sec.check_hostname
    return opts


def denial(exc: BaseException, principal: str, operation: str, resource: str) -> BusAccessDenied | None:
    """A :class:`BusAccessDenied` if ``exc`` (or its cause) is the broker's authorization refusal."""
    seen = exc
    for _ in range(3):
        if isinstance(seen, BusAccessDenied):
            return seen
        if isinstance(seen, _DENIED):
            if isinstance(seen, kerr.GroupAuthorizationFailedError):
                what = resource if resource.startswith("group") else f"{resource} (its consumer group)"
            elif isinstance(seen, kerr.ClusterAuthorizationFailedError):
                what = f"the cluster ({resource})"
            else:
                what = resource
            return BusAccessDenied(principal, operation, what, type(seen).__name__)
        if seen.__cause__ is None:
            break
        seen = seen.__cause__
    return None
