#!/usr/bin/env bash
# How the scan hands the image to Trivy: `trivy image --image-src docker NAME` (Trivy reads
# the image from the Docker engine; what the xtask does) vs the baseline `docker save` +
# `trivy image --input FILE.tar`. Same image, same DB, memory scan cache (no reuse between
# runs), runs alternate so machine load hits both alike.
# Goal: daemon / baseline <= 1.2 (else switch the xtask to save + --input).
# Needs: docker, the pinned trivy on PATH (or TRIVY=path), busybox-static.
# Usage: bench/scan-image-source.sh [ROUNDS=3] [IMAGE_MB=150]
set -euo pipefail
rounds=${1:-3}
mb=${2:-150}
trivy=${TRIVY:-$(command -v trivy)}
work=$(mktemp -d /tmp/pp-bench-scan.XXXXXX)
image="pp-bench-scan-$$:v1"
trap 'docker rmi -f "$image" pp-bench-scan-base:$$ >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

# A base from busybox-static (no image can be pulled), then one layer of binary data
# (like the product's tool binaries: not text, so the secret scanner skips quickly).
mkdir -p "$work/root/bin" "$work/ctx"
cp /usr/bin/busybox "$work/root/bin/busybox"
for a in sh cat; do ln -s busybox "$work/root/bin/$a"; done
tar -C "$work/root" -cf "$work/root.tar" .
docker import "$work/root.tar" "pp-bench-scan-base:$$" >/dev/null
head -c "$((mb * 1024 * 1024))" /dev/urandom > "$work/ctx/blob"
printf 'FROM pp-bench-scan-base:%s\nCOPY blob /opt/blob\n' "$$" > "$work/ctx/Dockerfile"
docker build -q -t "$image" "$work/ctx" >/dev/null 2>&1

# A Trivy cache with a DB is needed for `vuln`; secrets only keeps the bench self-contained
# and measures exactly the part that differs (getting the layers to Trivy).
now() { date +%s.%N; }
t_daemon() {
  local t0; t0=$(now)
  "$trivy" image -q --cache-backend memory --scanners secret --format json --image-src docker "$image" >/dev/null
  echo "$(now) - $t0" | bc
}
t_save() {
  local t0; t0=$(now)
  docker save -o "$work/image.tar" "$image"
  "$trivy" image -q --cache-backend memory --scanners secret --format json --input "$work/image.tar" >/dev/null
  rm -f "$work/image.tar"
  echo "$(now) - $t0" | bc
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

: > "$work/b"; : > "$work/d"
for _ in $(seq "$rounds"); do
  t_save >> "$work/b"
  t_daemon >> "$work/d"
done
b=$(median < "$work/b"); d=$(median < "$work/d")
printf 'image %s MB, %s rounds\nbaseline docker save + --input: %.2f s (median)\ndaemon --image-src docker:     %.2f s (median)\nratio daemon/baseline: %.2f\n' \
  "$mb" "$rounds" "$b" "$d" "$(echo "$d / $b" | bc -l)"
