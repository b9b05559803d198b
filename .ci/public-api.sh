#!/usr/bin/env bash
# Fails when the public API of a published crate differs from its checked-in listing
# (api/<crate>.txt): a change to what apps see must be deliberate. `--bless` rewrites them.
# The docs are built with docs.rs's features (everything but `test-util`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo doc --no-deps -p apitally-core -p apitally-actix -p apitally-axum \
  --features apitally-core/rustls,apitally-core/tracing,apitally-core/opentelemetry,apitally-core/utoipa,apitally-core/validator \
  --features apitally-actix/macros,apitally-actix/tracing,apitally-actix/opentelemetry,apitally-actix/utoipa,apitally-actix/validator \
  --features apitally-axum/macros,apitally-axum/tracing,apitally-axum/opentelemetry,apitally-axum/utoipa,apitally-axum/validator
status=0
for crate in apitally_core apitally_actix apitally_axum; do
  listing="api/${crate//_/-}.txt"
  if [ "${1:-}" = "--bless" ]; then
    python3 .ci/public-api.py target/doc "$crate" > "$listing"
  elif ! diff -u "$listing" <(python3 .ci/public-api.py target/doc "$crate"); then
    echo "the public API of $crate changed: review the diff above, then run .ci/public-api.sh --bless"
    status=1
  fi
done
exit $status
