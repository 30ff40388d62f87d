#!/usr/bin/env bash
# Image size vs what it must hold: the base image + the three tool binaries + the policy
# files (sizes as Docker counts them). Nothing else should be in it (no tarball, cache or
# build tool). Goal (issue 3): image / (base + binaries + policies) <= 1.01.
# The image is built from the real Dockerfile with the test stand-ins (bench/standin-image.sh);
# with the real tools the binaries are ~100x larger, so the ratio only gets closer to 1.
# Usage: bench/image-size.sh
set -euo pipefail
# shellcheck source=standin-image.sh source-path=SCRIPTDIR
. "$(dirname "$0")/standin-image.sh"

size() { docker image inspect --format '{{.Size}}' "$1"; }
img=$(size "$IMAGE")
base=$(size "$(docker image inspect --format '{{index .Config.Labels "org.opencontainers.image.base.name"}}' "$IMAGE")")
bins=$(docker run --rm --entrypoint sh "$IMAGE" -c 'cat /usr/local/bin/kyverno /usr/local/bin/helm /usr/local/bin/pluto | wc -c')
pols=$(docker run --rm --entrypoint sh "$IMAGE" -c 'find /repos -type f -exec cat {} + | wc -c')
host_pols=$(cd "$BENCH_ROOT/policies" && find . -type f -exec cat {} + | wc -c)
[ "$pols" -eq "$host_pols" ] || { echo "bench: /repos holds $pols bytes, policies/ $host_pols" >&2; exit 1; }
need=$((base + bins + pols))
printf 'image %s: %d bytes\n' "$IMAGE" "$img"
printf 'base %d + tool binaries %d + policies %d = %d bytes\n' "$base" "$bins" "$pols" "$need"
printf 'overhead %d bytes\n' "$((img - need))"
echo "ratio image/(base+binaries+policies): $(echo "scale=4; $img / $need" | bc) (goal <= 1.01)"
docker history --format '{{.Size}}\t{{.CreatedBy}}' "$IMAGE" | cut -c1-110
