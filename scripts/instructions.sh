#!/usr/bin/env bash
# The client's instructions per operation: pgactor's paths beside the raw
# driver, counted with callgrind (valgrind). Instruction counts do not move
# with the machine's load as CPU time does, so they show a change of a few
# percent in the client's cost that wall-clock figures hide.
#
#   scripts/instructions.sh [--workload read_pk,list_page,insert,tx_lock]
#       [--impl pgactor,pgactor-single,pgactor-typed,pgactor-msg,raw-prepared]
#       [--concurrency 16] [--short 3] [--long 12] [--out DIR] [--breakdown]
#
# For every workload x implementation (a cell) the load test
# (examples/loadtest.rs) runs alone under `valgrind --tool=callgrind`
# twice, for --short and for --long seconds (no warm-up, one round), and
#
#   ir_per_op = (Ir(long) - Ir(short)) / (ops(long) - ops(short))
#
# where Ir is every instruction the load-test process ran in user space
# (callgrind's total: the load generator, pgactor or the raw pool, the
# driver, tokio; not the kernel, not the server) and ops is the RESULT
# line's ops/s times the window. Everything outside the window - starting,
# connecting, creating the schema, filling the table, preparing the first
# statements, closing - runs the same in both and cancels out. The load
# generator's own loop (a clock read before and after each operation, the
# random draw, the latency kept) is in every figure alike.
#
# It prints one line per cell,
#
#   INSTR workload=read_pk impl=raw-prepared c=16 ir_per_op=16212 ops=32586
#
# (ops: the operations the difference is over), then a markdown table of
# thousands of instructions per operation with the ratio to raw-prepared
# (when it ran) in each row. With --breakdown, each cell also gets a
# `SHARE` line: its instructions per operation split by the crate of the
# function that ran them (callgrind's exclusive counts, long run minus
# short run): `pgactor`, `driver` (tokio-postgres and its protocol and
# types crates), `tokio`, `std` (core, alloc, std), `loadtest` (the load
# generator and the raw baselines' code), ..., `alloc` (malloc, free and
# the like) and `mem` (the C library's memory copies). Code inlined into
# another crate's function counts there.
#
# It connects to DATABASE_URL when set (it must say sslmode=disable, as the
# load test requires), else it starts a throwaway cluster with
# scripts/cluster.sh in a fresh /tmp/pgai.XXXXXX and tears it down at the
# end. It builds the load test in release mode first. The callgrind files
# and logs stay in --out (default target/instructions) for
# `callgrind_annotate`.
#
# Time: under valgrind the client runs about ten times slower, on one
# thread at a time, and each run spends about 10 s starting (loading the
# system's TLS certificates is most of it), so a cell takes 35-45 s and the
# defaults (four workloads x five implementations, 3 s and 12 s) about 15
# minutes after the build. Other work on the machine does not change the
# counts, but a slower run leaves fewer operations to divide by (`ops`).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

log() { printf 'instructions.sh: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 2
}

workloads=read_pk,list_page,insert,tx_lock
impls=pgactor,pgactor-single,pgactor-typed,pgactor-msg,raw-prepared
concurrency=16
short=3
long=12
out=${CARGO_TARGET_DIR:-$ROOT/target}/instructions
breakdown=0
while [ $# -gt 0 ]; do
    case $1 in
    --workload) workloads=${2:?--workload needs a value}; shift 2 ;;
    --impl) impls=${2:?--impl needs a value}; shift 2 ;;
    --concurrency) concurrency=${2:?--concurrency needs a value}; shift 2 ;;
    --short) short=${2:?--short needs a value}; shift 2 ;;
    --long) long=${2:?--long needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a value}; shift 2 ;;
    --breakdown) breakdown=1; shift ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown option $1 (--help lists them)" ;;
    esac
done
[[ $concurrency =~ ^[1-9][0-9]*$ ]] || die "--concurrency: one count >= 1, got $concurrency"
for s in "$short" "$long"; do
    [[ $s =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--short/--long: seconds, got $s"
done
awk -v s="$short" -v l="$long" 'BEGIN { exit !(s > 0 && l > s) }' ||
    die "--long ($long) must be longer than --short ($short) > 0"
for tool in valgrind callgrind_annotate cargo; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found in PATH"
done
IFS=, read -r -a workload_list <<<"$workloads"
IFS=, read -r -a impl_list <<<"$impls"

log "building the load test (release)"
cargo build --release --quiet --example loadtest
loadtest=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/loadtest

cluster=""
# shellcheck disable=SC2317 # invoked via trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$cluster" ]; then
        "$ROOT/scripts/cluster.sh" down "$cluster" >/dev/null ||
            log "warning: cluster teardown failed (scripts/cluster.sh down $cluster)"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -z "${DATABASE_URL:-}" ]; then
    # Short on purpose: DIR/s/.s.PGSQL.NNNNN must fit a 107-byte socket path.
    cluster=$(mktemp -d /tmp/pgai.XXXXXX)
    chmod 0755 "$cluster"
    log "no DATABASE_URL: starting a throwaway cluster in $cluster"
    "$ROOT/scripts/cluster.sh" up "$cluster" >/dev/null
    DATABASE_URL=$(sed -n 's/^PGACTOR_PRIMARY_URL=//p' "$cluster/env")
fi
export DATABASE_URL
mkdir -p "$out"

# run CELL SECONDS: one load-test run under callgrind; prints "IR OPS/S".
run() {
    local cell=$1 seconds=$2 workload=${1%%.*} impl=${1#*.}
    local file=$out/$cell.$seconds
    rm -f "$file".out "$file".log "$file".stdout
    if ! valgrind --tool=callgrind --callgrind-out-file="$file.out" --log-file="$file.log" \
        "$loadtest" --workload "$workload" --impl "$impl" --concurrency "$concurrency" \
        --seconds "$seconds" --warmup 0 --rounds 1 >"$file.stdout" 2>&1; then
        log "$workload $impl: the load test failed; see $file.stdout and $file.log"
        return 1
    fi
    local ir rate
    ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$file.out")
    rate=$(sed -n 's/^RESULT .* ops=\([0-9]*\) .*/\1/p' "$file.stdout")
    if [ -z "$ir" ] || [ -z "$rate" ]; then
        log "$workload $impl: no total in $file.out or no RESULT in $file.stdout"
        return 1
    fi
    echo "$ir $rate"
}

# share CELL OPS: the long run's exclusive instructions minus the short
# run's, per operation, by who ran them: the crate of the Rust function
# (the drivers' three crates as `driver`, tracing's as `tracing`, core,
# alloc and std as `std`), the allocator (`alloc`: malloc, free and the
# like), libc's memory copies (`mem`), the rest of a shared library by its
# name; shares under 100 instructions per operation are left out.
share() {
    local cell=$1 ops=$2 seconds sign
    for seconds in "$short" "$long"; do
        sign=-1
        [ "$seconds" = "$long" ] && sign=1
        callgrind_annotate --inclusive=no --threshold=100 "$out/$cell.$seconds.out" |
            awk -v sign="$sign" '/^ *[0-9,]+ +\(/ && !/PROGRAM TOTALS/ { print sign, $0 }'
    done | awk -v ops="$ops" '
        function who(fn, obj,    c) {
            if (fn ~ /^(malloc|free|realloc|calloc|cfree|_int_|__libc_malloc|__libc_free|tcache|malloc_consolidate|unlink_chunk|__rustc::)/) return "alloc"
            if (fn ~ /^(__)?mem(cpy|move|set|cmp)/) return "mem"
            if (obj !~ /^\[/) return "other"
            if (obj !~ /examples\/loadtest\]$/) { sub(/.*\//, "", obj); sub(/\.so.*/, "", obj); return obj }
            sub(/^(<|&|dyn |impl |\*const |\*mut )+/, "", fn)
            # <i64 as postgres_types::FromSql>::from_sql: the crate of the trait
            # when the type has no path of its own.
            if (index(fn, " as ") && substr(fn, 1, index(fn, " as ")) !~ /::/) fn = substr(fn, index(fn, " as ") + 4)
            c = fn; sub(/::.*/, "", c); sub(/[ <>(\[].*/, "", c)
            if (c ~ /^(tokio_postgres|postgres_protocol|postgres_types)$/) return "driver"
            if (c ~ /^tracing/) return "tracing"
            if (c ~ /^(core|alloc|std|hashbrown)$/) return "std"
            return c
        }
        {
            ir = $2; gsub(",", "", ir)
            line = $0; sub(/^[^)]*\) +/, "", line)
            obj = ""
            if (line ~ / \[[^]]*\]$/) { obj = line; sub(/.* \[/, "[", obj) }
            fn = line; sub(/ \[[^]]*\]$/, "", fn); sub(/^[^:]*:/, "", fn)
            by[who(fn, obj)] += $1 * ir
        }
        END {
            for (c in by) if (by[c] / ops >= 100) printf " %s=%.0f", c, by[c] / ops
            print ""
        }' | tr ' ' '\n' | sort -t= -k2,2nr | tr '\n' ' ' | sed 's/^ *//; s/ *$//'
}

declare -A per_op
failed=0
for workload in "${workload_list[@]}"; do
    for impl in "${impl_list[@]}"; do
        cell=$workload.$impl
        log "$workload $impl c=$concurrency: ${short} s, then ${long} s under callgrind"
        if ! s=$(run "$cell" "$short") || ! l=$(run "$cell" "$long"); then
            failed=1
            continue
        fi
        read -r ir_s rate_s <<<"$s"
        read -r ir_l rate_l <<<"$l"
        ops=$(awk -v a="$rate_l" -v b="$rate_s" -v l="$long" -v s="$short" \
            'BEGIN { printf "%.0f", a * l - b * s }')
        if [ "$ops" -le 0 ]; then
            log "$workload $impl: the long run did no more operations than the short one"
            failed=1
            continue
        fi
        value=$(awk -v a="$ir_l" -v b="$ir_s" -v n="$ops" 'BEGIN { printf "%.0f", (a - b) / n }')
        per_op[$cell]=$value
        echo "INSTR workload=$workload impl=$impl c=$concurrency ir_per_op=$value ops=$ops"
        if [ "$breakdown" = 1 ]; then
            echo "SHARE workload=$workload impl=$impl c=$concurrency $(share "$cell" "$ops")"
        fi
    done
done

# The table: thousands of instructions per operation, and the ratio to
# raw-prepared in the same row.
echo
header="| workload (c = $concurrency) |"
rule="|---|"
for impl in "${impl_list[@]}"; do
    header+=" $impl |"
    rule+="---|"
done
echo "$header"
echo "$rule"
for workload in "${workload_list[@]}"; do
    row="| $workload |"
    base=${per_op[$workload.raw-prepared]:-}
    for impl in "${impl_list[@]}"; do
        value=${per_op[$workload.$impl]:-}
        if [ -z "$value" ]; then
            row+=" - |"
        elif [ -n "$base" ] && [ "$impl" != raw-prepared ]; then
            row+=$(awk -v v="$value" -v b="$base" 'BEGIN { printf " %.1fk (%.2f×) |", v / 1000, v / b }')
        else
            row+=$(awk -v v="$value" 'BEGIN { printf " %.1fk |", v / 1000 }')
        fi
    done
    echo "$row"
done
exit "$failed"
