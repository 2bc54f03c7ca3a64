#!/usr/bin/env bash
# A one-node Apache Kafka 4 broker (KRaft, broker+controller in one JVM) for development and CI.
#
#   deploy/kafka/kafka.sh fetch    copy the broker jars from Maven Central into deploy/kafka/lib (cached)
#   deploy/kafka/kafka.sh start    format storage once, start the broker, wait until it accepts clients
#   deploy/kafka/kafka.sh stop     stop it and wait until it has exited
#   deploy/kafka/kafka.sh status   exit 0 if it is running and accepts clients, 3 if not
#   deploy/kafka/kafka.sh logs     the tail of the broker log
#   deploy/kafka/kafka.sh reset    stop it and delete its data (topics, offsets)
#
# Environment: XL_KAFKA_PORT (client port, default 9092), XL_KAFKA_CONTROLLER_PORT (default port+1),
# XL_KAFKA_DATA (data dir, default deploy/kafka/data), XL_KAFKA_HEAP (default 512m),
# XL_KAFKA_START_TIMEOUT (seconds, default 90), JAVA_HOME (Java 17+).
#
# XL_KAFKA_SECURE=1 makes it an authenticated broker: SASL/SCRAM-SHA-512 over TLS on the client
# port, a CA and broker certificate made here with openssl ($XL_KAFKA_DATA/tls/ca.pem is what
# clients trust), mutual TLS on the controller port, KRaft's StandardAuthorizer with no access
# unless an ACL grants it (allow.everyone.if.no.acl.found=false), super user "admin". SCRAM users
# (admin plus $XL_KAFKA_USERS, default "xl-ingest xl-detector xl-dispatch xl-ops") get random
# passwords in $XL_KAFKA_DATA/credentials (mode 600, NAME=PASSWORD lines); the ACLs of each stage
# are applied with `python -m xueliang.bus.acls` (see docs/kafka.md). Decided when storage is
# formatted: a data dir stays secure or plaintext.
# Every command is idempotent: start when running and stop when stopped do nothing.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LIB="$HERE/lib"
DATA="${XL_KAFKA_DATA:-$HERE/data}"
PORT="${XL_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${XL_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
HEAP="${XL_KAFKA_HEAP:-512m}"
START_TIMEOUT="${XL_KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${XL_KAFKA_STOP_TIMEOUT:-30}"
SECURE="${XL_KAFKA_SECURE:-0}"
USERS="${XL_KAFKA_USERS:-xl-ingest xl-detector xl-dispatch xl-ops}"
TLS="$DATA/tls"
CREDS="$DATA/credentials"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
PID_FILE="$DATA/kafka.pid"
LOG_DIR="$DATA/kraft"            # Kafka's log.dirs: partitions and metadata
PROPS="$DATA/server.properties"

say() { echo "kafka.sh: $*"; }
die() { echo "kafka.sh: error: $*" >&2; exit 1; }

port_open() {  # a TCP connect to 127.0.0.1:$1 succeeds
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

broker_pid() {  # the pid of our running broker, or nothing
    [[ -f "$PID_FILE" ]] || return 0
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    # the pid must still be a Kafka JVM using this data dir (pids are reused)
    if [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $PROPS"; then
        echo "$pid"
    fi
}

show_log_tail() {
    local f
    for f in "$DATA/stdout.log" "$DATA/server.log"; do
        if [[ -s "$f" ]]; then
            echo "----- last lines of $f -----" >&2
            tail -n 40 "$f" >&2
        fi
    done
}

check_java() {
    command -v "$JAVA" >/dev/null 2>&1 || die "java not found (install Java 17+ or set JAVA_HOME)"
    local v
    v="$("$JAVA" -version 2>&1 | head -n1 | sed -E 's/.*version "([0-9]+).*/\1/')"
    [[ "$v" =~ ^[0-9]+$ && "$v" -ge 17 ]] || die "Kafka 4 needs Java 17+, $JAVA is: $("$JAVA" -version 2>&1 | head -n1)"
}

cmd_fetch() {
    local stamp want
    want="$(sha256sum "$HERE/pom.xml" | cut -d' ' -f1)"
    stamp="$LIB/.pom.sha256"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        say "jars already in $LIB"
        return 0
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn not found (apt-get install -y maven)"
    say "fetching Kafka jars from Maven Central into $LIB"
    local tmp="$LIB.tmp.$$"
    rm -rf "$tmp"
    # (Debian's Maven 3.8 prints stray colour codes even in batch mode: strip them)
    if ! mvn -q -B -Dstyle.color=never -f "$HERE/pom.xml" dependency:copy-dependencies \
            -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 | sed -u 's/\x1b\[[0-9;]*m//g'; then
        rm -rf "$tmp"
        die "mvn dependency:copy-dependencies failed (see above)"
    fi
    ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || { rm -rf "$tmp"; die "no kafka_2.13 jar was fetched"; }
    echo "$want" >"$tmp/.pom.sha256"
    rm -rf "$LIB"
    mv "$tmp" "$LIB"
    say "fetched $(ls "$LIB"/*.jar | wc -l) jars"
}

render_properties() {
    sed -e "s|@PORT@|$PORT|g" -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" -e "s|@LOG_DIR@|$LOG_DIR|g" \
        "$HERE/server.properties.in" >"$PROPS.tmp"
    if [[ "$SECURE" == 1 ]]; then
        # replace the PLAINTEXT listener lines by the authenticated ones, then add the security settings
        sed -i -e '/^listeners=/d' -e '/^advertised.listeners=/d' -e '/^inter.broker.listener.name=/d' \
            -e '/^listener.security.protocol.map=/d' "$PROPS.tmp"
        local admin_pw
        admin_pw="$(cred admin)"
        sed -e "s|@PORT@|$PORT|g" -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" -e "s|@TLS@|$TLS|g" \
            -e "s|@ADMIN_PASSWORD@|$admin_pw|g" "$HERE/server-secure.properties.in" >>"$PROPS.tmp"
        chmod 600 "$PROPS.tmp"
    fi
    mv "$PROPS.tmp" "$PROPS"
}

cred() {  # the password of SCRAM user $1 from $CREDS
    sed -n "s/^$1=//p" "$CREDS"
}

make_secrets() {  # CA, broker certificate (PEM keystore) and SCRAM passwords, once per data dir
    command -v openssl >/dev/null 2>&1 || die "openssl not found (apt-get install -y openssl)"
    mkdir -p "$TLS"
    chmod 700 "$TLS"
    if [[ ! -s "$TLS/broker.pem" ]]; then
        say "making a CA and a broker certificate in $TLS"
        (
            cd "$TLS"
            openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=xueliang-dev-ca" \
                -keyout ca.key -out ca.pem -addext "basicConstraints=critical,CA:TRUE" \
                -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -subj "/CN=xl-broker" -keyout broker.key -out broker.csr 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >broker.ext
            openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 \
                -out broker.crt -extfile broker.ext 2>/dev/null
            openssl pkcs8 -topk8 -nocrypt -in broker.key -out broker.p8
            cat broker.p8 broker.crt ca.pem >broker.pem
            rm -f broker.csr broker.ext broker.key broker.p8 ca.srl
            chmod 600 ./*.key broker.pem
        ) || die "making the certificates failed"
    fi
    if [[ ! -s "$CREDS" ]]; then
        local u
        (
            umask 077
            for u in admin $USERS; do
                echo "$u=$(head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
            done >"$CREDS"
        )
        say "SCRAM users $(echo admin $USERS) with passwords in $CREDS"
    fi
}

java_opts() {
    echo "-Xms$HEAP -Xmx$HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError" \
         "-Djava.awt.headless=true -Dlog4j2.configurationFile=$HERE/log4j2.xml" \
         "-Dxl.kafka.logdir=$DATA -Dkafka.logs.dir=$DATA"
}

format_storage() {
    # a KRaft cluster id is 16 random bytes in URL-safe base64; one starting with '-' reads as an option
    local id=""
    while [[ -z "$id" || "$id" == -* ]]; do
        id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    done
    say "formatting KRaft storage in $LOG_DIR (cluster $id)"
    local scram=() u
    if [[ "$SECURE" == 1 ]]; then
        for u in admin $USERS; do
            scram+=(--add-scram "SCRAM-SHA-512=[name=$u,password=$(cred "$u")]")
        done
    fi
    if ! "$JAVA" -Xmx256m -Dlog4j2.configurationFile="$HERE/log4j2.xml" -Dxl.kafka.logdir="$DATA" \
            -cp "$LIB/*" kafka.tools.StorageTool format --standalone \
            -t "$id" -c "$PROPS" "${scram[@]}" >"$DATA/format.log" 2>&1; then
        cat "$DATA/format.log" >&2
        die "formatting storage failed"
    fi
    echo "$PORT $CONTROLLER_PORT" >"$DATA/ports"
    echo "$SECURE" >"$DATA/secure"
}

wait_ready() {
    local pid="$1" waited=0 deadline=$((SECONDS + START_TIMEOUT))
    while ! port_open "$PORT"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE"
            show_log_tail
            die "the broker exited during start-up (logs in $DATA)"
        fi
        if ((SECONDS >= deadline)); then
            show_log_tail
            die "the broker (pid $pid) did not accept connections on 127.0.0.1:$PORT within ${START_TIMEOUT}s (logs in $DATA)"
        fi
        sleep 0.2
    done
}

cmd_start() {
    local pid
    if [[ -f "$DATA/ports" && "$(cat "$DATA/ports")" != "$PORT $CONTROLLER_PORT" ]]; then
        die "$DATA was formatted for ports $(cat "$DATA/ports") (client, controller), not $PORT $CONTROLLER_PORT: use those ports, another XL_KAFKA_DATA, or '$0 reset'"
    fi
    pid="$(broker_pid)"
    if [[ -n "$pid" ]]; then
        wait_ready "$pid"
        say "already running (pid $pid) on 127.0.0.1:$PORT"
        return 0
    fi
    check_java
    cmd_fetch >/dev/null  # a no-op when the jars match pom.xml
    if port_open "$PORT"; then
        die "127.0.0.1:$PORT is in use by another process (not this broker; set XL_KAFKA_PORT to use another port)"
    fi
    if port_open "$CONTROLLER_PORT"; then
        die "controller port 127.0.0.1:$CONTROLLER_PORT is in use (set XL_KAFKA_CONTROLLER_PORT)"
    fi
    mkdir -p "$DATA"
    local formatted_secure=""
    if [[ -f "$DATA/secure" ]]; then
        formatted_secure="$(cat "$DATA/secure")"
    elif [[ -f "$LOG_DIR/meta.properties" ]]; then
        formatted_secure=0  # formatted before secure mode existed: plaintext
    fi
    if [[ -n "$formatted_secure" && "$formatted_secure" != "$SECURE" ]]; then
        die "$DATA was formatted with XL_KAFKA_SECURE=$formatted_secure, not $SECURE: use another XL_KAFKA_DATA or '$0 reset'"
    fi
    [[ "$SECURE" == 1 ]] && make_secrets
    render_properties
    [[ -f "$LOG_DIR/meta.properties" ]] || format_storage
    local started=$SECONDS
    # shellcheck disable=SC2046
    setsid "$JAVA" $(java_opts) -cp "$LIB/*" kafka.Kafka "$PROPS" \
        </dev/null >"$DATA/stdout.log" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$PID_FILE"
    wait_ready "$pid"
    say "started (pid $pid) on 127.0.0.1:$PORT in $((SECONDS - started))s; data in $DATA"
    if [[ "$SECURE" == 1 ]]; then
        say "SASL_SSL (SCRAM-SHA-512) with ACLs: CA $TLS/ca.pem, users and passwords in $CREDS"
    fi
}

cmd_stop() {
    local pid
    pid="$(broker_pid)"
    if [[ -z "$pid" ]]; then
        rm -f "$PID_FILE"
        say "not running"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            say "broker (pid $pid) did not stop within ${STOP_TIMEOUT}s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.2
    done
    rm -f "$PID_FILE"
    say "stopped (pid $pid)"
}

cmd_status() {
    local pid
    pid="$(broker_pid)"
    if [[ -n "$pid" ]] && port_open "$PORT"; then
        say "running (pid $pid) on 127.0.0.1:$PORT; data in $DATA"
        return 0
    elif [[ -n "$pid" ]]; then
        say "starting (pid $pid), not yet accepting connections on 127.0.0.1:$PORT"
        return 3
    fi
    say "not running"
    return 3
}

locked() {  # run "$@" holding the data dir's lock, so concurrent starts/stops do not race
    mkdir -p "$DATA"
    exec 9>"$DATA/.kafka.sh.lock"
    flock -w 300 9 || die "another kafka.sh holds $DATA/.kafka.sh.lock"
    "$@"
}

case "${1:-}" in
    fetch) cmd_fetch ;;
    start) locked cmd_start ;;
    stop) locked cmd_stop ;;
    status) cmd_status ;;
    logs) tail -n "${2:-100}" "$DATA/server.log" ;;
    reset) locked cmd_stop; rm -rf "$DATA"; say "deleted $DATA" ;;
    *) echo "usage: $0 {fetch|start|stop|status|logs|reset}" >&2; exit 2 ;;
esac
