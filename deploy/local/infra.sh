#!/usr/bin/env bash
# Local infrastructure for rtcc-streams without Docker: a real Apache Kafka broker
# (single-node KRaft, run from its Maven Central jars or $KAFKA_HOME) and a Redis server,
# both as plain local processes.
#
#   deploy/local/infra.sh up       start what is missing (reuses anything already answering)
#   deploy/local/infra.sh down     stop what this script started, nothing else
#   deploy/local/infra.sh status   one line per service
#   deploy/local/infra.sh env      `export RTCC_...` lines: eval "$(deploy/local/infra.sh env)"
#   deploy/local/infra.sh sasl-up    a second, separate broker that requires SASL/SCRAM logins
#   deploy/local/infra.sh sasl-down  stop it;  sasl-env: `export` lines to use it
#
# See deploy/local/README.md for the environment variables.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

# Canonical, so it compares equal to what /proc/PID/cwd shows.
VAR_DIR="$(realpath -m "${RTCC_VAR_DIR:-$ROOT/var}")"
RUN_DIR="$VAR_DIR/run"
LOG_DIR="$VAR_DIR/log"
KAFKA_DIR="$VAR_DIR/kafka"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_CONFIG="$KAFKA_DIR/server.properties"
KAFKA_LOG="$LOG_DIR/kafka.log"
KAFKA_PID="$RUN_DIR/kafka.pid"
REDIS_LOG="$LOG_DIR/redis.log"
REDIS_PID="$RUN_DIR/redis.pid"

KAFKA_VERSION="${RTCC_KAFKA_VERSION:-4.4.0}"
CACHE_DIR="${RTCC_CACHE_DIR:-${HOME:-/tmp}/.cache/rtcc-streams}"
KAFKA_CACHE="$CACHE_DIR/kafka-$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_CACHE/libs"
# Written last, inside the downloaded tree: a cache without it is incomplete.
KAFKA_CACHE_MARKER="$KAFKA_CACHE/.complete"

# The addresses this script itself serves on (fixed, they are in server.properties).
LOCAL_KAFKA="127.0.0.1:9092"
LOCAL_REDIS_URL="redis://127.0.0.1:6379/0"

KAFKA_START_TIMEOUT="${RTCC_KAFKA_START_TIMEOUT:-90}" # seconds
STOP_TIMEOUT=30                                       # seconds from SIGTERM to SIGKILL

say() { printf 'infra: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

need() { # need CMD "how to install"
    command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"
}

# ---------------------------------------------------------------------------------------
# Probes
# ---------------------------------------------------------------------------------------

# kafka_answers "host:port[,host:port...]": exit 0 when a broker answers a Metadata request
# and lists at least one live broker. A bare TCP connect is not enough: in KRaft the
# listener can be up while the broker is still fenced, and a port may belong to anything.
kafka_answers() {
    python3 - "$1" <<'PY'
import socket, struct, sys

def probe(addr):
    addr = addr.strip()
    if "://" in addr:
        addr = addr.split("://", 1)[1]
    host, _, port = addr.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    client = b"rtcc-infra"
    # Request header v1 + Metadata v4 body (v0-v3 were removed in Kafka 4.0):
    # api_key=3, api_version=4, correlation_id, client_id, topics=[] (none), no auto-create.
    body = struct.pack(">hhih", 3, 4, 0x5EED, len(client)) + client + struct.pack(">ib", 0, 0)
    with socket.create_connection((host, int(port)), timeout=2) as s:
        s.settimeout(3)
        s.sendall(struct.pack(">i", len(body)) + body)
        def read(n):
            buf = b""
            while len(buf) < n:
                chunk = s.recv(n - len(buf))
                if not chunk:
                    raise ConnectionError("closed")
                buf += chunk
            return buf
        size, = struct.unpack(">i", read(4))
        resp = read(size)
    corr, _throttle, brokers = struct.unpack(">iii", resp[:12])
    return corr == 0x5EED and brokers >= 1

for a in sys.argv[1].split(","):
    try:
        if a.strip() and probe(a):
            sys.exit(0)
    except Exception:
        pass
sys.exit(1)
PY
}

redis_answers() { # redis_answers URL
    [ "$(redis-cli -u "$1" ping 2>/dev/null)" = "PONG" ]
}

# True when host:port is the address this script would serve on itself.
is_local_kafka() {
    case "${1#*://}" in 127.0.0.1:9092 | localhost:9092) return 0 ;; *) return 1 ;; esac
}
is_local_redis() {
    local hostport="${1#*://}"
    hostport="${hostport#*@}"   # drop user:password@
    hostport="${hostport%%/*}"  # drop /db
    case "$hostport" in 127.0.0.1 | localhost | 127.0.0.1:6379 | localhost:6379) return 0 ;; *) return 1 ;; esac
}

# ours PIDFILE PATTERN: print the pid when the pid file names a live process whose command
# line contains PATTERN. The pattern check keeps a recycled pid from ever being signalled.
ours() {
    local pid
    [ -s "$1" ] || return 1
    pid="$(tr -dc '0-9' <"$1")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2" || return 1
    echo "$pid"
}
kafka_ours() { ours "$KAFKA_PID" "$KAFKA_CONFIG"; }
# Redis rewrites its command line to "redis-server 127.0.0.1:6379", which any Redis could
# show; ours is the one whose working directory is our --dir.
redis_ours() {
    local pid
    pid="$(ours "$REDIS_PID" "redis-server")" &&
        [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$VAR_DIR/redis" ] &&
        echo "$pid"
}

# The address in use, as `up` decides it: a configured RTCC_* address (reported down when it
# does not answer, unless it is just an alias of the local default), else the local default.
kafka_address() {
    if [ -n "${RTCC_KAFKA_BOOTSTRAP:-}" ] && kafka_answers "$RTCC_KAFKA_BOOTSTRAP"; then
        echo "$RTCC_KAFKA_BOOTSTRAP"
    elif [ -n "${RTCC_KAFKA_BOOTSTRAP:-}" ] && ! is_local_kafka "$RTCC_KAFKA_BOOTSTRAP"; then
        return 1
    elif kafka_answers "$LOCAL_KAFKA"; then
        echo "$LOCAL_KAFKA"
    else
        return 1
    fi
}
redis_address() {
    if [ -n "${RTCC_REDIS_URL:-}" ] && redis_answers "$RTCC_REDIS_URL"; then
        echo "$RTCC_REDIS_URL"
    elif [ -n "${RTCC_REDIS_URL:-}" ] && ! is_local_redis "$RTCC_REDIS_URL"; then
        return 1
    elif redis_answers "$LOCAL_REDIS_URL"; then
        echo "$LOCAL_REDIS_URL"
    else
        return 1
    fi
}

# ---------------------------------------------------------------------------------------
# Kafka
# ---------------------------------------------------------------------------------------

check_java() {
    need java "install a JDK 17 (Debian: apt-get install openjdk-17-jre-headless)"
    local v
    v="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
    case "$v" in
        1.* | [0-9] | 1[0-6]) die "java $v found but Kafka 4 needs Java 17 or newer (Debian: apt-get install openjdk-17-jre-headless)" ;;
    esac
}

# Print the classpath for kafka.Kafka, downloading the jars on first use.
kafka_classpath() {
    if [ -n "${KAFKA_HOME:-}" ]; then
        [ -d "$KAFKA_HOME/libs" ] || die "KAFKA_HOME=$KAFKA_HOME has no libs/ directory (expected an Apache Kafka binary distribution)"
        echo "$KAFKA_HOME/libs/*"
        return
    fi
    if [ ! -f "$KAFKA_CACHE_MARKER" ]; then
        need mvn "install Maven to fetch the Kafka jars (Debian: apt-get install maven), or set KAFKA_HOME to an Apache Kafka distribution"
        say "fetching Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS (once)"
        mkdir -p "$CACHE_DIR"
        # Download into a temporary sibling and rename it into place only when complete,
        # so an interrupted download is never mistaken for a usable cache.
        local tmp mvn_log
        tmp="$(mktemp -d "$CACHE_DIR/.kafka-$KAFKA_VERSION.XXXXXX")"
        mvn_log="$LOG_DIR/maven.log"
        trap 'rm -rf "$tmp"' EXIT
        if ! mvn -q -B -f "$HERE/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
            dependency:copy-dependencies -DoutputDirectory="$tmp/libs" -DincludeScope=runtime \
            >"$mvn_log" 2>&1; then
            tail -n 30 "$mvn_log" >&2
            die "could not fetch the Kafka $KAFKA_VERSION jars with Maven (full output: $mvn_log)"
        fi
        ls "$tmp/libs"/kafka_2.13-*.jar >/dev/null 2>&1 || die "Maven ran but fetched no kafka_2.13 jar (see $mvn_log)"
        chmod 755 "$tmp" # mktemp -d makes it private; the cache is not secret
        touch "$tmp/.complete"
        rm -rf "$KAFKA_CACHE" # leftovers of an older, unmarked layout
        # mv -T fails instead of nesting if a concurrent run has just put its copy in place.
        mv -T "$tmp" "$KAFKA_CACHE" 2>/dev/null || [ -f "$KAFKA_CACHE_MARKER" ] ||
            die "could not move the downloaded jars into $KAFKA_CACHE"
        rm -rf "$tmp"
        trap - EXIT
    fi
    echo "$KAFKA_LIBS/*"
}

write_kafka_config() {
    local data_escaped
    # Escape for the sed replacement (&, \ and the | delimiter) and for Java properties (\).
    data_escaped="$(printf '%s' "$KAFKA_DATA" | sed -e 's/[\\]/\\\\\\\\/g' -e 's/[&|]/\\&/g')"
    sed "s|@DATA_DIR@|$data_escaped|" "$HERE/server.properties" >"$KAFKA_CONFIG.tmp"
    mv "$KAFKA_CONFIG.tmp" "$KAFKA_CONFIG"
}

kafka_up() {
    if [ "$KAFKA_TARGET" = env ]; then
        say "kafka: using RTCC_KAFKA_BOOTSTRAP=$RTCC_KAFKA_BOOTSTRAP (external, nothing started)"
        return
    fi

    local pid
    if kafka_answers "$LOCAL_KAFKA"; then
        if pid="$(kafka_ours)"; then
            say "kafka: already running at $LOCAL_KAFKA (ours, pid $pid); log: $KAFKA_LOG"
        else
            say "kafka: reusing the broker already answering at $LOCAL_KAFKA (external, will not be stopped)"
        fi
        return
    fi

    mkdir -p "$KAFKA_DATA" "$LOG_DIR" "$RUN_DIR"

    if pid="$(kafka_ours)"; then
        # Started by an earlier `up` that is still coming up (or one that was interrupted).
        say "kafka: ours (pid $pid) is starting; log: $KAFKA_LOG"
    else
        if (exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null || (exec 3<>/dev/tcp/127.0.0.1/9093) 2>/dev/null; then
            die "kafka: port 9092 or 9093 on 127.0.0.1 is taken by something that is not a working Kafka broker"
        fi
        local cp
        cp="$(kafka_classpath)"
        write_kafka_config
        # The storage tool and the broker log through the same Log4j2 config and file.
        local log_opts=(-Dlog4j2.configurationFile="$HERE/log4j2.properties" -Drtcc.kafka.log.file="$KAFKA_LOG")

        if [ ! -f "$KAFKA_DATA/meta.properties" ]; then
            local cluster_id
            cluster_id="$(java "${log_opts[@]}" -cp "$cp" kafka.tools.StorageTool random-uuid 2>>"$KAFKA_LOG" | tail -n 1)" ||
                cluster_id=""
            [ -n "$cluster_id" ] || { tail -n 30 "$KAFKA_LOG" >&2; die "kafka: StorageTool random-uuid failed; log: $KAFKA_LOG"; }
            say "kafka: formatting $KAFKA_DATA (cluster id $cluster_id)"
            # No --standalone: the quorum is static (controller.quorum.voters), which the
            # tool rejects in combination with --standalone.
            java "${log_opts[@]}" -cp "$cp" kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_CONFIG" \
                >>"$KAFKA_LOG" 2>&1 || { tail -n 30 "$KAFKA_LOG" >&2; die "kafka: storage format failed; log: $KAFKA_LOG"; }
        fi

        say "kafka: starting Kafka $( [ -n "${KAFKA_HOME:-}" ] && echo "from $KAFKA_HOME" || echo "$KAFKA_VERSION") at $LOCAL_KAFKA; log: $KAFKA_LOG"
        # The log4j File appender and the JVM's own stdout/stderr share the log (both
        # append), so a JVM that dies before logging is configured still leaves a trace.
        # 9>&-: the long-lived broker must not inherit (and so hold) the infra.lock fd.
        nohup java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true "${log_opts[@]}" \
            -cp "$cp" kafka.Kafka "$KAFKA_CONFIG" >>"$KAFKA_LOG" 2>&1 </dev/null 9>&- &
        pid=$!
        echo "$pid" >"$KAFKA_PID"
    fi

    # Ready = the broker answers a Metadata request listing itself (it is unfenced).
    local start=$SECONDS start_us=${EPOCHREALTIME/[.,]/} dots=0
    while ! kafka_answers "$LOCAL_KAFKA"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            printf '\n' >&2
            tail -n 30 "$KAFKA_LOG" >&2
            rm -f "$KAFKA_PID"
            die "kafka: the broker exited during startup; log: $KAFKA_LOG"
        fi
        if [ $((SECONDS - start)) -ge "$KAFKA_START_TIMEOUT" ]; then
            printf '\n' >&2
            tail -n 30 "$KAFKA_LOG" >&2
            say "kafka: not ready after ${KAFKA_START_TIMEOUT}s; stopping it (pid $pid)"
            stop_pid kafka "$pid" "$KAFKA_PID"
            die "kafka: startup timed out; log: $KAFKA_LOG"
        fi
        printf '.' >&2
        dots=1
        sleep 1
    done
    local ms=$(((${EPOCHREALTIME/[.,]/} - start_us) / 1000))
    [ "$dots" = 0 ] || printf '\n' >&2
    say "kafka: ready at $LOCAL_KAFKA after $((ms / 1000)).$((ms % 1000 / 100))s (ours, pid $pid); log: $KAFKA_LOG"
}

# ---------------------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------------------

redis_up() {
    if [ "$REDIS_TARGET" = env ]; then
        say "redis: using RTCC_REDIS_URL=$RTCC_REDIS_URL (external, nothing started)"
        return
    fi

    local pid
    if redis_answers "$LOCAL_REDIS_URL"; then
        if pid="$(redis_ours)"; then
            say "redis: already running at 127.0.0.1:6379 (ours, pid $pid); log: $REDIS_LOG"
        else
            say "redis: reusing the server already answering at 127.0.0.1:6379 (external, will not be stopped)"
        fi
        return
    fi

    if (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
        die "redis: port 6379 on 127.0.0.1 is taken by something that does not answer PING"
    fi
    mkdir -p "$LOG_DIR" "$RUN_DIR" "$VAR_DIR/redis"
    say "redis: starting at 127.0.0.1:6379 (no persistence); log: $REDIS_LOG"
    # --daemonize: redis-server forks, writes the pid file and returns. 9>&- as for Kafka.
    redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$VAR_DIR/redis" --daemonize yes \
        --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" 9>&- ||
        die "redis: redis-server failed to start; log: $REDIS_LOG"

    local _
    for _ in $(seq 1 50); do
        redis_answers "$LOCAL_REDIS_URL" && {
            say "redis: ready at 127.0.0.1:6379 (ours, pid $(redis_ours || echo '?')); log: $REDIS_LOG"
            return
        }
        sleep 0.2
    done
    tail -n 30 "$REDIS_LOG" >&2 || true
    die "redis: no PONG after 10s; log: $REDIS_LOG"
}

# ---------------------------------------------------------------------------------------
# Planning: decide what `up` will use and check every prerequisite before starting anything,
# so a missing tool or a dead RTCC_* address never leaves one service half set up.
# ---------------------------------------------------------------------------------------

KAFKA_TARGET=local # env: RTCC_KAFKA_BOOTSTRAP answers and is not our local address
REDIS_TARGET=local # env: likewise for RTCC_REDIS_URL

plan_up() {
    need python3 "install Python 3 (Debian: apt-get install python3)"
    need redis-cli "install Redis (Debian: apt-get install redis-server)"

    # A configured address that answers is used as is. One that does not answer is an
    # error, unless it is the local default address (e.g. exported by `env` before a
    # `down`): then the local service is (re)started there. Starting a local service for
    # an unreachable remote one would leave the app pointing at the dead address.
    if [ -n "${RTCC_KAFKA_BOOTSTRAP:-}" ] && ! is_local_kafka "$RTCC_KAFKA_BOOTSTRAP"; then
        kafka_answers "$RTCC_KAFKA_BOOTSTRAP" ||
            die "kafka: RTCC_KAFKA_BOOTSTRAP=$RTCC_KAFKA_BOOTSTRAP does not answer (unset it to use a local broker)"
        KAFKA_TARGET="env"
    fi
    if [ -n "${RTCC_REDIS_URL:-}" ] && ! is_local_redis "$RTCC_REDIS_URL"; then
        redis_answers "$RTCC_REDIS_URL" ||
            die "redis: RTCC_REDIS_URL=$RTCC_REDIS_URL does not answer PING (unset it to use a local Redis)"
        REDIS_TARGET="env"
    fi

    if [ "$KAFKA_TARGET" = local ] && ! kafka_answers "$LOCAL_KAFKA"; then
        check_java
        if [ -z "${KAFKA_HOME:-}" ] && [ ! -f "$KAFKA_CACHE_MARKER" ]; then
            need mvn "install Maven to fetch the Kafka jars (Debian: apt-get install maven), or set KAFKA_HOME to an Apache Kafka distribution"
        fi
    fi
    if [ "$REDIS_TARGET" = local ] && ! redis_answers "$LOCAL_REDIS_URL"; then
        need redis-server "install Redis (Debian: apt-get install redis-server)"
    fi
}

# ---------------------------------------------------------------------------------------
# Stopping
# ---------------------------------------------------------------------------------------

stop_pid() { # stop_pid NAME PID PIDFILE: SIGTERM, wait, then SIGKILL
    local name=$1 pid=$2 pidfile=$3 waited=0
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$waited" -ge $((STOP_TIMEOUT * 5)) ]; then
            say "$name: still running after ${STOP_TIMEOUT}s; sending SIGKILL to pid $pid"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.2
        waited=$((waited + 1))
    done
    rm -f "$pidfile"
}

service_down() { # service_down NAME PIDFILE OURS_FUNCTION
    local name=$1 pidfile=$2 pid
    if pid="$($3)"; then
        say "$name: stopping pid $pid"
        stop_pid "$name" "$pid" "$pidfile"
        say "$name: stopped"
    else
        [ -e "$pidfile" ] && rm -f "$pidfile"
        say "$name: nothing of ours is running (external or reused services are left alone)"
    fi
}

# ---------------------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------------------

cmd_up() {
    mkdir -p "$RUN_DIR" "$LOG_DIR"
    # Serialise concurrent `up`/`down` runs on the same var dir.
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$RUN_DIR/infra.lock"
        flock -w 180 9 || die "another infra.sh is still running on $VAR_DIR"
    fi
    plan_up
    kafka_up
    redis_up
    say "ready; for the app: eval \"\$($0 env)\""
}

cmd_down() {
    if [ ! -d "$RUN_DIR" ]; then
        say "nothing of ours to stop (no $RUN_DIR)"
        return
    fi
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$RUN_DIR/infra.lock"
        flock -w 180 9 || die "another infra.sh is still running on $VAR_DIR"
    fi
    service_down kafka "$KAFKA_PID" kafka_ours
    service_down redis "$REDIS_PID" redis_ours
}

cmd_status() {
    need python3 "install Python 3 (Debian: apt-get install python3)"
    local addr pid rc=0
    if addr="$(kafka_address)"; then
        if is_local_kafka "$addr" && pid="$(kafka_ours)"; then
            echo "kafka  running  ours (pid $pid)  $addr  log: $KAFKA_LOG"
        else
            echo "kafka  running  external  $addr  log: -"
        fi
    elif pid="$(kafka_ours)"; then
        echo "kafka  starting  ours (pid $pid)  $LOCAL_KAFKA  log: $KAFKA_LOG"; rc=1
    else
        echo "kafka  down  -  ${RTCC_KAFKA_BOOTSTRAP:-$LOCAL_KAFKA}  log: $KAFKA_LOG"; rc=1
    fi
    if ! command -v redis-cli >/dev/null 2>&1; then
        echo "redis  unknown  -  -  (redis-cli not found)"; rc=1
    elif addr="$(redis_address)"; then
        if is_local_redis "$addr" && pid="$(redis_ours)"; then
            echo "redis  running  ours (pid $pid)  $addr  log: $REDIS_LOG"
        else
            echo "redis  running  external  $addr  log: -"
        fi
    else
        echo "redis  down  -  ${RTCC_REDIS_URL:-$LOCAL_REDIS_URL}  log: $REDIS_LOG"; rc=1
    fi
    return "$rc"
}

cmd_env() {
    need python3 "install Python 3 (Debian: apt-get install python3)"
    local addr rc=0
    if addr="$(kafka_address)"; then
        printf 'export RTCC_KAFKA_BOOTSTRAP=%q\n' "$addr"
    else
        say "kafka is not running (run: $0 up)"; rc=1
    fi
    if command -v redis-cli >/dev/null 2>&1 && addr="$(redis_address)"; then
        printf 'export RTCC_REDIS_URL=%q\n' "$addr"
    else
        say "redis is not running (run: $0 up)"; rc=1
    fi
    return "$rc"
}

# ---------------------------------------------------------------------------------------
# A second broker that requires SASL/SCRAM (sasl-up / sasl-down / sasl-env): for trying and
# testing the app's credentials without touching the PLAINTEXT broker on 9092. Its own ports
# and directory (RTCC_SASL_PORT, RTCC_SASL_CONTROLLER_PORT, RTCC_SASL_DIR); its client user is
# RTCC_KAFKA_USERNAME (default rtcc) with the password of RTCC_KAFKA_PASSWORD_FILE or
# RTCC_KAFKA_PASSWORD, else one made up. Passwords live only in that directory (mode 700),
# never in the repository; the users are fixed when the directory is first formatted.
# ---------------------------------------------------------------------------------------

SASL_DIR="$(realpath -m "${RTCC_SASL_DIR:-$VAR_DIR/kafka-sasl}")"
SASL_PORT="${RTCC_SASL_PORT:-9094}"
SASL_CONTROLLER_PORT="${RTCC_SASL_CONTROLLER_PORT:-9095}"
SASL_CONFIG="$SASL_DIR/server.properties"
SASL_DATA="$SASL_DIR/data"
SASL_LOG="$SASL_DIR/kafka.log"
SASL_PID="$SASL_DIR/kafka.pid"
SASL_CLIENT_PASSWORD="$SASL_DIR/client.password"
SASL_USER="${RTCC_KAFKA_USERNAME:-rtcc}"
SASL_BROKER_USER="rtcc-broker" # the broker's own login (inter-broker listener)

sasl_ours() { ours "$SASL_PID" "$SASL_CONFIG"; }

made_up_password() { head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32; }

# The client password into $SASL_CLIENT_PASSWORD (owner-only): from the file or variable the
# app reads, else made up once. Kept to the characters the SCRAM user syntax takes unquoted.
sasl_client_password() {
    local password
    if [ -n "${RTCC_KAFKA_PASSWORD_FILE:-}" ]; then
        password="$(cat "$RTCC_KAFKA_PASSWORD_FILE")" || die "kafka-sasl: cannot read RTCC_KAFKA_PASSWORD_FILE"
    elif [ -n "${RTCC_KAFKA_PASSWORD:-}" ]; then
        password="$RTCC_KAFKA_PASSWORD"
    else
        password="$(made_up_password)"
    fi
    [[ "$password" =~ ^[A-Za-z0-9._~-]+$ ]] ||
        die "kafka-sasl: use a password of letters, digits and . _ ~ - for the local SASL broker"
    [[ "$SASL_USER" =~ ^[A-Za-z0-9._~-]+$ ]] ||
        die "kafka-sasl: use a user name of letters, digits and . _ ~ -"
    (umask 077 && printf '%s' "$password" >"$SASL_CLIENT_PASSWORD")
}

sasl_up() {
    local pid
    if pid="$(sasl_ours)"; then
        say "kafka-sasl: already running at 127.0.0.1:$SASL_PORT (pid $pid); log: $SASL_LOG"
        return
    fi
    check_java
    local port
    for port in "$SASL_PORT" "$SASL_CONTROLLER_PORT"; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            die "kafka-sasl: port $port on 127.0.0.1 is taken (set RTCC_SASL_PORT / RTCC_SASL_CONTROLLER_PORT)"
        fi
    done
    mkdir -p "$SASL_DIR" && chmod 700 "$SASL_DIR"
    mkdir -p "$LOG_DIR" # kafka_classpath logs Maven there
    local cp
    cp="$(kafka_classpath)"
    local log_opts=(-Dlog4j2.configurationFile="$HERE/log4j2.properties" -Drtcc.kafka.log.file="$SASL_LOG")
    if [ ! -f "$SASL_DATA/meta.properties" ]; then
        local broker_password cluster_id client_password
        sasl_client_password
        broker_password="$(made_up_password)"
        client_password="$(cat "$SASL_CLIENT_PASSWORD")"
        (umask 077 && sed -e "s|@PORT@|$SASL_PORT|g" -e "s|@CONTROLLER_PORT@|$SASL_CONTROLLER_PORT|g" \
            -e "s|@DATA_DIR@|$(printf '%s' "$SASL_DATA" | sed -e 's/[\\&|]/\\&/g')|" \
            -e "s|@BROKER_USER@|$SASL_BROKER_USER|" -e "s|@BROKER_PASSWORD@|$broker_password|" \
            "$HERE/server-sasl.properties" >"$SASL_CONFIG")
        cluster_id="$(java "${log_opts[@]}" -cp "$cp" kafka.tools.StorageTool random-uuid 2>>"$SASL_LOG" | tail -n 1)"
        [ -n "$cluster_id" ] || die "kafka-sasl: StorageTool random-uuid failed; log: $SASL_LOG"
        say "kafka-sasl: formatting $SASL_DATA with SCRAM users $SASL_BROKER_USER and $SASL_USER"
        # Kafka 4 (KRaft) keeps SCRAM users in the metadata log: they are added at format time.
        java "${log_opts[@]}" -cp "$cp" kafka.tools.StorageTool format -t "$cluster_id" -c "$SASL_CONFIG" \
            --add-scram "SCRAM-SHA-512=[name=$SASL_BROKER_USER,password=$broker_password]" \
            --add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$client_password]" \
            --add-scram "SCRAM-SHA-256=[name=$SASL_USER,password=$client_password]" \
            >>"$SASL_LOG" 2>&1 || { tail -n 30 "$SASL_LOG" >&2; die "kafka-sasl: storage format failed; log: $SASL_LOG"; }
    fi
    [ -s "$SASL_CLIENT_PASSWORD" ] || die "kafka-sasl: $SASL_DIR is formatted but has no client.password: rm -rf it"
    local lines
    lines="$(wc -l <"$SASL_LOG" 2>/dev/null || echo 0)"
    say "kafka-sasl: starting at 127.0.0.1:$SASL_PORT (SASL_PLAINTEXT, SCRAM); log: $SASL_LOG"
    nohup java -Xms128m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true "${log_opts[@]}" \
        -cp "$cp" kafka.Kafka "$SASL_CONFIG" >>"$SASL_LOG" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" >"$SASL_PID"
    # Ready when this run's log says so (a Metadata probe would need a SASL login).
    local start=$SECONDS
    until tail -n +"$((lines + 1))" "$SASL_LOG" | grep -q "Kafka Server started"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$SASL_LOG" >&2
            rm -f "$SASL_PID"
            die "kafka-sasl: the broker exited during startup; log: $SASL_LOG"
        fi
        if [ $((SECONDS - start)) -ge "$KAFKA_START_TIMEOUT" ]; then
            tail -n 30 "$SASL_LOG" >&2
            stop_pid kafka-sasl "$pid" "$SASL_PID"
            die "kafka-sasl: not ready after ${KAFKA_START_TIMEOUT}s; log: $SASL_LOG"
        fi
        sleep 0.5
    done
    say "kafka-sasl: ready at 127.0.0.1:$SASL_PORT after $((SECONDS - start))s (pid $pid); for the app: eval \"\$($0 sasl-env)\""
}

sasl_down() {
    local pid
    if pid="$(sasl_ours)"; then
        say "kafka-sasl: stopping pid $pid"
        stop_pid kafka-sasl "$pid" "$SASL_PID"
        say "kafka-sasl: stopped"
    else
        say "kafka-sasl: not running"
    fi
}

sasl_env() {
    [ -s "$SASL_CLIENT_PASSWORD" ] || die "kafka-sasl: not set up (run: $0 sasl-up)"
    printf 'export RTCC_KAFKA_BOOTSTRAP=%q\n' "127.0.0.1:$SASL_PORT"
    printf 'export RTCC_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT\n'
    printf 'export RTCC_KAFKA_SASL_MECHANISM=SCRAM-SHA-512\n'
    printf 'export RTCC_KAFKA_USERNAME=%q\n' "$SASL_USER"
    printf 'export RTCC_KAFKA_PASSWORD_FILE=%q\n' "$SASL_CLIENT_PASSWORD"
    printf 'unset RTCC_KAFKA_PASSWORD\n'
}

usage() { # usage EXIT_CODE
    sed -n '2,13s/^# \{0,1\}//p' "$0" >&2
    exit "$1"
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    sasl-up) sasl_up ;;
    sasl-down) sasl_down ;;
    sasl-env) sasl_env ;;
    -h | --help | help) usage 0 ;;
    *) usage 2 ;;
esac
