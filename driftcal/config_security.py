"""Kafka TLS/SASL settings, and the rule that secrets never live in a config file.

>>> KafkaSecuritySettings().protocol
'PLAINTEXT'
>>> secrets_in_file({"kafka": {"security": {"sasl_password": "x"}}}, "a.yaml")[0][:40]
"config file 'a.yaml': kafka.security.sas"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

#: Secret settings: only from the environment or a ``*_file``, never from the YAML file.
SECRET_FIELDS = ("sasl_password", "ssl_key_password")


class KafkaSecuritySettings(BaseModel):
    """TLS and SASL for every Kafka client of the daemon (consumer, producers, admin).

    Secrets (``sasl_password``, ``ssl_key_password``) come only from the environment
    (``DRIFTCAL_KAFKA__SECURITY__SASL_PASSWORD``) or from a file named by ``*_file``; a config file
    that holds one is refused. They are kept as :class:`~pydantic.SecretStr` and never logged.
    """

    model_config = ConfigDict(extra="forbid")
    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism (SASL_* protocols)."
    )
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(
        None, description="SASL password; only from DRIFTCAL_KAFKA__SECURITY__SASL_PASSWORD, never the file."
    )
    sasl_password_file: Path | None = Field(None, description="File holding the SASL password.")
    ssl_cafile: Path | None = Field(None, description="CA bundle for the brokers (default: system CAs).")
    ssl_certfile: Path | None = Field(None, description="Client certificate (PEM), for mutual TLS.")
    ssl_keyfile: Path | None = Field(None, description="Client private key (PEM), for mutual TLS.")
    ssl_key_password: SecretStr | None = Field(
        None, description="Password of the client key; only from DRIFTCAL_KAFKA__SECURITY__SSL_KEY_PASSWORD."
    )
    ssl_key_password_file: Path | None = Field(None, description="File holding the client key's password.")
    ssl_check_hostname: bool = Field(True, description="Check broker host names against their certificates.")

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSecuritySettings:
        problems = []
        if self.protocol.startswith("SASL_"):
            if self.sasl_mechanism is None or not self.sasl_username:
                problems.append(f"protocol {self.protocol} needs sasl_mechanism and sasl_username")
            if self.sasl_password is None and self.sasl_password_file is None:
                problems.append(
                    f"protocol {self.protocol} needs a password: DRIFTCAL_KAFKA__SECURITY__SASL_PASSWORD "
                    "or sasl_password_file"
                )
        for name in SECRET_FIELDS:
            if getattr(self, name) is not None and getattr(self, name + "_file") is not None:
                problems.append(f"set {name} or {name}_file, not both")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            problems.append("ssl_certfile and ssl_keyfile go together")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def secrets_in_file(data: dict[str, Any], where: str) -> list[str]:
    """One problem line per secret written in the parsed config file ``data`` (none: an empty list).

    A config file is copied, committed and mounted too widely to hold a password.
    """
    kafka = data.get("kafka")
    security = kafka.get("security") if isinstance(kafka, dict) else None
    if not isinstance(security, dict):
        return []
    return [
        f"config file {where!r}: kafka.security.{name} is a secret and may not be written in a config "
        f"file; set DRIFTCAL_KAFKA__SECURITY__{name.upper()} or kafka.security.{name}_file"
        for name in SECRET_FIELDS
        if name in security
    ]
