#!/usr/bin/env bash
# Smoke wall time: `cargo xtask smoke` (one container for every check, plus the label and
# checkout reads) vs the seed's four sequential `docker run --rm`s (kyverno version; pluto
# version; helm version; ls -R /repos/) on the same image. Runs alternate so machine load
# hits both alike; medians of ROUNDS. Goal (issue 3): smoke / seed <= 0.35.
# The image is built from the real Dockerfile with the test stand-ins (bench/standin-image.sh).
# Usage: bench/smoke.sh [ROUNDS=7]
set -euo pipefail
rounds=${1:-7}
# shellcheck source=standin-image.sh source-path=SCRIPTDIR
. "$(dirname "$0")/standin-image.sh"

now() { date +%s.%N; }
t_seed() {
  local t0; t0=$(now)
  docker run --rm "$IMAGE" kyverno version >/dev/null
  docker run --rm "$IMAGE" pluto version >/dev/null
  docker run --rm "$IMAGE" helm version >/dev/null
  docker run --rm "$IMAGE" ls -R /repos/ >/dev/null
  echo "$(now) - $t0" | bc
}
t_smoke() {
  local t0; t0=$(now)
  XTASK_ROOT="$BENCH_ROOT" "$XTASK" smoke --image "$IMAGE" >/dev/null 2>"$work/smoke.err" \
    || { cat "$work/smoke.err" >&2; exit 1; }
  echo "$(now) - $t0" | bc
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

t_seed >/dev/null; t_smoke >/dev/null # warm-up: page cache, first container of the image
: > "$work/seed"; : > "$work/smoke"
for _ in $(seq "$rounds"); do
  t_seed >> "$work/seed"
  t_smoke >> "$work/smoke"
done
s=$(median < "$work/seed"); x=$(median < "$work/smoke")
ratio=$(echo "scale=3; $x / $s" | bc)
printf 'image %s, %s rounds\n' "$IMAGE" "$rounds"
printf 'seed, 4 x docker run --rm: %.3f s (median)  [%s]\n' "$s" "$(tr '\n' ' ' < "$work/seed")"
printf 'cargo xtask smoke:         %.3f s (median)  [%s]\n' "$x" "$(tr '\n' ' ' < "$work/smoke")"
echo "ratio smoke/seed: $ratio (goal <= 0.35)"
