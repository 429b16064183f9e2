"""Security settings: Kafka TLS/SASL credentials and the Redis password, never shown."""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path

import faust
import pytest
from faust.types.auth import AuthProtocol
from redis.connection import parse_url

from streams.cli import main
from streams.config import Settings, load, with_password
from streams.security import client_options, describe, faust_credentials, kafka_password


def _sasl(tmp_path: Path, **changes: object) -> Settings:
    secret = tmp_path / "kafka.password"
    secret.write_text("from-the-file\n")
    values: dict[str, object] = dict(kafka_security_protocol="SASL_PLAINTEXT",
                                     kafka_username="rtcc", kafka_password="from-the-env",
                                     kafka_password_file=str(secret))
    return dataclasses.replace(load(), **{**values, **changes})


def test_plaintext_is_the_default_and_needs_no_credentials():
    settings = load()
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert faust_credentials(settings) is None
    assert client_options(settings) == {"security_protocol": "PLAINTEXT"}


def test_protocol_and_mechanism_are_checked_at_start_up(monkeypatch):
    monkeypatch.setenv("RTCC_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("RTCC_KAFKA_SASL_MECHANISM", "scram-sha-256")
    settings = load()
    assert (settings.kafka_security_protocol, settings.kafka_sasl_mechanism) == \
        ("SASL_SSL", "SCRAM-SHA-256")
    monkeypatch.setenv("RTCC_KAFKA_SECURITY_PROTOCOL", "TLS")
    with pytest.raises(ValueError, match="RTCC_KAFKA_SECURITY_PROTOCOL.*SASL_SSL"):
        load()


def test_the_password_file_wins_over_the_variable(tmp_path):
    settings = _sasl(tmp_path)
    assert kafka_password(settings) == "from-the-file"  # without the file's newline
    assert kafka_password(dataclasses.replace(settings, kafka_password_file="")) == "from-the-env"


def test_an_unreadable_or_empty_password_file_stops_start_up_by_name(tmp_path):
    with pytest.raises(ValueError, match="RTCC_KAFKA_PASSWORD_FILE.*cannot read"):
        kafka_password(_sasl(tmp_path, kafka_password_file=str(tmp_path / "missing")))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="RTCC_KAFKA_PASSWORD_FILE.*empty"):
        kafka_password(_sasl(tmp_path, kafka_password_file=str(tmp_path / "empty")))


def test_sasl_credentials_for_faust_and_kafka_clients(tmp_path):
    settings = _sasl(tmp_path)
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol == AuthProtocol.SASL_PLAINTEXT
    assert (credentials.username, credentials.password) == ("rtcc", "from-the-file")
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert "from-the-file" not in repr(credentials)
    assert client_options(settings) == {
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "rtcc", "sasl_plain_password": "from-the-file"}


def test_sasl_over_tls_verifies_the_broker(tmp_path):
    credentials = faust_credentials(_sasl(tmp_path, kafka_security_protocol="SASL_SSL"))
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol == AuthProtocol.SASL_SSL
    context = credentials.ssl_context
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    tls_only = faust_credentials(_sasl(tmp_path, kafka_security_protocol="SSL"))
    assert isinstance(tls_only, faust.SSLCredentials)
    assert client_options(_sasl(tmp_path, kafka_security_protocol="SSL")).keys() == \
        {"security_protocol", "ssl_context"}


def test_a_missing_tls_file_or_user_stops_start_up_by_name(tmp_path):
    with pytest.raises(ValueError, match="RTCC_KAFKA_CA_FILE"):
        faust_credentials(_sasl(tmp_path, kafka_security_protocol="SSL",
                                kafka_ca_file=str(tmp_path / "no-ca.pem")))
    with pytest.raises(ValueError, match="needs RTCC_KAFKA_USERNAME$"):
        faust_credentials(_sasl(tmp_path, kafka_username=""))


def test_messages_say_how_but_never_the_password(tmp_path):
    text = describe(_sasl(tmp_path, kafka_bootstrap="kafka-1:9093"))
    assert text == "kafka-1:9093 over SASL_PLAINTEXT as rtcc (SCRAM-SHA-512, a password)"


def test_rtcc_config_hides_secrets(monkeypatch, capsys):
    monkeypatch.setenv("RTCC_KAFKA_PASSWORD", "kafka-s3cret")
    monkeypatch.setenv("RTCC_REDIS_URL", "rediss://:redis-s3cret@redis.example:6380/0")
    main(["config"])
    out = capsys.readouterr().out
    assert "s3cret" not in out
    assert "RTCC_KAFKA_PASSWORD=(set)" in out
    assert "RTCC_REDIS_URL=rediss://:***@redis.example:6380/0" in out


def test_the_redis_password_file_goes_into_the_url(tmp_path, monkeypatch):
    secret = tmp_path / "redis.password"
    secret.write_text("p@ss:w/rd\n")
    monkeypatch.setenv("RTCC_REDIS_URL", "rediss://:old@redis.example:6380/2?ssl_cert_reqs=required")
    monkeypatch.setenv("RTCC_REDIS_PASSWORD_FILE", str(secret))
    settings = load()
    parsed = parse_url(settings.redis_url)
    assert parsed["password"] == "p@ss:w/rd"
    assert (parsed["host"], parsed["port"], parsed["db"]) == ("redis.example", 6380, 2)
    assert parsed["ssl_cert_reqs"] == "required"
    # the child processes of tests and benchmarks load the same settings again
    for name, value in settings.as_env({}).items():
        monkeypatch.setenv(name, value)
    assert load() == settings


def test_with_password_keeps_a_user_name():
    assert with_password("redis://app@h:6379/0", "pw") == "redis://app:pw@h:6379/0"
    assert with_password("redis://h", "a b") == "redis://:a%20b@h"
