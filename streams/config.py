"""All configuration of rtcc-streams, read from the environment in one place.

Every setting has a documented default that works on a developer machine started with
`make infra-up`; production overrides them through the environment (or a `.env`-style
file loaded by the process manager). `rtcc config` prints the effective values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULTS_DIR = Path(__file__).resolve().parent / "defaults"


def _env(name: str, default: T, parse: Callable[[str], T]) -> T:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return parse(raw.strip())
    except ValueError as exc:  # a bad setting must stop start-up, loudly
        raise ValueError(f"{name}={raw!r}: {exc}") from None


def _bool(raw: str) -> bool:
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true/false")


def _guarantee(raw: str) -> str:
    """RTCC_PROCESSING_GUARANTEE: at_least_once only. Faust's exactly_once puts the offsets
    and the tables' changelogs in transactions but not the agents' outputs, which leave
    through the app's plain producer (agents/batching.py), and Faust's transactional path
    cannot take them: it names a transaction by the output's partition and knows only the
    topics the app reads. A worker set to it wrote every SA update outside any transaction
    (bench/NOTES.md section 37), so the setting is refused rather than silently weaker."""
    if raw.lower() == "at_least_once":
        return "at_least_once"
    if raw.lower() == "exactly_once":
        raise ValueError("exactly_once is not supported: Faust's transactions would not "
                         "cover the SA updates and the other outputs (bench/NOTES.md "
                         "section 37); at_least_once with idempotent update ids is the "
                         "guarantee (README, Reliability)")
    raise ValueError("expected at_least_once")


def _beside_mode(raw: str) -> str:
    """RTCC_CHECKPOINT_BESIDE: auto, or a boolean (on/off)."""
    if raw.lower() == "auto":
        return "auto"
    try:
        return "on" if _bool(raw) else "off"
    except ValueError:
        raise ValueError("expected auto, true or false") from None


@dataclass(frozen=True)
class Setting:
    """Documentation of one environment variable (rendered by `rtcc config`)."""

    env: str
    doc: str
    secret: bool = False  # never shown by `rtcc config` (child processes still get it)


def _setting(env: str, default: T, parse: Callable[[str], T], doc: str,
             secret: bool = False) -> T:
    return field(
        default_factory=lambda: _env(env, default, parse),
        metadata={"setting": Setting(env, doc, secret)},
    )


def _one_of(*choices: str, case: Callable[[str], str] = str.upper) -> Callable[[str], str]:
    """A parser that accepts one of `choices` in any case, returned in `case`."""
    def parse(raw: str) -> str:
        if case(raw) not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return case(raw)
    return parse


KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN")


def _without_password(url: str) -> str:
    """A URL as it may be shown: its password, if any, replaced by ***."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def with_password(url: str, password: str) -> str:
    """`url` with this password (and the user it names, if any), e.g. redis://:pw@host/0."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    user = quote(parts.username or "", safe="")
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{netloc}"))


@dataclass(frozen=True)
class Settings:
    # --- connections -------------------------------------------------------------------
    kafka_bootstrap: str = _setting(
        "RTCC_KAFKA_BOOTSTRAP", "127.0.0.1:9092", str,
        "Kafka bootstrap servers, host:port[,host:port].")
    redis_url: str = _setting(
        "RTCC_REDIS_URL", "redis://127.0.0.1:6379/0", str, "Redis URL for the serving layer.")

    # --- security (README, "Security"): secrets come from the environment or files ------
    kafka_security_protocol: str = _setting(
        "RTCC_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", _one_of(*KAFKA_SECURITY_PROTOCOLS),
        "How clients reach Kafka: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL (SASL "
        "over TLS: production).")
    kafka_sasl_mechanism: str = _setting(
        "RTCC_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512", _one_of(*KAFKA_SASL_MECHANISMS),
        "SASL mechanism: SCRAM-SHA-512, SCRAM-SHA-256, or PLAIN (only over SASL_SSL).")
    kafka_username: str = _setting(
        "RTCC_KAFKA_USERNAME", "", str, "SASL user name of this deployment.")
    kafka_password: str = _setting(
        "RTCC_KAFKA_PASSWORD", "", str,
        "SASL password. Prefer RTCC_KAFKA_PASSWORD_FILE; never shown or logged.", secret=True)
    kafka_password_file: str = _setting(
        "RTCC_KAFKA_PASSWORD_FILE", "", str,
        "File holding the SASL password (e.g. a mounted secret); wins over RTCC_KAFKA_PASSWORD.")
    kafka_ca_file: str = _setting(
        "RTCC_KAFKA_CA_FILE", "", str,
        "PEM CA bundle that signs the brokers' TLS certificates (SSL, SASL_SSL); empty: the "
        "system's trust store.")
    kafka_cert_file: str = _setting(
        "RTCC_KAFKA_CERT_FILE", "", str,
        "PEM client certificate, for brokers that require mutual TLS (optional).")
    kafka_key_file: str = _setting(
        "RTCC_KAFKA_KEY_FILE", "", str,
        "PEM private key of RTCC_KAFKA_CERT_FILE (unencrypted; protect it as a secret file).")
    redis_password_file: str = _setting(
        "RTCC_REDIS_PASSWORD_FILE", "", str,
        "File holding the Redis password; it replaces any password in RTCC_REDIS_URL. TLS: a "
        "rediss:// URL (with ?ssl_ca_certs=/path/ca.pem for a private CA).")

    # --- the worker ----------------------------------------------------------------------
    app_id: str = _setting(
        "RTCC_APP_ID", "rtcc-streams", str,
        "Faust app id: consumer group and prefix of changelog topics.")
    data_dir: Path = _setting(
        "RTCC_DATA_DIR", REPO_ROOT / "var" / "worker", Path,
        "Local state (RocksDB tables) of this worker.")
    web_host: str = _setting(
        "RTCC_WEB_HOST", "127.0.0.1", str,
        "Interface of the worker's HTTP server (0.0.0.0 in containers).")
    web_port: int = _setting(
        "RTCC_WEB_PORT", 6066, int, "HTTP port of the worker (metrics, health).")
    metrics_enabled: bool = _setting(
        "RTCC_METRICS_ENABLED", True, _bool,
        "false: every rtcc_* metric is a no-op and /metrics shows none (only to measure "
        "their cost: alerts and dashboards need them).")
    processing_guarantee: str = _setting(
        "RTCC_PROCESSING_GUARANTEE", "at_least_once", _guarantee,
        "at_least_once (the only one: outputs carry idempotent update ids, README "
        "Reliability; exactly_once is refused, bench/NOTES.md section 37).")
    table_store: str = _setting(
        "RTCC_TABLE_STORE", "rocksdb://", str,
        "Faust table store: rocksdb:// in production, memory:// for throwaway runs.")
    # Faust's RocksDB defaults are sized for a few large tables: 3 memtables of 64 MiB and a
    # 2 GiB block cache for *every* database, and a worker opens one per table and partition
    # (5 x 4 here): the 1,000,000-event burst's RSS climbed in steps to 814 MiB
    # (bench/NOTES.md, section 8). The worker reads its tables from memory (write-behind
    # mirror) and RocksDB only at recovery, so small buffers cost nothing and bound memory
    # at databases x (write buffer x buffers + block cache).
    rocksdb_write_buffer_bytes: int = _setting(
        "RTCC_ROCKSDB_WRITE_BUFFER_BYTES", 4 * 1024 * 1024, int,
        "Size of one RocksDB memtable, per table partition (Faust's default: 64 MiB).")
    rocksdb_max_write_buffers: int = _setting(
        "RTCC_ROCKSDB_MAX_WRITE_BUFFERS", 2, int,
        "Memtables a RocksDB database may hold before writes stall (Faust's default: 3).")
    rocksdb_block_cache_bytes: int = _setting(
        "RTCC_ROCKSDB_BLOCK_CACHE_BYTES", 4 * 1024 * 1024, int,
        "Block cache of one RocksDB database (Faust's default: 2 GiB).")
    event_loop: str = _setting(
        "RTCC_EVENT_LOOP", "uvloop", _one_of("uvloop", "aio", case=str.lower),
        "Event loop of the worker: uvloop (libuv, in C) or aio (the standard library's). "
        "Faust's cost per message is mostly event-loop work (bench/NOTES.md).")
    gc_young_threshold: int = _setting(
        "RTCC_GC_YOUNG_THRESHOLD", 20_000, int,
        "Allocations between two collections of Python's youngest generation (Python's "
        "default: 700). Each collection of an older generation walks the worker's large "
        "heap of live state; at 700 the cyclic collector took 40 % of the correlation "
        "engine's time (bench/NOTES.md, section 14). 0: leave Python's settings.")
    log_level: str = _setting("RTCC_LOG_LEVEL", "info", str, "Worker log level.")
    log_format: str = _setting(
        "RTCC_LOG_FORMAT", "json", str,
        "json: one JSON object a line (for log shipping); text: Faust's coloured lines.")
    stages: str = _setting(
        "RTCC_STAGES", "ingest,correlate,kpi,publish,serve", str,
        "Stages this worker runs (comma-separated): ingest, correlate, kpi, publish, serve. "
        "Workers with "
        "different stages scale each stage on its own; each stage is its own consumer group "
        "member set only through its topics, so any mix is correct.")

    # --- throughput ----------------------------------------------------------------------
    batch_max: int = _setting(
        "RTCC_BATCH_MAX", 500, int,
        "Events an agent handles as one batch (stream.take_events): outputs and table writes "
        "go out once per batch, and the batch is acknowledged after them (bench/NOTES.md).")
    batch_within_s: float = _setting(
        "RTCC_BATCH_WITHIN_S", 0.01, float,
        "Longest wait for a batch to fill: the most batching adds to an event's latency.")

    checkpoint_interval_s: float = _setting(
        "RTCC_CHECKPOINT_S", 1.0, float,
        "How often a stateful stage writes its tables and acks the events behind them "
        "(agents/checkpoint.py): writes to a key in between reach the changelog once. A "
        "crash replays at most this much work. 0: after every batch.")
    checkpoint_beside: str = _setting(
        "RTCC_CHECKPOINT_BESIDE", "auto", _beside_mode,
        "How a stateful stage writes a due checkpoint: on, in a task beside the stage, a few "
        "hundred keys at a time, so that the events arriving meanwhile are not held (p99 at "
        "1,000 events/s ~25 % lower), but on a backlog ~13 % less throughput; off, with the "
        "stage waiting for it; auto, beside unless more than RTCC_BATCH_MAX events of the "
        "stage's partitions are waiting to be read (catching up). bench/NOTES.md sections "
        "33-34.")
    producer_linger_s: float = _setting(
        "RTCC_PRODUCER_LINGER_S", 0.005, float,
        "How long the producer waits to fill a batch before sending it: fewer, larger "
        "produce requests for at most this much added latency.")
    broker_session_timeout_s: float = _setting(
        "RTCC_BROKER_SESSION_TIMEOUT_S", 10.0, float,
        "How long the group waits for a worker that stopped heartbeating before its "
        "partitions go to the others. A crashed worker's partitions are silent this long "
        "(Faust's default, 60 s, paused the picture a minute after each kill -9; heartbeats "
        "come from the consumer's own thread, so a busy worker still sends them).")
    fetch_max_wait_s: float = _setting(
        "RTCC_FETCH_MAX_WAIT_S", 0.02, float,
        "Longest time the broker holds a worker's fetch when the partitions in it have "
        "less than RTCC_FETCH_MIN_BYTES new. A partition with records still buffered joins "
        "the next fetch only after the one in flight returns, so this is also how long a "
        "busy partition can wait behind quiet ones (streams/fetching.py; Faust fixes it at "
        "1.5 s).")
    fetch_min_bytes: int = _setting(
        "RTCC_FETCH_MIN_BYTES", 16384, int,
        "How much new data the broker waits for (up to RTCC_FETCH_MAX_WAIT_S) before it "
        "answers a worker's fetch. 1 (Kafka's default): at once, a fetch per record or two "
        "on a live feed, each listing every assigned partition; more: fewer, fuller "
        "fetches, each stage up to the wait later (streams/fetching.py).")
    producer_max_batch_bytes: int = _setting(
        "RTCC_PRODUCER_MAX_BATCH_BYTES", 256 * 1024, int,
        "Largest produce batch per partition, in bytes.")

    # --- topics --------------------------------------------------------------------------
    topic_prefix: str = _setting(
        "RTCC_TOPIC_PREFIX", "", str,
        "Prefix of every topic name (lets several test runs share one broker).")
    topic_partitions: int = _setting(
        "RTCC_TOPIC_PARTITIONS", 4, int, "Partitions of every topic the app creates.")
    topic_replication: int = _setting(
        "RTCC_TOPIC_REPLICATION", 1, int, "Replication factor of every topic the app creates.")

    # --- validation ----------------------------------------------------------------------
    service_areas_file: Path = _setting(
        "RTCC_SERVICE_AREAS_FILE", DEFAULTS_DIR / "service_areas.yaml", Path,
        "YAML file of service areas (bounding boxes per agency); events outside are invalid.")
    taxonomy_file: Path = _setting(
        "RTCC_TAXONOMY_FILE", DEFAULTS_DIR / "taxonomy.yaml", Path,
        "YAML file mapping call-type codes and texts to categories and priorities.")
    max_clock_skew_s: float = _setting(
        "RTCC_MAX_CLOCK_SKEW_S", 300.0, float,
        "An event time further than this in the future is invalid.")
    min_event_year: int = _setting(
        "RTCC_MIN_EVENT_YEAR", 2000, int, "Event times before this year are invalid.")
    max_message_bytes: int = _setting(
        "RTCC_MAX_MESSAGE_BYTES", 256 * 1024, int,
        "Source messages larger than this are dead-lettered unread.")
    hotspot_cell_resolution: int = _setting(
        "RTCC_CELL_RESOLUTION", 9, int,
        "H3 resolution of the spatial cell of each event (9: ~0.1 km2).")
    partition_cell_resolution: int = _setting(
        "RTCC_PARTITION_CELL_RESOLUTION", 6, int,
        "H3 resolution of the key of the normalised topic (6: ~36 km2), so nearby events "
        "meet in one partition.")

    # --- correlation -------------------------------------------------------------------
    lateness_s: float = _setting(
        "RTCC_LATENESS_S", 5.0, float,
        "Event-time disorder tolerated within one source partition; events are applied in "
        "event-time order once every source has passed them by this much. It is also the "
        "least delay of an SA update on live feeds: raise it for feeds that deliver late.")
    live_window_s: float = _setting(
        "RTCC_LIVE_WINDOW_S", 300.0, float,
        "A source whose newest event time is within this of its ingest clock is live: when "
        "caught up, it vouches for event time up to that clock.")
    idle_s: float = _setting(
        "RTCC_IDLE_S", 5.0, float,
        "A source partition silent this long (ingest wall clock) no longer holds event time "
        "back, while its owner reports it; one whose reports stop this long holds again.")
    mark_interval_s: float = _setting(
        "RTCC_MARK_INTERVAL_S", 0.1, float,
        "How often ingest writes progress marks into the normalised topic: the longest a "
        "correlation partition waits to hear of a source whose events go to other "
        "partitions (one message per partition carries every source: bench/NOTES.md, "
        "section 19).")
    duplicate_radius_m: float = _setting(
        "RTCC_DUPLICATE_RADIUS_M", 80.0, float, "Calls this close (and in time) are one event.")
    duplicate_window_s: float = _setting(
        "RTCC_DUPLICATE_WINDOW_S", 600.0, float, "Calls received this close in time may merge.")
    report_radius_m: float = _setting(
        "RTCC_REPORT_RADIUS_M", 250.0, float,
        "A community report this close to an active incident is linked to it.")
    report_window_s: float = _setting(
        "RTCC_REPORT_WINDOW_S", 3600.0, float,
        "...if made up to this long after the incident's call.")
    cluster_min_reports: int = _setting(
        "RTCC_CLUSTER_MIN_REPORTS", 3, int,
        "Unlinked similar reports in one area within the window that make a cluster.")
    cluster_window_s: float = _setting(
        "RTCC_CLUSTER_WINDOW_S", 3600.0, float, "Window of community clusters.")
    incident_ttl_s: float = _setting(
        "RTCC_INCIDENT_TTL_S", 4 * 3600.0, float,
        "An open incident without events for this long (event time) is closed.")

    # --- partners: audiences, serving, gateway --------------------------------------------
    audiences_file: Path = _setting(
        "RTCC_AUDIENCES_FILE", DEFAULTS_DIR / "audiences.yaml", Path,
        "Audience policies: what operator, crisis, community and public partners may see.")
    redis_stream_maxlen: int = _setting(
        "RTCC_REDIS_STREAM_MAXLEN", 10_000, int,
        "Updates kept per audience in its Redis Stream: how far back a dashboard can resume.")
    serve_batch: int = _setting(
        "RTCC_SERVE_BATCH", 500, int, "Updates written to Redis per pipelined round trip.")
    gateway_host: str = _setting(
        "RTCC_GATEWAY_HOST", "127.0.0.1", str, "Interface of the partner HTTP gateway.")
    gateway_port: int = _setting(
        "RTCC_GATEWAY_PORT", 8080, int, "Port of the partner HTTP gateway.")
    gateway_heartbeat_s: float = _setting(
        "RTCC_GATEWAY_HEARTBEAT_S", 15.0, float,
        "SSE comment sent this often on a quiet stream, so proxies keep the connection.")
    cap_sender: str = _setting(
        "RTCC_CAP_SENDER", "rtcc-streams@example.org", str,
        "CAP <sender> of hotspot alerts: the operating agency's address.")

    # --- replay --------------------------------------------------------------------------
    shared_data_dir: Path = _setting(
        "RTCC_SHARED_DATA_DIR", REPO_ROOT.parent / "shared" / "data", Path,
        "Folder of the public data sets used by `rtcc replay` and the tests.")

    def __post_init__(self) -> None:
        # The Redis password file goes into the URL that every Redis client is built from.
        if self.redis_password_file:
            password = read_secret("RTCC_REDIS_PASSWORD_FILE", self.redis_password_file)
            object.__setattr__(self, "redis_url", with_password(self.redis_url, password))

    @property
    def redis_namespace(self) -> str:
        """Prefix of every Redis key: one deployment's keys never meet another's."""
        return f"{self.topic_prefix}rtcc:"

    def topic(self, name: str) -> str:
        """The full name of a topic, with the deployment's prefix."""
        return f"{self.topic_prefix}{name}"

    def as_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment (default: this process's) that makes a child process load exactly
        these settings: how tests and benchmarks start workers on their own deployment."""
        env = dict(os.environ if base is None else base)
        for f in fields(self):
            env[f.metadata["setting"].env] = str(getattr(self, f.name))
        return env

    @classmethod
    def documented(cls) -> list[tuple[str, str, object]]:
        """(env var, doc, effective value) for every setting."""
        current = cls()
        return [
            (f.metadata["setting"].env, f.metadata["setting"].doc,
             _shown(f.metadata["setting"], getattr(current, f.name)))
            for f in fields(cls)
        ]


def _shown(setting: Setting, value: object) -> object:
    """A setting's value as `rtcc config` may print it: secrets and URL passwords hidden."""
    if setting.secret:
        return "(set)" if value else ""
    if isinstance(value, str) and "://" in value:
        return _without_password(value)
    return value


def read_secret(env: str, path: str) -> str:
    """A secret from a file (a mounted Kubernetes/Docker secret): its text, without the
    final newline. An unreadable or empty file stops start-up, naming the variable."""
    try:
        text = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"{env}={path!r}: cannot read: {exc.strerror}") from None
    if not text:
        raise ValueError(f"{env}={path!r}: the file is empty")
    return text


def load() -> Settings:
    """Settings from the current environment (read anew at each call, for tests)."""
    return Settings()
