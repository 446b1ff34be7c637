"""The one credentials rule both Kafka clients (the stream's producer, the sink) follow."""

from __future__ import annotations

from pydantic import SecretStr

__all__ = ["require_sasl_credentials"]


def require_sasl_credentials(
    protocol: str, mechanism: str | None, username: str | None, password: SecretStr | None
) -> None:
    """A SASL protocol needs a mechanism, a username and a password.

    Raises:
        ValueError: Naming what is missing (pydantic reports it against the model).
    """
    if protocol.startswith("SASL") and (mechanism is None or username is None or password is None):
        raise ValueError(
            f"security_protocol {protocol} needs sasl_mechanism, sasl_username and sasl_password"
        )
