#!/usr/bin/env bash
# AWS end to end (issue 11): deploys infrastructure/terraform/components/callbacks into the
# test's own moto server (tests/e2e/emulator.py, TLS on loopback) and carries events from the
# Shared Event Bus to HTTPS client endpoints on loopback through what Terraform created; the
# driver plays the Pipe, the Lambda event source mappings and the API destination calls (moto
# does not run them) with the real `bootstrap` binaries. See README.md, "AWS end to end".
#
#   scripts/aws-e2e.sh            # builds the x86_64 Lambda zips, then runs the test
#   E2E_SKIP_BUILD=1 scripts/aws-e2e.sh   # use the zips already in target/lambda
#
# Needs: terraform (>= 1.5) and the AWS provider in TF_PLUGIN_DIR (default /opt/tf-plugins,
# used as a filesystem mirror: nothing is downloaded), python3 with moto[server] and boto3
# (scripts/test.sh installs them). Everything it starts is stopped and its temporary
# directory (Terraform state included) removed on exit, also when a step fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> aws-e2e: %s\n' "$*"; }

if ! command -v "${TERRAFORM_BIN:-terraform}" >/dev/null; then
  echo "aws-e2e: no terraform binary on PATH" >&2
  exit 2
fi
if [ ! -d "${TF_PLUGIN_DIR:-/opt/tf-plugins}/registry.terraform.io/hashicorp/aws" ]; then
  echo "aws-e2e: no local AWS provider in ${TF_PLUGIN_DIR:-/opt/tf-plugins}" >&2
  exit 2
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/callbacks-aws-e2e.XXXXXX")"
DRIVER_PID=""
cleanup() {
  status=$?
  if [ -n "$DRIVER_PID" ] && kill -0 "$DRIVER_PID" 2>/dev/null; then
    # On SIGTERM the driver destroys what it applied and stops the emulator, the functions
    # and the receivers; whatever of its process group is still alive after that is killed.
    kill -TERM "$DRIVER_PID" 2>/dev/null || true
    wait "$DRIVER_PID" 2>/dev/null || true
  fi
  if [ -n "$DRIVER_PID" ]; then
    kill -KILL -- "-$DRIVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT INT TERM

if [ "${E2E_SKIP_BUILD:-0}" != 1 ]; then
  step "release Lambda zips for x86_64 (scripts/build-lambda.sh)"
  start=$(date +%s)
  ARCH=x86_64 bash scripts/build-lambda.sh
  echo "aws-e2e: Lambda build took $(( $(date +%s) - start )) s"
fi

step "python unit tests of the emulator patches"
python3 -m unittest tests/e2e/test_emulator.py

step "deploy into the emulator, carry the events, destroy"
start=$(date +%s)
# In its own process group (setsid), so that cleanup can stop everything it started.
setsid python3 tests/e2e/run_e2e.py "$WORK" &
DRIVER_PID=$!
wait "$DRIVER_PID"
echo "aws-e2e: end-to-end run took $(( $(date +%s) - start )) s"
