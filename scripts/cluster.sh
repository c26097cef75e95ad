#!/usr/bin/env bash
# Bring up / tear down the real-server test topology for pgactor:
# a PostgreSQL primary plus one streaming hot-standby replica (two with
# --replicas 2), all on 127.0.0.1, each with its own data directory under
# DIR, and pgbouncer in transaction pooling mode in front of the primary.
# The primary accepts TLS (and still plain connections); the replicas have
# ssl = off, so tests have one server without TLS.
#
#   scripts/cluster.sh up DIR [--primary-port P] [--replica-port R] [--replicas N]
#   scripts/cluster.sh down DIR
#   scripts/cluster.sh status DIR
#
# `up` prints the environment file (DIR/env, KEY=value lines) on stdout, so
# callers can do `set -a; eval "$(scripts/cluster.sh up DIR)"; set +a` or
# source DIR/env afterwards. All progress/diagnostics go to stderr.
#
# PostgreSQL refuses to run as root: when invoked as root the servers are
# created and run as the `postgres` OS user (created if missing) and DIR is
# chown'ed to it. When invoked as a normal user, the servers run as that user.
# pgbouncer runs as the same user; as root it is installed with apt-get when
# missing, like the PostgreSQL binaries.
#
# Environment overrides:
#   PG_BIN                   directory holding initdb/pg_ctl/... (default:
#                            newest /usr/lib/postgresql/*/bin with initdb)
#   PGACTOR_PORT_BASE        first port tried when picking free ports (55432)
#   PGACTOR_PORT_LIMIT       last port tried (PGACTOR_PORT_BASE + 2000)
#   PGACTOR_START_TIMEOUT    seconds to wait for a server / replication (60)
#
# --replicas 2 adds a second streaming replica of the primary (DIR/replica2,
# PGACTOR_REPLICA2_URL/_DATA/_PORT in the env file), for tests of several
# read replicas; it costs a second base backup, so it is opt-in (default 1).
#
# Layout of DIR:
#   DIR/.pgactor-cluster     marker (down refuses to delete dirs without it)
#   DIR/primary, DIR/replica data directories (and DIR/replica2 with --replicas 2)
#   DIR/s                    unix socket directory (shared, sockets differ by port)
#   DIR/tls                  a throw-away CA (ca.crt), the primary's certificate
#                            (server.crt: DNS localhost, IP 127.0.0.1), a client
#                            certificate for the role pgactor_cert (client.crt/.key)
#                            and a second CA that signed nothing (other-ca.crt)
#   DIR/bouncer              pgbouncer.ini, userlist.txt, pid file
#   DIR/*.log                initdb/basebackup/server/pgbouncer logs
#   DIR/env                  the environment file
#
# Restarting a server from a test: run pg_ctl as $PGACTOR_PG_USER and ALWAYS
# pass `-l DIR/<name>.log` (or send stdio to /dev/null): without -l the
# postmaster inherits pg_ctl's stdout/stderr, so a caller that waits for EOF
# on captured output (e.g. Rust's Command::output()) hangs forever. Ports
# live in postgresql.conf, so a plain `pg_ctl -D DATA -l LOG -w start` works.
#
# pgbouncer (PGACTOR_BOUNCER_URL): pool_mode = transaction, trust auth (users
# not in userlist.txt are looked up through auth_user), every database of the
# primary (`*`), default_pool_size = PGACTOR_BOUNCER_POOL_SIZE (4) server
# connections per database and user, so clients really share them. Its admin
# console is the `pgbouncer` database on the same port.
set -euo pipefail

PROG=${0##*/}
DB_SUPERUSER=postgres            # database role used by the tests
MARKER=.pgactor-cluster
PORT_BASE=${PGACTOR_PORT_BASE:-55432}
PORT_LIMIT=${PGACTOR_PORT_LIMIT:-$((PORT_BASE + 2000))}
START_TIMEOUT=${PGACTOR_START_TIMEOUT:-60}
REPLICA_APP_NAME=pgactor_replica
REPLICA2_APP_NAME=pgactor_replica2
CERT_USER=pgactor_cert           # role that logs in with a client certificate only
PASSWORD_USER=pgactor_password   # role that logs in with a password (scram) only
PASSWORD_SECRET=pgactor-s3cret   # its password (test-only)
BOUNCER_POOL_SIZE=4              # server connections per (database, user)

# Globals filled in by the functions below.
PG_BIN=${PG_BIN:-}
RUN_USER=""        # OS user that owns and runs the servers
DIR=""
SOCK_DIR=""
TLS_DIR=""
PRIMARY_DATA=""
REPLICA_DATA=""
REPLICA2_DATA=""
PRIMARY_PORT=""
REPLICA_PORT=""
REPLICA2_PORT=""
PRIMARY_PORT_AUTO=0
REPLICA_PORT_AUTO=0
REPLICAS=1         # streaming replicas: 1, or 2 with --replicas 2
BOUNCER_BIN=""
BOUNCER_DIR=""
BOUNCER_PORT=""

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    cat >&2 <<EOF
usage: $PROG up DIR [--primary-port P] [--replica-port R] [--replicas N]
       $PROG down DIR
       $PROG status DIR
EOF
    exit 2
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# ---------------------------------------------------------------------------
# Tooling: PostgreSQL binaries and the OS user that runs the servers.
# ---------------------------------------------------------------------------

# Print the newest /usr/lib/postgresql/*/bin that contains server binaries.
find_pg_bin() {
    local d found=""
    while IFS= read -r d; do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
            found=$d
        fi
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V)
    [ -n "$found" ] && printf '%s\n' "$found"
}

install_postgres() {
    log "PostgreSQL server binaries not found; installing with apt-get (this takes a while)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends postgresql postgresql-client >&2 \
        || die "apt-get install postgresql failed"
}

ensure_pg_bin() {
    if [ -n "$PG_BIN" ]; then
        if [ ! -x "$PG_BIN/initdb" ] || [ ! -x "$PG_BIN/pg_ctl" ]; then
            die "PG_BIN=$PG_BIN does not contain initdb/pg_ctl"
        fi
    else
        PG_BIN=$(find_pg_bin || true)
        if [ -z "$PG_BIN" ]; then
            if is_root; then
                install_postgres
                PG_BIN=$(find_pg_bin || true)
                [ -n "$PG_BIN" ] || die "installed postgresql but found no /usr/lib/postgresql/*/bin/initdb"
            else
                die "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin." \
                    "Install them (e.g. 'sudo apt-get install -y postgresql') or set PG_BIN."
            fi
        fi
    fi
    local b
    for b in initdb pg_ctl postgres pg_basebackup psql; do
        [ -x "$PG_BIN/$b" ] || die "$PG_BIN/$b is missing (install postgresql and postgresql-client)"
    done
}

ensure_openssl() {
    command -v openssl >/dev/null 2>&1 \
        || die "the openssl command is missing (it makes the test certificates): install it (e.g. 'sudo apt-get install -y openssl')"
}

ensure_run_user() {
    if ! is_root; then
        RUN_USER=$(id -un)
        return
    fi
    RUN_USER=postgres
    if ! id -u "$RUN_USER" >/dev/null 2>&1; then
        log "creating OS user '$RUN_USER' (PostgreSQL refuses to run as root)"
        useradd --system --user-group --home-dir /var/lib/postgresql --create-home \
            --shell /bin/bash "$RUN_USER" || die "could not create OS user '$RUN_USER'"
    fi
}

# Run a command as USER (the current user needs no switching). Always runs
# from / so an inaccessible cwd (e.g. /root) does not upset the PG tools.
as_user() {
    local user=$1
    shift
    if [ "$user" = "$(id -un)" ]; then
        (cd / && "$@")
    elif is_root; then
        (cd / && runuser -u "$user" -- "$@")
    else
        die "cannot run '$1' as '$user' (we are $(id -un), not root)"
    fi
}

as_run_user() { as_user "$RUN_USER" "$@"; }

# Run a PostgreSQL binary as the run user.
pgx() {
    local b=$1
    shift
    as_run_user "$PG_BIN/$b" "$@"
}

# Ask pgbouncer's admin console (database `pgbouncer`) and print the result.
bouncer_q() {
    local port=$1 sql=$2
    PGCONNECT_TIMEOUT=3 "$PG_BIN/psql" -X -w -A -t -q \
        -d "host=127.0.0.1 port=$port user=$DB_SUPERUSER dbname=pgbouncer" \
        -c "$sql" 2>/dev/null
}

# Query a server over TCP (trust auth) and print the unaligned result.
psql_q() {
    local port=$1 sql=$2
    PGCONNECT_TIMEOUT=3 "$PG_BIN/psql" -X -w -A -t -q \
        -d "host=127.0.0.1 port=$port user=$DB_SUPERUSER dbname=postgres" \
        -c "$sql" 2>/dev/null
}

# ---------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------

# A port is in use when any TCP socket has it as its local port, listening
# or not: a client connection that was given it as its ephemeral port makes
# a listener's bind fail as surely as another server does.
port_in_use() {
    local port=$1
    if command -v ss >/dev/null 2>&1; then
        [ -n "$(ss -tanH "sport = :$port" 2>/dev/null)" ]
    else
        # Connecting succeeds only if something listens.
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
    fi
}

# pick_free_port [EXCLUDED_PORT...] -> prints a port nothing listens on.
pick_free_port() {
    local p x skip
    for ((p = PORT_BASE; p <= PORT_LIMIT; p++)); do
        skip=0
        for x in "$@"; do
            if [ "$x" = "$p" ]; then skip=1; fi
        done
        [ "$skip" -eq 0 ] || continue
        if ! port_in_use "$p"; then
            printf '%s\n' "$p"
            return 0
        fi
    done
    die "no free TCP port in $PORT_BASE..$PORT_LIMIT"
}

# ---------------------------------------------------------------------------
# Configuration helpers
# ---------------------------------------------------------------------------

# set_conf FILE KEY VALUE: replace any `KEY = ...` line with `KEY = VALUE`.
# VALUE is written verbatim (quote strings yourself: "'127.0.0.1'").
# Edits happen as the run user so the file keeps its owner.
set_conf() {
    local file=$1 key=$2 value=$3
    as_run_user sed -i -e "/^[[:space:]]*${key}[[:space:]]*=/d" "$file"
    # shellcheck disable=SC2016 # expanded by the inner sh
    as_run_user sh -c 'printf "%s = %s\n" "$2" "$3" >> "$1"' sh "$file" "$key" "$value"
}

# ---------------------------------------------------------------------------
# TLS material (made fresh by every `up`; EC keys, so it takes milliseconds;
# openssl's output goes to DIR/tls.log)
# ---------------------------------------------------------------------------

# new_key_and_csr NAME SUBJECT: TLS_DIR/NAME.key (0600) and TLS_DIR/NAME.csr.
new_key_and_csr() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$TLS_DIR/$1.key" -out "$TLS_DIR/$1.csr" -subj "$2" >>"$DIR/tls.log" 2>&1
    chmod 0600 "$TLS_DIR/$1.key"
}

# new_ca NAME SUBJECT: a self-signed CA, TLS_DIR/NAME.crt and NAME.key.
new_ca() {
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$TLS_DIR/$1.key" -out "$TLS_DIR/$1.crt" -days 3650 -subj "$2" >>"$DIR/tls.log" 2>&1
    chmod 0600 "$TLS_DIR/$1.key"
}

# issue NAME SUBJECT EXTENSIONS: TLS_DIR/NAME.crt signed by TLS_DIR/ca.
issue() {
    local name=$1 subject=$2 ext=$3
    new_key_and_csr "$name" "$subject"
    printf '%s\n' "$ext" >"$TLS_DIR/$name.ext"
    openssl x509 -req -in "$TLS_DIR/$name.csr" -CA "$TLS_DIR/ca.crt" -CAkey "$TLS_DIR/ca.key" \
        -set_serial "0x$(openssl rand -hex 8)" -days 3650 -extfile "$TLS_DIR/$name.ext" \
        -out "$TLS_DIR/$name.crt" >>"$DIR/tls.log" 2>&1
    rm -f "$TLS_DIR/$name.csr" "$TLS_DIR/$name.ext"
}

# The CA, the primary's certificate (valid for host=localhost and
# host=127.0.0.1, so verify-full works with both), a client certificate
# for $CERT_USER and a second CA. Owned by the run user: the server refuses
# a key file that is not its own (or root's) with mode 0600.
make_certs() {
    log "making a test CA and certificates in $TLS_DIR"
    mkdir -p "$TLS_DIR"
    new_ca ca "/CN=pgactor test CA"
    issue server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth"
    issue client "/CN=$CERT_USER" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
    new_ca other-ca "/CN=pgactor unrelated CA"
    rm -f "$TLS_DIR/other-ca.key"
    chmod 0644 "$TLS_DIR"/*.crt
    if is_root && [ "$RUN_USER" != root ]; then
        chown -R "$RUN_USER:" "$TLS_DIR"
    fi
}

write_primary_conf() {
    local conf=$PRIMARY_DATA/postgresql.conf
    set_conf "$conf" listen_addresses "'127.0.0.1'"
    set_conf "$conf" port "$PRIMARY_PORT"
    set_conf "$conf" unix_socket_directories "'$SOCK_DIR'"
    set_conf "$conf" cluster_name "'pgactor_primary'"
    set_conf "$conf" max_connections 200
    set_conf "$conf" wal_level replica
    set_conf "$conf" max_wal_senders 10
    set_conf "$conf" max_replication_slots 10
    set_conf "$conf" wal_keep_size "'256MB'"
    set_conf "$conf" hot_standby on
    set_conf "$conf" fsync off
    set_conf "$conf" synchronous_commit off
    set_conf "$conf" full_page_writes off
    set_conf "$conf" logging_collector off
    set_conf "$conf" log_line_prefix "'%m [%p] %q%u@%d '"
    # Lets tests see from outside which statements the adapter sent.
    set_conf "$conf" shared_preload_libraries "'pg_stat_statements'"
    set_conf "$conf" pg_stat_statements.track all
    # TLS on; plain connections stay allowed (pg_hba has `host` lines).
    set_conf "$conf" ssl on
    set_conf "$conf" ssl_cert_file "'$TLS_DIR/server.crt'"
    set_conf "$conf" ssl_key_file "'$TLS_DIR/server.key'"
    # Client certificates are checked against the same CA.
    set_conf "$conf" ssl_ca_file "'$TLS_DIR/ca.crt'"
}

# Objects every test may rely on; made before the base backup so the
# replica has them too.
init_primary_objects() {
    psql_q "$PRIMARY_PORT" 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements' >/dev/null \
        || die "cannot create extension pg_stat_statements on the primary"
    psql_q "$PRIMARY_PORT" "CREATE ROLE $CERT_USER LOGIN" >/dev/null \
        || die "cannot create role $CERT_USER on the primary"
    psql_q "$PRIMARY_PORT" "CREATE ROLE $PASSWORD_USER LOGIN PASSWORD '$PASSWORD_SECRET'" >/dev/null \
        || die "cannot create role $PASSWORD_USER on the primary"
}

write_primary_hba() {
    # shellcheck disable=SC2016 # $1 is expanded by the inner sh
    as_run_user sh -c 'cat > "$1"' sh "$PRIMARY_DATA/pg_hba.conf" <<EOF
# pgactor test topology: trust everything local (test-only!), except that
# $CERT_USER logs in over TLS with a client certificate and never otherwise;
# $PASSWORD_USER with its password only.
# TYPE    DATABASE     USER            ADDRESS        METHOD
hostssl   all          $CERT_USER      127.0.0.1/32   cert
hostnossl all          $CERT_USER      127.0.0.1/32   reject
host      all          $PASSWORD_USER  127.0.0.1/32   scram-sha-256
local     all          all                          trust
host      all          all           127.0.0.1/32   trust
host      all          all           ::1/128        trust
local     replication  all                          trust
host      replication  all           127.0.0.1/32   trust
host      replication  all           ::1/128        trust
EOF
}

# write_replica_conf DATA PORT NAME: a replica starts from a copy of the
# primary's postgresql.conf; NAME is its cluster_name, and so the
# application_name it streams under.
write_replica_conf() {
    local conf=$1/postgresql.conf
    set_conf "$conf" port "$2"
    set_conf "$conf" unix_socket_directories "'$SOCK_DIR'"
    set_conf "$conf" cluster_name "'$3'"
    set_conf "$conf" hot_standby on
    set_conf "$conf" hot_standby_feedback on
    # Reconnect quickly after the primary is restarted by a test (default 5s).
    set_conf "$conf" wal_retrieve_retry_interval "'200ms'"
    # The one server without TLS: tests check that sslmode=require refuses
    # it and prefer falls back to plain text. (Cheaper than a third server;
    # the copied pg_hba's hostssl line then logs that it cannot match, and
    # $CERT_USER cannot log in here.)
    set_conf "$conf" ssl off
}

# ---------------------------------------------------------------------------
# Server lifecycle
# ---------------------------------------------------------------------------

# start_server NAME DATA PORT_VAR AUTO
# Starts the server logging to DIR/NAME.log. If AUTO=1 and the port was
# grabbed by someone else in the meantime, picks another and retries.
start_server() {
    local name=$1 data=$2 port_var=$3 auto=$4
    local logf=$DIR/$name.log attempt port
    for attempt in 1 2 3 4 5; do
        port=${!port_var}
        log "starting $name on 127.0.0.1:$port"
        local mark=0
        if [ -f "$logf" ]; then mark=$(wc -l <"$logf"); fi
        if pgx pg_ctl -D "$data" -l "$logf" -w -t "$START_TIMEOUT" -s start >&2; then
            return 0
        fi
        if [ "$auto" -eq 1 ] && tail -n +"$((mark + 1))" "$logf" 2>/dev/null \
            | grep -qE 'could not bind|Address already in use|could not create any TCP/IP sockets'; then
            local new
            new=$(pick_free_port "$port" "$PRIMARY_PORT" "$REPLICA_PORT" "$REPLICA2_PORT")
            log "port $port was taken; retrying $name on $new (attempt $attempt)"
            printf -v "$port_var" '%s' "$new"
            set_conf "$data/postgresql.conf" port "$new"
            continue
        fi
        return 1
    done
    return 1
}

# stop_server DATA: fast shutdown as the data dir's owner; never fails.
stop_server() {
    local data=$1 owner
    [ -f "$data/PG_VERSION" ] || return 0
    [ -f "$data/postmaster.pid" ] || return 0
    owner=$(stat -c %U "$data")
    if [ -n "$PG_BIN" ] && [ -x "$PG_BIN/pg_ctl" ]; then
        if as_user "$owner" "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 30 -s stop >&2 2>/dev/null; then
            return 0
        fi
        as_user "$owner" "$PG_BIN/pg_ctl" -D "$data" -m immediate -w -t 30 -s stop >&2 2>/dev/null || true
    else
        # No pg_ctl: signal the postmaster directly (SIGINT = fast shutdown).
        local pid
        pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)
        if [ -n "$pid" ]; then
            kill -INT "$pid" 2>/dev/null || true
        fi
    fi
    return 0
}

server_running() {
    local data=$1
    [ -f "$data/PG_VERSION" ] || return 1
    as_user "$(stat -c %U "$data")" "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1
}

init_primary() {
    log "initdb primary in $PRIMARY_DATA"
    pgx initdb -D "$PRIMARY_DATA" -U "$DB_SUPERUSER" --auth=trust -E UTF8 --locale=C \
        --no-sync --no-instructions >"$DIR/initdb.log" 2>&1 \
        || die "initdb failed (see $DIR/initdb.log)"
    write_primary_conf
    write_primary_hba
}

start_primary() {
    start_server primary "$PRIMARY_DATA" PRIMARY_PORT "$PRIMARY_PORT_AUTO" \
        || die "primary failed to start"
}

# init_replica DATA PORT NAME: a base backup of the primary in DATA,
# configured as the standby NAME on PORT.
init_replica() {
    local data=$1 port=$2 name=$3
    log "pg_basebackup $name from 127.0.0.1:$PRIMARY_PORT into $data"
    pgx pg_basebackup -R -X stream -c fast --no-sync -D "$data" \
        -h 127.0.0.1 -p "$PRIMARY_PORT" -U "$DB_SUPERUSER" -w \
        >"$DIR/basebackup.log" 2>&1 \
        || die "pg_basebackup failed (see $DIR/basebackup.log)"
    # Drop any pid file copied from the primary (not normally included).
    as_run_user rm -f "$data/postmaster.pid"
    write_replica_conf "$data" "$port" "$name"
}

start_replica() {
    start_server replica "$REPLICA_DATA" REPLICA_PORT "$REPLICA_PORT_AUTO" \
        || die "replica failed to start"
}

start_replica2() {
    start_server replica2 "$REPLICA2_DATA" REPLICA2_PORT 1 \
        || die "replica2 failed to start"
}

# wait_for_replication PORT NAME: until the standby on PORT is in recovery
# and the primary streams to NAME.
wait_for_replication() {
    local port=$1 name=$2
    log "waiting for $name to stream from the primary"
    local deadline=$((SECONDS + START_TIMEOUT)) rec streaming
    while :; do
        rec=$(psql_q "$port" 'SELECT pg_is_in_recovery()' || true)
        streaming=$(psql_q "$PRIMARY_PORT" \
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND application_name = '$name'" \
            || true)
        if [ "$rec" = t ] && [ -n "$streaming" ] && [ "$streaming" -ge 1 ]; then
            return 0
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            die "replication not established after ${START_TIMEOUT}s" \
                "(replica in recovery: '${rec:-?}', streaming senders: '${streaming:-?}')"
        fi
        sleep 0.2
    done
}

# ---------------------------------------------------------------------------
# pgbouncer (transaction pooling) in front of the primary
# ---------------------------------------------------------------------------

find_pgbouncer() {
    local b
    for b in "$(command -v pgbouncer 2>/dev/null || true)" /usr/sbin/pgbouncer /usr/bin/pgbouncer; do
        if [ -n "$b" ] && [ -x "$b" ]; then
            printf '%s\n' "$b"
            return 0
        fi
    done
    return 1
}

ensure_pgbouncer() {
    BOUNCER_BIN=$(find_pgbouncer || true)
    [ -z "$BOUNCER_BIN" ] || return 0
    is_root || die "pgbouncer not found. Install it (e.g. 'sudo apt-get install -y pgbouncer')."
    log "pgbouncer not found; installing with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends pgbouncer >&2 \
        || { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends pgbouncer >&2; } \
        || die "apt-get install pgbouncer failed"
    BOUNCER_BIN=$(find_pgbouncer || true)
    [ -n "$BOUNCER_BIN" ] || die "installed pgbouncer but cannot find its binary"
}

# tokio-postgres sends client_encoding, user, database and application_name
# (pgbouncer knows them all) and `options` when the DSN has some; JDBC-style
# clients send extra_float_digits. pgbouncer refuses unknown startup
# parameters unless they are listed here.
write_bouncer_conf() {
    as_run_user mkdir -p "$BOUNCER_DIR"
    # shellcheck disable=SC2016 # expanded by the inner sh
    as_run_user sh -c 'cat > "$1"' sh "$BOUNCER_DIR/userlist.txt" <<EOF
"$DB_SUPERUSER" ""
EOF
    # shellcheck disable=SC2016 # expanded by the inner sh
    as_run_user sh -c 'cat > "$1"' sh "$BOUNCER_DIR/pgbouncer.ini" <<EOF
;; pgactor test topology: transaction pooling in front of the primary (test-only trust auth!)
[databases]
* = host=127.0.0.1 port=$PRIMARY_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir = $SOCK_DIR
pool_mode = transaction
default_pool_size = $BOUNCER_POOL_SIZE
max_client_conn = 2000
auth_type = trust
auth_file = $BOUNCER_DIR/userlist.txt
auth_user = $DB_SUPERUSER
admin_users = $DB_SUPERUSER
ignore_startup_parameters = extra_float_digits,options
logfile = $DIR/pgbouncer.log
pidfile = $BOUNCER_DIR/pgbouncer.pid
log_connections = 0
log_disconnections = 0
EOF
}

bouncer_pid() {
    local pid
    pid=$(head -n 1 "$BOUNCER_DIR/pgbouncer.pid" 2>/dev/null || true)
    case $pid in '' | *[!0-9]*) return 1 ;; esac
    printf '%s\n' "$pid"
}

bouncer_running() {
    local pid
    pid=$(bouncer_pid) && kill -0 "$pid" 2>/dev/null
}

# The lines pgbouncer logged after line MARK of its log (no pipe into
# `grep -q`: under pipefail its early exit can fail the pipeline).
bouncer_log_since() {
    tail -n +"$(($1 + 1))" "$DIR/pgbouncer.log" 2>/dev/null || true
}

# Start pgbouncer as the run user (it refuses to run as root) and wait until
# it is up on its TCP port, its admin console answers and a query goes
# through it to the primary. pgbouncer 1.18 keeps running when it cannot bind
# its TCP port (on its unix socket only), and whatever holds the port could
# answer a query, so the bind is checked in its log once it says "process
# up"; when the port was taken meanwhile it retries on another.
start_bouncer() {
    local attempt deadline mark logged taken=""
    for attempt in 1 2 3 4 5; do
        # shellcheck disable=SC2086 # $taken is a list of ports
        [ -n "$BOUNCER_PORT" ] || BOUNCER_PORT=$(pick_free_port "$PRIMARY_PORT" "$REPLICA_PORT" "$REPLICA2_PORT" $taken)
        write_bouncer_conf
        log "starting pgbouncer (transaction pooling) on 127.0.0.1:$BOUNCER_PORT"
        mark=0
        if [ -f "$DIR/pgbouncer.log" ]; then mark=$(wc -l <"$DIR/pgbouncer.log"); fi
        # The soft descriptor limit (often 1024) is below what max_client_conn needs.
        # shellcheck disable=SC2016 # expanded by the inner sh
        as_run_user sh -c 'ulimit -n 4096 2>/dev/null || true; exec "$@"' sh \
            "$BOUNCER_BIN" -d -q "$BOUNCER_DIR/pgbouncer.ini" >&2 || true
        deadline=$((SECONDS + START_TIMEOUT))
        while :; do
            logged=$(bouncer_log_since "$mark")
            case $logged in
                *"Address already in use"*) break ;;
                *"process up"*)
                    if [ "$(bouncer_q "$BOUNCER_PORT" 'SHOW VERSION' || true)" != "" ] \
                        && [ "$(psql_q "$BOUNCER_PORT" 'SELECT 1' || true)" = 1 ]; then
                        return 0
                    fi
                    ;;
            esac
            [ "$SECONDS" -lt "$deadline" ] || break
            sleep 0.1
        done
        stop_bouncer
        case $logged in
            *"Address already in use"*)
                log "port $BOUNCER_PORT was taken; retrying pgbouncer on another port (attempt $attempt)"
                taken="$taken $BOUNCER_PORT"
                BOUNCER_PORT=""
                continue
                ;;
        esac
        die "pgbouncer did not answer on 127.0.0.1:$BOUNCER_PORT within ${START_TIMEOUT}s"
    done
    die "pgbouncer could not find a free port"
}

# stop_bouncer: immediate shutdown (SIGTERM), then SIGKILL; never fails.
stop_bouncer() {
    local pid
    [ -n "$BOUNCER_DIR" ] || return 0
    pid=$(bouncer_pid) || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    return 0
}

write_bouncer_env() {
    cat >>"$DIR/env" <<EOF
PGACTOR_BOUNCER_URL=postgres://$DB_SUPERUSER@127.0.0.1:$BOUNCER_PORT/postgres?sslmode=disable
PGACTOR_BOUNCER_PORT=$BOUNCER_PORT
PGACTOR_BOUNCER_POOL_SIZE=$BOUNCER_POOL_SIZE
EOF
}

write_env() {
    local url_q='?sslmode=disable'
    cat >"$DIR/env" <<EOF
PGACTOR_PRIMARY_URL=postgres://$DB_SUPERUSER@127.0.0.1:$PRIMARY_PORT/postgres$url_q
PGACTOR_REPLICA_URL=postgres://$DB_SUPERUSER@127.0.0.1:$REPLICA_PORT/postgres$url_q
PGACTOR_PG_BIN=$PG_BIN
PGACTOR_PRIMARY_DATA=$PRIMARY_DATA
PGACTOR_REPLICA_DATA=$REPLICA_DATA
PGACTOR_PRIMARY_PORT=$PRIMARY_PORT
PGACTOR_REPLICA_PORT=$REPLICA_PORT
PGACTOR_PG_USER=$RUN_USER
PGACTOR_CLUSTER_DIR=$DIR
PGACTOR_SOCKET_DIR=$SOCK_DIR
PGACTOR_CA_FILE=$TLS_DIR/ca.crt
PGACTOR_OTHER_CA_FILE=$TLS_DIR/other-ca.crt
PGACTOR_CLIENT_CERT=$TLS_DIR/client.crt
PGACTOR_CLIENT_KEY=$TLS_DIR/client.key
PGACTOR_CERT_USER=$CERT_USER
PGACTOR_PASSWORD_USER=$PASSWORD_USER
PGACTOR_PASSWORD=$PASSWORD_SECRET
EOF
    if [ "$REPLICAS" -ge 2 ]; then
        cat >>"$DIR/env" <<EOF
PGACTOR_REPLICA2_URL=postgres://$DB_SUPERUSER@127.0.0.1:$REPLICA2_PORT/postgres$url_q
PGACTOR_REPLICA2_DATA=$REPLICA2_DATA
PGACTOR_REPLICA2_PORT=$REPLICA2_PORT
EOF
    fi
    chmod 0644 "$DIR/env"
}

dump_logs() {
    local f
    for f in "$DIR"/*.log; do
        [ -f "$f" ] || continue
        printf '\n===== tail of %s =====\n' "$f" >&2
        tail -n 40 "$f" >&2 || true
    done
}

# ---------------------------------------------------------------------------
# DIR handling
# ---------------------------------------------------------------------------

# Validate and absolutize DIR (must exist already).
resolve_dir() {
    DIR=$(cd "$1" && pwd -P) || die "cannot access directory '$1'"
    case $DIR in
        *[!A-Za-z0-9/._+-]*) die "DIR '$DIR' contains unsupported characters (use [A-Za-z0-9/._+-])" ;;
    esac
    [ "$DIR" != / ] || die "refusing to use / as DIR"
    SOCK_DIR=$DIR/s
    TLS_DIR=$DIR/tls
    PRIMARY_DATA=$DIR/primary
    REPLICA_DATA=$DIR/replica
    REPLICA2_DATA=$DIR/replica2
    BOUNCER_DIR=$DIR/bouncer
}

dir_is_empty() { [ -z "$(ls -A "$1" 2>/dev/null)" ]; }

load_existing_env() {
    [ -f "$DIR/env" ] || return 1
    local k v
    while IFS='=' read -r k v; do
        case $k in
            PGACTOR_PG_BIN) [ -n "$PG_BIN" ] || PG_BIN=$v ;;
            PGACTOR_PRIMARY_PORT) PRIMARY_PORT=$v ;;
            PGACTOR_REPLICA_PORT) REPLICA_PORT=$v ;;
            PGACTOR_REPLICA2_PORT) REPLICA2_PORT=$v ;;
            PGACTOR_PG_USER) RUN_USER=$v ;;
        esac
    done <"$DIR/env"
}

# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------

UP_DONE=0
on_up_exit() {
    local rc=$?
    if [ "$UP_DONE" -ne 1 ] && [ "$rc" -ne 0 ]; then
        log "bringing up the cluster failed (exit $rc); logs follow"
        dump_logs
        stop_bouncer
        stop_server "$REPLICA2_DATA"
        stop_server "$REPLICA_DATA"
        stop_server "$PRIMARY_DATA"
        log "servers stopped; $DIR left for inspection (remove with: $0 down $DIR)"
    fi
    exit "$rc"
}

cmd_up() {
    [ $# -ge 1 ] || usage
    local dir_arg=$1
    shift
    while [ $# -gt 0 ]; do
        case $1 in
            --primary-port) [ $# -ge 2 ] || usage; PRIMARY_PORT=$2; shift 2 ;;
            --primary-port=*) PRIMARY_PORT=${1#*=}; shift ;;
            --replica-port) [ $# -ge 2 ] || usage; REPLICA_PORT=$2; shift 2 ;;
            --replica-port=*) REPLICA_PORT=${1#*=}; shift ;;
            --replicas) [ $# -ge 2 ] || usage; REPLICAS=$2; shift 2 ;;
            --replicas=*) REPLICAS=${1#*=}; shift ;;
            -h | --help) usage ;;
            *) log "unknown argument: $1"; usage ;;
        esac
    done
    local p
    for p in "$PRIMARY_PORT" "$REPLICA_PORT"; do
        case $p in
            '') ;;
            *[!0-9]*) die "port '$p' is not a number" ;;
            *) if [ "$p" -lt 1 ] || [ "$p" -gt 65535 ]; then die "port '$p' out of range"; fi ;;
        esac
    done
    case $REPLICAS in
        1 | 2) ;;
        *) die "--replicas must be 1 or 2, not '$REPLICAS'" ;;
    esac
    if [ -n "$PRIMARY_PORT" ] && [ "$PRIMARY_PORT" = "$REPLICA_PORT" ]; then
        die "--primary-port and --replica-port must differ"
    fi

    ensure_pg_bin
    ensure_openssl
    ensure_pgbouncer
    ensure_run_user

    mkdir -p "$dir_arg" || die "cannot create '$dir_arg'"
    resolve_dir "$dir_arg"

    # Unix socket paths are limited to 107 bytes: DIR/s/.s.PGSQL.NNNNN
    local sock_probe="$SOCK_DIR/.s.PGSQL.65535"
    [ "${#sock_probe}" -le 107 ] \
        || die "DIR '$DIR' is too long for a unix socket path (${#sock_probe} > 107 bytes); use a short path like /tmp/pga.XXXX"

    if [ -f "$DIR/$MARKER" ]; then
        # Idempotency: a healthy cluster in DIR is reused as-is.
        local want_p=$PRIMARY_PORT want_r=$REPLICA_PORT
        if server_running "$PRIMARY_DATA" && server_running "$REPLICA_DATA" && bouncer_running \
            && { [ "$REPLICAS" -lt 2 ] || server_running "$REPLICA2_DATA"; } \
            && load_existing_env; then
            if { [ -z "$want_p" ] || [ "$want_p" = "$PRIMARY_PORT" ]; } \
                && { [ -z "$want_r" ] || [ "$want_r" = "$REPLICA_PORT" ]; }; then
                log "cluster in $DIR is already up; reusing it"
                cat "$DIR/env"
                return 0
            fi
            die "cluster in $DIR is already up on ports $PRIMARY_PORT/$REPLICA_PORT; run '$0 down $DIR' first"
        fi
        log "stale cluster in $DIR; wiping it"
        PRIMARY_PORT=$want_p
        REPLICA_PORT=$want_r
        stop_bouncer
        stop_server "$REPLICA2_DATA"
        stop_server "$REPLICA_DATA"
        stop_server "$PRIMARY_DATA"
        find "$DIR" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
    elif ! dir_is_empty "$DIR"; then
        die "'$DIR' exists, is not empty and is not a pgactor cluster dir; refusing to use it"
    fi

    for p in "$PRIMARY_PORT" "$REPLICA_PORT"; do
        if [ -n "$p" ] && port_in_use "$p"; then
            die "port $p is already in use"
        fi
    done

    touch "$DIR/$MARKER"
    if is_root && [ "$RUN_USER" != root ]; then
        chown "$RUN_USER:" "$DIR"
    fi
    chmod 0755 "$DIR"
    as_run_user test -w "$DIR" -a -x "$DIR" \
        || die "OS user '$RUN_USER' cannot write to $DIR (are all parent directories traversable? use /tmp)"
    as_run_user mkdir -p "$SOCK_DIR"

    trap on_up_exit EXIT
    local t0=$SECONDS

    make_certs
    init_primary
    if [ -z "$PRIMARY_PORT" ]; then
        PRIMARY_PORT_AUTO=1
        PRIMARY_PORT=$(pick_free_port "$REPLICA_PORT")
        set_conf "$PRIMARY_DATA/postgresql.conf" port "$PRIMARY_PORT"
    fi
    start_primary
    init_primary_objects

    if [ -z "$REPLICA_PORT" ]; then
        REPLICA_PORT_AUTO=1
        REPLICA_PORT=$(pick_free_port "$PRIMARY_PORT")
    fi
    init_replica "$REPLICA_DATA" "$REPLICA_PORT" "$REPLICA_APP_NAME"
    start_replica
    wait_for_replication "$REPLICA_PORT" "$REPLICA_APP_NAME"
    if [ "$REPLICAS" -ge 2 ]; then
        REPLICA2_PORT=$(pick_free_port "$PRIMARY_PORT" "$REPLICA_PORT")
        init_replica "$REPLICA2_DATA" "$REPLICA2_PORT" "$REPLICA2_APP_NAME"
        start_replica2
        wait_for_replication "$REPLICA2_PORT" "$REPLICA2_APP_NAME"
    fi
    start_bouncer

    write_env
    write_bouncer_env
    UP_DONE=1
    local second=""
    [ "$REPLICAS" -lt 2 ] || second=", replica2 127.0.0.1:$REPLICA2_PORT"
    log "cluster up in $((SECONDS - t0))s: primary 127.0.0.1:$PRIMARY_PORT, replica 127.0.0.1:$REPLICA_PORT$second, pgbouncer 127.0.0.1:$BOUNCER_PORT (run as OS user $RUN_USER)"
    cat "$DIR/env"
}

cmd_down() {
    [ $# -eq 1 ] || usage
    if [ ! -e "$1" ]; then
        log "$1 does not exist; nothing to do"
        return 0
    fi
    [ -d "$1" ] || die "'$1' is not a directory"
    resolve_dir "$1"
    if [ ! -f "$DIR/$MARKER" ] && ! dir_is_empty "$DIR"; then
        die "'$DIR' is not a pgactor cluster dir (no $MARKER); refusing to delete it"
    fi
    load_existing_env || true
    [ -n "$PG_BIN" ] || PG_BIN=$(find_pg_bin || true)
    stop_bouncer
    stop_server "$REPLICA2_DATA"
    stop_server "$REPLICA_DATA"
    stop_server "$PRIMARY_DATA"
    rm -rf "$DIR"
    log "cluster in $DIR stopped and removed"
}

cmd_status() {
    [ $# -eq 1 ] || usage
    resolve_dir "$1"
    [ -f "$DIR/$MARKER" ] || die "'$DIR' is not a pgactor cluster dir"
    load_existing_env || true
    [ -n "$PG_BIN" ] || PG_BIN=$(find_pg_bin || true)
    [ -n "$PG_BIN" ] || die "PostgreSQL binaries not found"
    local rc=0 name data
    for name in primary replica replica2; do
        data=$DIR/$name
        # The second replica exists only with `up --replicas 2`.
        [ "$name" != replica2 ] || [ -f "$data/PG_VERSION" ] || continue
        if server_running "$data"; then
            log "$name: running"
        else
            log "$name: not running"
            rc=1
        fi
    done
    if bouncer_running; then
        log "pgbouncer: running"
    else
        log "pgbouncer: not running"
        rc=1
    fi
    if [ -f "$DIR/env" ]; then cat "$DIR/env"; fi
    return "$rc"
}

main() {
    [ $# -ge 1 ] || usage
    local cmd=$1
    shift
    case $cmd in
        up) cmd_up "$@" ;;
        down) cmd_down "$@" ;;
        status) cmd_status "$@" ;;
        -h | --help | help) usage ;;
        *) log "unknown command: $cmd"; usage ;;
    esac
}

main "$@"
