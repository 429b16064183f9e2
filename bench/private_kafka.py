"""A private, single-node PLAINTEXT Kafka broker on free ports, for scenarios that stop it.

The shared broker of `make infra-up` (127.0.0.1:9092) is never stopped by a test or a bench;
outage scenarios start their own, as `deploy/local/infra.sh sasl-up` does for its SASL
broker: the jars cached by infra.sh (or $KAFKA_HOME/libs), a config of its own (the
PLAINTEXT template of deploy/local/server.properties with other ports), a data directory of
its own. `stop()` keeps the data directory, so `start()` brings back the same log, as a
restarted broker would.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from streams.config import REPO_ROOT
from streams.processes import free_port

HERE = REPO_ROOT / "deploy" / "local"
KAFKA_VERSION = os.environ.get("RTCC_KAFKA_VERSION", "4.4.0")
CACHE_DIR = Path(os.environ.get("RTCC_CACHE_DIR")
                 or Path(os.environ.get("HOME", "/tmp")) / ".cache" / "rtcc-streams")


def classpath() -> str:
    """The broker's classpath: $KAFKA_HOME/libs, else infra.sh's jar cache (fetched once by
    `deploy/local/infra.sh up` if missing)."""
    if os.environ.get("KAFKA_HOME"):
        return str(Path(os.environ["KAFKA_HOME"]) / "libs" / "*")
    cache = CACHE_DIR / f"kafka-{KAFKA_VERSION}"
    if not (cache / ".complete").exists():
        raise RuntimeError(f"no Kafka jars in {cache}: run `deploy/local/infra.sh up` once")
    return str(cache / "libs" / "*")


def _metadata_answers(port: int) -> bool:
    """A Metadata v4 request answered with at least one live broker (as infra.sh probes)."""
    import struct

    client = b"rtcc-chaos"
    body = struct.pack(">hhih", 3, 4, 0x5EED, len(client)) + client + struct.pack(">ib", 0, 0)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.settimeout(3)
            s.sendall(struct.pack(">i", len(body)) + body)
            buf = b""
            while len(buf) < 4:
                chunk = s.recv(4 - len(buf))
                if not chunk:
                    return False
                buf += chunk
            (size,) = struct.unpack(">i", buf)
            resp = b""
            while len(resp) < size:
                chunk = s.recv(size - len(resp))
                if not chunk:
                    return False
                resp += chunk
        corr, _throttle, brokers = struct.unpack(">iii", resp[:12])
        return corr == 0x5EED and brokers >= 1
    except OSError:
        return False


@dataclass
class PrivateKafka:
    workdir: Path
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def config(self) -> Path:
        return self.workdir / "server.properties"

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    @property
    def log(self) -> Path:
        return self.workdir / "kafka.log"

    def _java(self) -> list[str]:
        return ["java", f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}",
                f"-Drtcc.kafka.log.file={self.log}", "-cp", classpath()]

    def _write_config(self) -> None:
        text = (HERE / "server.properties").read_text()
        text = text.replace("@DATA_DIR@", str(self.data))
        text = re.sub(r"127\.0\.0\.1:9093", f"127.0.0.1:{self.controller_port}", text)
        text = re.sub(r"127\.0\.0\.1:9092", f"127.0.0.1:{self.port}", text)
        self.config.write_text(text)

    def start(self, timeout_s: float = 90.0) -> float:
        """Start (formatting the data directory the first time); seconds until it answers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not (self.data / "meta.properties").exists():
            self._write_config()
            with self.log.open("ab") as out:
                uuid = subprocess.run(self._java() + ["kafka.tools.StorageTool", "random-uuid"],
                                      capture_output=True, text=True, check=True).stdout
                cluster_id = uuid.strip().splitlines()[-1]
                subprocess.run(self._java() + ["kafka.tools.StorageTool", "format", "-t",
                                               cluster_id, "-c", str(self.config)],
                               stdout=out, stderr=subprocess.STDOUT, check=True)
        started = time.monotonic()
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                ["java", "-Xms128m", "-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true"]
                + self._java()[1:] + ["kafka.Kafka", str(self.config)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        while time.monotonic() < started + timeout_s:
            if self.process.poll() is not None:
                raise RuntimeError(f"private Kafka exited; log: {self.log}")
            if _metadata_answers(self.port):
                return time.monotonic() - started
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"private Kafka not ready after {timeout_s:.0f} s; log: {self.log}")

    def stop(self, kill: bool = False, timeout_s: float = 30.0) -> None:
        """SIGTERM (a clean broker shutdown) or SIGKILL; the data directory stays."""
        if self.process is None:
            return
        if self.process.poll() is None:
            (self.process.kill if kill else self.process.terminate)()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def private_kafka(workdir: Path) -> PrivateKafka:
    return PrivateKafka(workdir)


if __name__ == "__main__":  # a quick manual check: start, stop, start again
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        k = PrivateKafka(Path(tmp))
        print(f"up in {k.start():.1f} s at {k.bootstrap}")
        k.stop()
        print(f"restarted in {k.start():.1f} s")
        k.stop()
