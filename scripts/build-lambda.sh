#!/usr/bin/env bash
# Builds the transform-filter Lambda for the `provided.al2023` runtime and packages it:
#   target/lambda/transform-filter/bootstrap      (the release binary, renamed)
#   target/lambda/transform-filter/bootstrap.zip  (what Terraform deploys)
# and the delivery Lambda (https delivery mode) the same way:
#   target/lambda/delivery/bootstrap(.zip)        (from the `delivery-lambda` binary)
#
# ARCH=arm64 (default) or ARCH=x86_64; it must match the Terraform variable
# `lambda_architecture` (default arm64). arm64 (Graviton) is the default because Lambda
# bills arm64 about 20 % less per GB-second and this workload (JSON validation, HMAC) runs
# at least as fast there. Cross-compiling needs the Debian cross linker
# (gcc-aarch64-linux-gnu), which this script installs with apt-get when it is missing.
#
# Only the `aws` feature is built (no default features): no axum, no SQLite in the Lambda.
# The binary must not need a glibc newer than 2.34 (Amazon Linux 2023); this is checked.
set -euo pipefail

cd "$(dirname "$0")/.."
ARCH="${ARCH:-arm64}"
OUT=target/lambda/transform-filter
MAX_GLIBC=2.34

case "$ARCH" in
  arm64)
    TARGET=aarch64-unknown-linux-gnu
    PREFIX=aarch64-linux-gnu-
    ;;
  x86_64)
    TARGET=x86_64-unknown-linux-gnu
    PREFIX=""
    ;;
  *)
    echo "ARCH must be arm64 or x86_64 (got $ARCH)" >&2
    exit 2
    ;;
esac

if ! rustup target list --installed | grep -qx "$TARGET"; then
  rustup target add "$TARGET"
fi

HOST_ARCH="$(uname -m)"
if [ "$ARCH" = arm64 ] && [ "$HOST_ARCH" != aarch64 ]; then
  if ! command -v "${PREFIX}gcc" >/dev/null; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "installing the aarch64 cross linker (gcc-aarch64-linux-gnu)" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu >/dev/null
  fi
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER="${PREFIX}gcc"
  # C code in dependencies (aws-lc-sys for TLS) is cross-compiled too.
  export CC_aarch64_unknown_linux_gnu="${PREFIX}gcc"
  export AR_aarch64_unknown_linux_gnu="${PREFIX}ar"
else
  PREFIX=""
fi

cargo build --release --locked --no-default-features --features aws \
  --bin transform-filter-lambda --bin delivery-lambda --target "$TARGET"

package() { # binary name, output directory
local BIN_NAME="$1" OUT="$2"
mkdir -p "$OUT"
BIN="target/$TARGET/release/$BIN_NAME"
cp "$BIN" "$OUT/bootstrap"
# Drop DWARF (most of the size; the release profile keeps line tables for local profiling) but
# keep the symbol table, so panics in CloudWatch still name functions.
STRIP="${PREFIX}strip"
command -v "$STRIP" >/dev/null || STRIP=strip
"$STRIP" --strip-debug "$OUT/bootstrap"

OBJDUMP="${PREFIX}objdump"
command -v "$OBJDUMP" >/dev/null || OBJDUMP=objdump
NEEDED="$("$OBJDUMP" -T "$OUT/bootstrap" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)"
if [ -n "$NEEDED" ] && [ "$(printf '%s\n%s\n' "$NEEDED" "$MAX_GLIBC" | sort -V | tail -1)" != "$MAX_GLIBC" ]; then
  echo "bootstrap needs glibc $NEEDED; provided.al2023 has $MAX_GLIBC" >&2
  exit 1
fi

# A reproducible zip: fixed timestamp, executable bit set, no zip(1) needed.
python3 - "$OUT/bootstrap" "$OUT/bootstrap.zip" <<'PY'
import sys, zipfile
src, dst = sys.argv[1], sys.argv[2]
info = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
info.external_attr = (0o100755 << 16)
info.compress_type = zipfile.ZIP_DEFLATED
with open(src, "rb") as f, zipfile.ZipFile(dst, "w") as z:
    z.writestr(info, f.read(), compresslevel=9)
PY

echo "built $OUT/bootstrap.zip for $ARCH ($TARGET), glibc >= ${NEEDED:-?} required, $(stat -c %s "$OUT/bootstrap.zip") bytes"
}

package transform-filter-lambda "$OUT"
package delivery-lambda target/lambda/delivery
