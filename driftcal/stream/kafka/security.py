"""TLS and SASL options for aiokafka clients, from :class:`~driftcal.config_security.KafkaSecuritySettings`.

Secrets are read here, from the environment-backed :class:`~pydantic.SecretStr` or from their file, and
go straight into the client options; no message of this module ever contains one.

>>> from driftcal.config_security import KafkaSecuritySettings
>>> client_security(KafkaSecuritySettings())
{'security_protocol': 'PLAINTEXT'}
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from aiokafka.helpers import create_ssl_context
from pydantic import SecretStr

from driftcal.config import ConfigError
from driftcal.config_security import KafkaSecuritySettings


def _secret(value: SecretStr | None, path: Path | None, name: str) -> str | None:
    """The secret's value from the environment-backed field or from its file (trailing newline dropped)."""
    if value is not None:
        return value.get_secret_value()
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ConfigError([f"kafka.security.{name}_file: cannot read {str(path)!r}: {reason}"]) from None


def _ssl_context(sec: KafkaSecuritySettings) -> ssl.SSLContext:
    try:
        context = create_ssl_context(
            cafile=str(sec.ssl_cafile) if sec.ssl_cafile else None,
            certfile=str(sec.ssl_certfile) if sec.ssl_certfile else None,
            keyfile=str(sec.ssl_keyfile) if sec.ssl_keyfile else None,
            password=_secret(sec.ssl_key_password, sec.ssl_key_password_file, "ssl_key_password"),
        )
    except (OSError, ssl.SSLError) as exc:  # a missing or unreadable CA, certificate or key
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
        raise ConfigError([f"kafka.security: cannot load the TLS files: {reason}"]) from None
    context.check_hostname = sec.ssl_check_hostname
    return context


def client_security(sec: KafkaSecuritySettings) -> dict[str, Any]:
    """Keyword options for ``AIOKafkaConsumer``/``AIOKafkaProducer``/``AIOKafkaAdminClient``.

    Raises :class:`~driftcal.config.ConfigError` when a secret file or a TLS file cannot be read.
    """
    options: dict[str, Any] = {"security_protocol": sec.protocol}
    if sec.protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = _ssl_context(sec)
    if sec.protocol.startswith("SASL_"):
        options["sasl_mechanism"] = sec.sasl_mechanism
        options["sasl_plain_username"] = sec.sasl_username
        options["sasl_plain_password"] = _secret(sec.sasl_password, sec.sasl_password_file, "sasl_password")
    return options
