"""Kafka credentials from the settings: TLS and SASL for the worker, the admin and the tools.

One place turns RTCC_KAFKA_SECURITY_PROTOCOL, RTCC_KAFKA_SASL_MECHANISM, the user name, the
password (from RTCC_KAFKA_PASSWORD_FILE, else RTCC_KAFKA_PASSWORD) and the TLS files into
what each client library takes, so that the Faust worker, `rtcc topics` and the tests
authenticate alike. A setting that cannot work (SASL without a user, an unreadable file) stops
start-up with the variable's name instead of surfacing later as a connection that hangs.
The password is never logged: clients get it, messages only say whether one is set.
"""

from __future__ import annotations

import ssl
from typing import Any

import faust
from faust.types.auth import CredentialsT

from streams.config import Settings, read_secret


def kafka_password(settings: Settings) -> str | None:
    """The SASL password: the file wins over the variable; None when neither is set."""
    if settings.kafka_password_file:
        return read_secret("RTCC_KAFKA_PASSWORD_FILE", settings.kafka_password_file)
    return settings.kafka_password or None


def uses_sasl(settings: Settings) -> bool:
    return settings.kafka_security_protocol.startswith("SASL_")


def uses_tls(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """A client TLS context that verifies the brokers (hostname included) against the CA file,
    or the system's trust store, and presents a client certificate when one is configured."""
    try:
        context = ssl.create_default_context(cafile=settings.kafka_ca_file or None)
        if settings.kafka_cert_file:
            context.load_cert_chain(settings.kafka_cert_file, settings.kafka_key_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"RTCC_KAFKA_CA_FILE / RTCC_KAFKA_CERT_FILE / RTCC_KAFKA_KEY_FILE: "
                         f"cannot load: {exc}") from None
    return context


def _sasl_user(settings: Settings) -> tuple[str, str]:
    password = kafka_password(settings)
    missing = [name for name, value in (("RTCC_KAFKA_USERNAME", settings.kafka_username),
                                        ("RTCC_KAFKA_PASSWORD_FILE or RTCC_KAFKA_PASSWORD",
                                         password)) if not value]
    if missing:
        raise ValueError(f"RTCC_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} "
                         f"needs {' and '.join(missing)}")
    assert password is not None
    return settings.kafka_username, password


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """The `broker_credentials` of the Faust app; None for PLAINTEXT."""
    if uses_sasl(settings):
        username, password = _sasl_user(settings)
        return faust.SASLCredentials(
            username=username, password=password, mechanism=settings.kafka_sasl_mechanism,
            ssl_context=ssl_context(settings) if uses_tls(settings) else None)
    if uses_tls(settings):
        return faust.SSLCredentials(ssl_context(settings))
    return None


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of a kafka-python or aiokafka client (the same names in both)."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if uses_tls(settings):
        options["ssl_context"] = ssl_context(settings)
    if uses_sasl(settings):
        username, password = _sasl_user(settings)
        options.update(sasl_mechanism=settings.kafka_sasl_mechanism,
                       sasl_plain_username=username, sasl_plain_password=password)
    return options


def describe(settings: Settings) -> str:
    """How this deployment connects, for error messages: never the password itself."""
    how = f"{settings.kafka_bootstrap} over {settings.kafka_security_protocol}"
    if uses_sasl(settings):
        user = settings.kafka_username or "(no user)"
        password = "a password" if (settings.kafka_password_file or settings.kafka_password) \
            else "no password"
        how += f" as {user} ({settings.kafka_sasl_mechanism}, {password})"
    return how
