#!/usr/bin/env bash
# The long chaos run: a 3-node Kafka cluster from the harness, herald producing
# through the fault proxy while brokers are killed, frozen and cut off, then every
# record accounted for (see herald/tests/chaos.rs).
#
#   scripts/chaos.sh [SECONDS]     default 1800 (30 minutes) with idempotence,
#                                  then half as long without it
#   scripts/chaos.sh [SECONDS] --transactions
#                                  transactions instead (herald/tests/chaos_transactions.rs)
#
# Prints the reports; they are also kept in target/chaos/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
secs=${1:-1800}
name="chaos-$$"
trap 'harness/kafka stop --name "$name" >/dev/null 2>&1 || true' EXIT
harness/kafka fetch
b=$(harness/kafka start --name "$name" --nodes 3)
echo "chaos: ${secs}s against $b"
test=chaos
[[ "${2:-}" == "--transactions" ]] && test=chaos_transactions
HERALD_TEST_BOOTSTRAP=$b HERALD_TEST_CLUSTER=$name HERALD_CHAOS_SECS=$secs \
  cargo test --locked -p herald --test "$test" -- --nocapture 2>&1 |
  grep -E "^chaos|^transactional chaos|test result|panicked|assert"
