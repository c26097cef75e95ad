#!/usr/bin/env bash
# Run the whole pgactor test suite against a real PostgreSQL topology
# (primary + streaming replica + pgbouncer in transaction pooling mode)
# brought up by scripts/cluster.sh.
#
#   scripts/test.sh [extra args for `cargo test --all-targets`]
#
# PGACTOR_TEST_SELECT replaces `--all-targets` (scripts/reliability.sh sets
# `--test reliability`); doc tests run only with the default selection.
# The reliability suite's figures table is printed after the run.
#
# PGACTOR_TEST_FEATURES (e.g. `cluster,async-trait`, as CI sets it): once
# the suite and doc tests pass, the unit tests (with the extra args) and the
# doc tests run again built with these crate features. The features change
# how pgactor compiles against ractor, not what it does, so that is where
# they can break; for the whole suite built with them, pass the features
# instead: `scripts/test.sh --features cluster,async-trait`.
#
# The `metrics` feature's test binary (tests/metrics.rs, which needs the
# feature) runs after the doc tests, with the extra args:
# `cargo test --features metrics --test metrics`. So do the `remote`
# feature's (tests/remote.rs) and its doc tests:
# `cargo test --features remote --test remote`, `cargo test --doc --features remote`.
#
# e.g. scripts/test.sh --no-run        # build tests only (still brings up the cluster)
#      scripts/test.sh replica          # filter tests by name
#      scripts/test.sh -- --nocapture   # pass args to the test binaries
#
# The cluster lives in a fresh `mktemp -d /tmp/pga.XXXXXX` and is always torn
# down on exit (set PGACTOR_KEEP_CLUSTER=1 to keep it for debugging). The
# PGACTOR_* variables from the cluster's env file are exported to cargo.
# Doc tests (`cargo test --doc`) run after the main suite, without the extra
# args (and are skipped with --no-run, which cargo rejects for doc tests).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

log() { printf 'test.sh: %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]; then
        PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
        export PATH
    else
        log "error: cargo not found in PATH; install Rust (https://rustup.rs) first"
        exit 1
    fi
fi

CLUSTER_DIR=$(mktemp -d /tmp/pga.XXXXXX)
# The servers may run as the `postgres` OS user (when we are root):
# cluster.sh chowns the directory to it; /tmp itself is world-traversable.
chmod 0755 "$CLUSTER_DIR"

# shellcheck disable=SC2317 # invoked via trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "${PGACTOR_KEEP_CLUSTER:-0}" = 1 ]; then
        log "PGACTOR_KEEP_CLUSTER=1: leaving cluster up in $CLUSTER_DIR (stop with: scripts/cluster.sh down $CLUSTER_DIR)"
    else
        "$ROOT/scripts/cluster.sh" down "$CLUSTER_DIR" || log "warning: cluster teardown failed ($CLUSTER_DIR)"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "bringing up test cluster in $CLUSTER_DIR"
"$ROOT/scripts/cluster.sh" up "$CLUSTER_DIR" >/dev/null

set -a
# shellcheck source=/dev/null
. "$CLUSTER_DIR/env"
set +a
log "primary: $PGACTOR_PRIMARY_URL"
log "replica: $PGACTOR_REPLICA_URL"
log "bouncer: $PGACTOR_BOUNCER_URL"

export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

# `cargo test --doc` rejects --no-run, so honour it by skipping doc tests.
no_run=0
for arg in "$@"; do
    if [ "$arg" = -- ]; then break; fi
    if [ "$arg" = --no-run ]; then no_run=1; fi
done

select=${PGACTOR_TEST_SELECT:---all-targets}
figures="${CARGO_TARGET_DIR:-$ROOT/target}/tmp/reliability"
rm -rf "$figures"

status=0
# shellcheck disable=SC2086 # the selection is several words
cargo test $select "$@" || status=$?
if [ -d "$figures" ]; then
    log "reliability figures (docs/reliability.md):"
    cat "$figures/header"
    sort -V "$figures"/*.row
fi
if [ "$select" != --all-targets ]; then
    :
elif [ "$status" -eq 0 ] && [ "$no_run" -eq 1 ]; then
    log "--no-run given: skipping doc tests"
elif [ "$status" -eq 0 ]; then
    cargo test --doc || status=$?
else
    log "cargo test --all-targets failed (exit $status); skipping doc tests"
fi
if [ "$select" = --all-targets ] && [ "$status" -eq 0 ]; then
    log "the metrics feature's tests: --features metrics --test metrics"
    cargo test --features metrics --test metrics "$@" || status=$?
fi
if [ "$select" = --all-targets ] && [ "$status" -eq 0 ]; then
    log "the remote feature's tests: --features remote --test remote, and its doc tests"
    cargo test --features remote --test remote "$@" || status=$?
    [ "$status" -ne 0 ] || cargo test --doc --features remote || status=$?
fi

features=${PGACTOR_TEST_FEATURES:-}
if [ -z "$features" ] || [ "$select" != --all-targets ] || [ "$status" -ne 0 ]; then
    :
else
    log "unit tests with --features $features"
    cargo test --features "$features" --lib "$@" || status=$?
    if [ "$status" -eq 0 ] && [ "$no_run" -eq 0 ]; then
        log "doc tests with --features $features"
        cargo test --features "$features" --doc || status=$?
    fi
fi

if [ "$status" -eq 0 ]; then
    log "all tests passed"
else
    log "tests FAILED (exit $status)"
fi
exit "$status"
