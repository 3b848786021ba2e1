#!/usr/bin/env bash
# herald's one test command: provisions everything (Kafka from Maven Central, the
# Java tools) and runs every test. Needs Rust, a JDK (17+) and Maven.
#
#   scripts/test.sh            everything (what .ci/run calls)
#   scripts/test.sh --quick    lint, then every test against the embedded cluster
#                              (no Kafka broker; the Java tools are still built)
#
# Phases, each timed:
#   1. lint        cargo fmt --check, cargo clippy -D warnings
#   2. provision   harness/kafka fetch (broker jars + Java tools), the Schema
#                  Registry (harness/registry/run fetch), librdkafka's
#                  consumer (harness/rdkafka-read)
#   3. embedded    every test of the workspace (unit, property, doc, the Java
#                  differential partitioner test, and the integration suites)
#                  against herald's embedded cluster
#   4. kafka-4     the integration suites against a single Kafka 4.x broker, the
#                  Schema Registry ones against a real registry (Apicurio, started
#                  by harness/registry/run; the other phases use herald's fake),
#                  where Apicurio's own deserializers read back what herald's
#                  registry serializers wrote (serializers_registry.rs)
#   5. kafka-3.9   the same suites against Kafka 3.9
#   6. cluster     the cluster suite and the chaos tests (brokers killed, frozen
#                  and cut off while herald produces; nothing lost or duplicated;
#                  transactions all or nothing) against a 3-node KRaft cluster
#   7. security    TLS and SASL (herald/tests/security.rs, and the CLI's OIDC
#                  login in herald-cli/tests/security.rs) against a single Kafka
#                  4.x broker with SSL, mTLS, SASL_PLAINTEXT, SASL_SSL and OIDC
#                  listeners and a token endpoint (harness/kafka start --secure);
#                  the OIDC tests again against Kafka 3.9
#   8. telemetry   client telemetry push (KIP-714, herald/tests/telemetry.rs)
#                  against a single Kafka 4.x broker with a ClientTelemetry
#                  plugin that records what it receives (start --telemetry)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=../harness/versions.env
source harness/versions.env

quick=0
[[ "${1:-}" == "--quick" ]] && quick=1

need() { command -v "$1" >/dev/null 2>&1 || { echo "scripts/test.sh: '$1' is required but not installed" >&2; exit 2; }; }
need cargo; need java; need mvn
# librdkafka (harness/rdkafka-read) builds from source with its configure script.
need cc; need make

# One full run builds every test binary once: incremental caches would only take
# disk (about 2 GB of target/debug/incremental). Set CARGO_INCREMENTAL=1 to keep them.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

run_id="t$$"
clusters=()
cleanup() {
  for c in "${clusters[@]}"; do
    harness/kafka stop --name "$c" >/dev/null 2>&1 || true
  done
  harness/registry/run stop --name "$run_id" >/dev/null 2>&1 || true
}
trap cleanup EXIT

declare -a timings=()
phase() {
  local name=$1; shift
  echo
  echo "=== $name ==="
  local t0=$SECONDS
  "$@"
  timings+=("$(printf '%-10s %4ds' "$name" $((SECONDS - t0)))")
}

# Called as b=$(start_cluster …), a subshell: the caller records the name in
# `clusters` (for the EXIT trap) before, or a failed run would leave it running.
start_cluster() { # name version nodes -> prints bootstrap
  harness/kafka start --name "$1" --version "$2" --nodes "$3"
}

lint() {
  cargo fmt --all --check
  cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
  # The fuzz crate is its own workspace with its own lock file; a stale one would
  # only show up at the end of the embedded phase, so check it here.
  cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null
  cargo metadata --locked --format-version 1 --manifest-path harness/rdkafka-read/Cargo.toml >/dev/null
}

provision() {
  harness/kafka fetch
  harness/registry/run fetch
  cargo build --workspace --all-targets --locked
  # librdkafka's consumer (built from source, ~2 min the first time), the second
  # independent reader of what herald writes (herald/tests/compression.rs).
  cargo build --release --locked --manifest-path harness/rdkafka-read/Cargo.toml
}

embedded() {
  # No HERALD_TEST_BOOTSTRAP: the suites start the embedded cluster themselves.
  # herald's dev-dependency on itself turns on every feature its tests need
  # (mock, the serializers, opentelemetry), so tests/otel.rs runs here too.
  env -u HERALD_TEST_BOOTSTRAP -u HERALD_TEST_CLUSTER cargo test --workspace --locked
  # The fuzz crate's own checks: its seed corpus matches its generator.
  cargo test --locked --manifest-path fuzz/Cargo.toml
}

suites_against() { # version
  local name="${run_id}-$1"
  local b reg=
  clusters+=("$name")
  b=$(start_cluster "$name" "$1" 1)
  # Kafka 4.x: a real Schema Registry instead of the in-process fake.
  if [[ "$1" == "$KAFKA_VERSION" ]]; then reg=$(harness/registry/run start --name "$run_id"); fi
  HERALD_TEST_BOOTSTRAP=$b HERALD_TEST_SCHEMA_REGISTRY=$reg \
    cargo test --locked -p herald --test broker --test compression --test transactions \
      --test metrics --test interceptors --test tagged --test otel --test telemetry --test split --test producer_config_java
  HERALD_TEST_BOOTSTRAP=$b HERALD_TEST_SCHEMA_REGISTRY=$reg cargo test --locked -p herald-cli --test cli --test parity \
    --test producer_config
  # The suites that register schemas, one test at a time: Apicurio 2.4.2 on its
  # in-memory H2 store can answer HTTP 500 (a content-id unique-key violation)
  # when two registrations of different schemas arrive at once.
  HERALD_TEST_BOOTSTRAP=$b HERALD_TEST_SCHEMA_REGISTRY=$reg \
    cargo test --locked -p herald --test serializers_registry -- --test-threads=1
  HERALD_TEST_BOOTSTRAP=$b HERALD_TEST_SCHEMA_REGISTRY=$reg \
    cargo test --locked -p herald-cli --test formats -- --test-threads=1
  [[ -z "$reg" ]] || harness/registry/run stop --name "$run_id"
  harness/kafka stop --name "$name"
}

cluster() {
  local name="${run_id}-3n"
  local b
  clusters+=("$name")
  b=$(start_cluster "$name" "$KAFKA_VERSION" 3)
  HERALD_TEST_BOOTSTRAP=$b HERALD_TEST_CLUSTER=$name HERALD_TEST_REPLICATION=3 \
    cargo test --locked -p herald --test cluster
  # About two minutes of chaos with idempotence, one without (scripts/chaos.sh runs
  # it for longer).
  HERALD_TEST_BOOTSTRAP=$b HERALD_TEST_CLUSTER=$name HERALD_CHAOS_SECS=80 \
    cargo test --locked -p herald --test chaos -- --nocapture
  # A minute of transactions while the coordinator and leaders are killed
  # (scripts/chaos.sh SECONDS --transactions runs it for longer).
  HERALD_TEST_BOOTSTRAP=$b HERALD_TEST_CLUSTER=$name HERALD_CHAOS_SECS=60 \
    cargo test --locked -p herald --test chaos_transactions -- --nocapture
  harness/kafka stop --name "$name"
}

security() {
  local name="${run_id}-sec"
  clusters+=("$name")
  harness/kafka start --name "$name" --version "$KAFKA_VERSION" --secure >/dev/null
  # The tests are #[ignore]d without a secured broker; here they run for real.
  HERALD_TEST_SECURE="$(harness/kafka secure-env --name "$name")" \
    cargo test --locked -p herald --test security -- --include-ignored
  HERALD_TEST_SECURE="$(harness/kafka secure-env --name "$name")" \
    cargo test --locked -p herald-cli --test security -- --include-ignored
  harness/kafka stop --name "$name"
  # The OIDC login (KIP-768) against Kafka 3.9's validator too.
  name="${run_id}-sec39"
  clusters+=("$name")
  harness/kafka start --name "$name" --version "$KAFKA_OLD_VERSION" --secure >/dev/null
  HERALD_TEST_SECURE="$(harness/kafka secure-env --name "$name")" \
    cargo test --locked -p herald --test security -- --include-ignored oidc
  HERALD_TEST_SECURE="$(harness/kafka secure-env --name "$name")" \
    cargo test --locked -p herald-cli --test security -- --include-ignored
  harness/kafka stop --name "$name"
}

telemetry() {
  local name="${run_id}-tel"
  local b
  clusters+=("$name")
  b=$(harness/kafka start --name "$name" --version "$KAFKA_VERSION" --telemetry)
  # The plugin's test is #[ignore]d without a broker that has one; here it runs.
  HERALD_TEST_BOOTSTRAP=$b HERALD_TEST_TELEMETRY="$(harness/kafka telemetry-file --name "$name")" \
    cargo test --locked -p herald --test telemetry -- --include-ignored
  harness/kafka stop --name "$name"
}

total0=$SECONDS
phase lint lint
phase provision provision
phase embedded embedded
if (( ! quick )); then
  phase "kafka-$KAFKA_VERSION" suites_against "$KAFKA_VERSION"
  phase "kafka-$KAFKA_OLD_VERSION" suites_against "$KAFKA_OLD_VERSION"
  phase cluster cluster
  phase security security
  phase telemetry telemetry
fi
echo
echo "=== all tests passed in $((SECONDS - total0))s ==="
printf '  %s\n' "${timings[@]}"
