#!/usr/bin/env bash
# Run the reliability suite alone (tests/reliability) against a fresh
# topology and print its figures table, as docs/reliability.md shows it.
#
#   scripts/reliability.sh [extra args for `cargo test --test reliability`]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PGACTOR_TEST_SELECT="--test reliability" exec scripts/test.sh "$@"
