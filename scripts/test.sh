#!/usr/bin/env bash
# The whole test suite, as CI runs it (`.ci/run` calls this). Installs what the tests need
# (Python packages for the AWS emulator and the Terraform checks), then: formatting, clippy,
# the Rust tests with default features and with the AWS adapters, the golden corpus's own
# oracle check, the offline Terraform checks, and the AWS end-to-end test (scripts/aws-e2e.sh:
# release x86_64 Lambda zips, the component applied into moto, events carried through it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

step "python test dependencies (moto server for the AWS tests)"
python3 -m pip install --quiet --disable-pip-version-check 'moto[server]==5.2.5' 'boto3>=1.35'

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy (default features)"
cargo clippy --all-targets -- -D warnings

step "clippy (AWS adapters)"
cargo clippy --all-targets --features aws -- -D warnings

step "tests (default features: core, CLI, golden corpus, embedded server)"
cargo test

step "tests (AWS adapters against moto, Lambda runtime API harness)"
cargo test --features aws

step "golden corpus: the independent Python oracle agrees with every expected.json"
python3 legacy-compat/tools/oracle.py --check

step "terraform: parse, wiring, checkov"
bash scripts/check-terraform.sh

step "AWS end to end: the Terraform deployed into moto, events carried to HTTPS endpoints"
bash scripts/aws-e2e.sh
