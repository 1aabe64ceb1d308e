#!/usr/bin/env bash
# Throughput of `callbacks transform` against the serde_json floor, in the same run.
#
#   scripts/bench-transform.sh [EVENTS]        (default 200000; REPS=5 runs of each, median)
#
# Generates EVENTS status events (scripts/gen-events.py: 10 clients, benches/data/config), then
# alternates, REPS times: the floor (examples/serde_floor.rs: serde_json parse to a Value and
# compact write, one thread), `callbacks transform` on every core, and `callbacks transform
# --workers 1`. Checks the outputs of both transform runs are byte-identical, prints the medians
# (wall seconds, peak RSS) and the ratios floor / transform, and the load average before and
# after (the machine may be shared: compare the ratios, not the seconds). A second, quarter-size
# input shows whether peak RSS grows with the number of events.
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${1:-200000}
REPS=${REPS:-5}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cargo build --release --quiet --bin callbacks --example serde_floor
BIN=target/release/callbacks
FLOOR=target/release/examples/serde_floor
CONFIG=benches/data/config

python3 scripts/gen-events.py "$EVENTS" > "$WORK/events.ndjson"
python3 scripts/gen-events.py $((EVENTS / 4)) > "$WORK/quarter.ndjson"
echo "input: $EVENTS events, $(stat -c %s "$WORK/events.ndjson") bytes; $(nproc) cores"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

# `timed NAME CMD...`: runs CMD with stdin from $INPUT, stdout to $WORK/NAME.out, and appends
# "wall_seconds max_rss_kib" to $WORK/NAME.times.
timed() {
  local name=$1
  shift
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" < "$INPUT" > "$WORK/$name.out" 2> "$WORK/$name.err"
  cat "$WORK/time" >> "$WORK/$name.times"
}

INPUT="$WORK/events.ndjson"
cat "$INPUT" > /dev/null # page cache
for _ in $(seq "$REPS"); do
  timed floor "$FLOOR"
  timed transform "$BIN" transform --config "$CONFIG"
  timed transform1 "$BIN" transform --config "$CONFIG" --workers 1
done
cmp -s "$WORK/transform.out" "$WORK/transform1.out" \
  || { echo "FAIL: output differs between --workers 1 and every core" >&2; exit 1; }
INPUT="$WORK/quarter.ndjson"
timed quarter "$BIN" transform --config "$CONFIG"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
wall() { cut -d' ' -f1 "$WORK/$1.times" | median; }
rss() { cut -d' ' -f2 "$WORK/$1.times" | median; }
F=$(wall floor) T=$(wall transform) T1=$(wall transform1)
echo "callbacks out: $(wc -l < "$WORK/transform.out") (identical with --workers 1)"
printf '%-34s %8s s  %8s KiB  (runs: %s)\n' \
  "floor (serde_json, 1 thread)" "$F" "$(rss floor)" "$(cut -d' ' -f1 "$WORK/floor.times" | tr '\n' ' ')" \
  "callbacks transform" "$T" "$(rss transform)" "$(cut -d' ' -f1 "$WORK/transform.times" | tr '\n' ' ')" \
  "callbacks transform --workers 1" "$T1" "$(rss transform1)" "$(cut -d' ' -f1 "$WORK/transform1.times" | tr '\n' ' ')"
echo "peak RSS, $((EVENTS / 4)) events: $(rss quarter) KiB; $EVENTS events: $(rss transform) KiB"
awk -v f="$F" -v t="$T" -v t1="$T1" 'BEGIN {
  printf "ratio floor / transform: %.2fx (every core), %.2fx (--workers 1)\n", f / t, f / t1 }'
