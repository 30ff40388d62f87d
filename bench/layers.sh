#!/usr/bin/env bash
# What a release pushes, per release kind: the SEED design (bench/seed.Dockerfile: one RUN
# fetching every tool, one COPY of all three) against the repo's Dockerfile (one layer per
# independently changing part), same inputs for both:
# - tool stand-ins at the real CLIs' sizes (kyverno 120 MB, helm 55 MB, pluto 45 MB): a
#   static ELF stub running the test stand-in script, padded with random bytes, so they
#   compress no better than nothing (an upper bound for real binaries), served from a
#   loopback mirror in the upstream tarball layouts;
# - a ~8 MB busybox base (no image can be pulled here) that later "moves" to another one;
# - the repo's policies/;
# - one real registry per design (Debian's docker-registry, htpasswd, 127.0.0.1, temp
#   storage, stopped at the end); bytes pushed = the growth of its storage.
# It drives `docker build` + `docker push` directly (not `cargo xtask publish`), warm cache,
# and after a first release measures:
# 1. ROUNDS releases that each upgrade kyverno: bytes pushed and the wall time of build +
#    push (medians; seed and new alternate so machine load hits both alike).
#    Goal (issue 9): new <= 1.05 x (kyverno's compressed layer + the policy layer).
# 2. the weekly rebuild after the base moved: bytes pushed. Goal: new <= base layer + 1 MB.
# 3. for the record, a policy change: bytes pushed.
# Needs: docker, gcc with static libc, python3, busybox-static, docker-registry,
# apache2-utils, skopeo, bc.   Usage: bench/layers.sh [ROUNDS=3]
set -euo pipefail
rounds=${1:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/pp-bench-layers.XXXXXX)
name="pp-bench-layers-$$"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # Only what this run made: its tagged images, then every step image its builds printed
  # (all descend from this run's own bases), newest first so children go before parents.
  docker images --format '{{.Repository}}:{{.Tag}}' | grep -E "(^|/)$name(-base)?[:/]" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  [ -f "$work/step-ids" ] && tac "$work/step-ids" | awk '!seen[$0]++' | xargs -r docker rmi >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
mb() { if [ "$(echo "$1 < 100000" | bc)" = 1 ]; then echo "$(echo "scale=1; $1 / 1000" | bc) kB"; else echo "$(echo "scale=1; $1 / 1000000" | bc) MB"; fi; }
met() { [ "$(echo "$1" | bc)" = 1 ] && echo met || echo MISSED; }
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# Two bases of ~8 MB, one layer each (busybox + a random "library"): a base that moved.
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
  docker import --change 'ENV PATH=/usr/local/bin:/bin' --change 'CMD ["/bin/sh"]' "$d.tar" "$name-base:$1" >/dev/null
  rm -rf "$d" "$d.tar"
}
base a
base b

# A stand-in release tarball in the upstream layout, at the real CLI's size.
mkdir -p "$work/srv"
declare -A ver file sum
release_of() { # tool version
  local t=$1 v=$2 d="$work/pack" member size stub_size
  case $t in
    kyverno) member=kyverno size=120 file[$t]="kyverno-cli_v${v}_linux_x86_64.tar.gz" ;;
    helm) member=linux-amd64/helm size=55 file[$t]="helm-v${v}-linux-amd64.tar.gz" ;;
    pluto) member=pluto size=45 file[$t]="pluto_${v}_linux_amd64.tar.gz" ;;
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
  tar --owner=0 --group=0 -czf "$work/srv/${file[$t]}" -C "$d" "${member%%/*}" LICENSE
  ver[$t]=$v
  sum[$t]=$(sha256sum "$work/srv/${file[$t]}" | cut -c1-64)
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

# The build context: what both Dockerfiles copy.
ctx="$work/ctx"
mkdir -p "$ctx/scripts"
cp -r "$root/policies" "$ctx/"
cp "$root/scripts/image-stage.sh" "$ctx/scripts/"
cp "$root/.dockerignore" "$ctx/"

# One registry per design; docker logs in through a config of its own (password on stdin).
pw=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf %s "$pw" | htpasswd -Bin bench > "$work/htpasswd"
declare -A reg
start_registry() { # design
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$work/reg-$1/data"
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\nauth:\n  htpasswd:\n    realm: bench\n    path: %s\n' \
    "$work/reg-$1/data" "$port" "$work/htpasswd" > "$work/reg-$1/config.yml"
  docker-registry serve "$work/reg-$1/config.yml" > "$work/reg-$1/log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
  reg[$1]="127.0.0.1:$port"
  printf %s "$pw" | DOCKER_CONFIG=$work/docker docker login "${reg[$1]}" -u bench --password-stdin >/dev/null 2>&1
  printf %s "$pw" | skopeo login --tls-verify=false --authfile "$work/auth.json" -u bench --password-stdin "${reg[$1]}" >/dev/null
}
start_registry seed
start_registry new

# build + push one release of a design on a base; prints "total-seconds build-seconds bytes-pushed".
release() { # design tag base
  local d=$1 ref="${reg[$1]}/$name/policy-platform:$2" args=() t0 t1 before
  if [ "$d" = seed ]; then args+=(-f "$root/bench/seed.Dockerfile"); else args+=(-f "$root/Dockerfile" --build-arg "DOWNLOAD_IMAGE=$name-base:a"); fi
  for t in kyverno helm pluto; do
    args+=(--build-arg "${t^^}_VERSION=${ver[$t]}" --build-arg "${t^^}_URL=$mirror/${file[$t]}" --build-arg "${t^^}_SHA256=${sum[$t]}")
  done
  before=$(du -sb "$work/reg-$d/data" | cut -f1)
  t0=$(now)
  docker build --force-rm --network host -t "$ref" --build-arg "BASE_IMAGE=$name-base:$3" "${args[@]}" "$ctx" > "$work/build.log" 2>&1 \
    || { tail -30 "$work/build.log" >&2; echo "bench: the $d build failed" >&2; exit 1; }
  t1=$(now)
  grep -oE -- '---> [0-9a-f]{12}$' "$work/build.log" | cut -c6- >> "$work/step-ids"
  DOCKER_CONFIG=$work/docker docker push "$ref" > "$work/push.log" 2>&1 \
    || { tail -30 "$work/push.log" >&2; echo "bench: the $d push failed" >&2; exit 1; }
  echo "$(echo "$(now) - $t0" | bc) $(echo "$t1 - $t0" | bc) $(($(du -sb "$work/reg-$d/data" | cut -f1) - before))"
}
both() { # tag base: one release of each design; appends to $work/<design>.<tag>
  for d in seed new; do release "$d" "$1" "$2" > "$work/$d.$1"; done
}
# Compressed size of a part's layer in a pushed image of the new design, from its manifest
# (the base has one layer, then one per `COPY --from=PART /out/ /` of the Dockerfile, in order).
layer_size() { # tag part|base
  local n=0
  [ "$2" = base ] || n=$(grep -E '^COPY --from=[a-z]+ /out/ /$' "$root/Dockerfile" | grep -n -- "--from=$2 " | cut -d: -f1)
  skopeo inspect --raw --tls-verify=false --authfile "$work/auth.json" "docker://${reg[new]}/$name/policy-platform:$1" \
    | python3 -c "import json,sys; print(json.load(sys.stdin)['layers'][$n]['size'])"
}

echo "== making the stand-in releases (kyverno 120 MB, helm 55 MB, pluto 45 MB)"
release_of helm 3.22.0
release_of pluto 5.24.0
release_of kyverno 1.19.1
both first a
printf 'first release: seed pushed %s, new %s\n' "$(mb "$(cut -d' ' -f3 "$work/seed.first")")" "$(mb "$(cut -d' ' -f3 "$work/new.first")")"

echo "== $rounds releases that each upgrade kyverno (build + push, warm cache)"
for i in $(seq "$rounds"); do
  release_of kyverno "1.20.$i"
  both "up$i" a
done
col() { for i in $(seq "$rounds"); do cut -d' ' -f"$2" "$work/$1.up$i"; done | median; }
for d in seed new; do
  printf '%-4s %s pushed; build + push %.2f s (build %.2f s); medians of: %s\n' "$d:" "$(mb "$(col "$d" 3)")" "$(col "$d" 1)" "$(col "$d" 2)" \
    "$(for i in $(seq "$rounds"); do printf '[%s] ' "$(cat "$work/$d.up$i")"; done)"
done
nb=$(col new 3); sb=$(col seed 3)
printf 'ratio new/seed: bytes pushed %.3f, build + push time %.2f\n' "$(echo "$nb / $sb" | bc -l)" "$(echo "$(col new 1) / $(col seed 1)" | bc -l)"
kyv=$(layer_size "up$rounds" kyverno); pol=$(layer_size "up$rounds" policies)
goal=$(echo "1.05 * ($kyv + $pol)" | bc)
printf 'goal: new <= 1.05 x (kyverno layer %s + policy layer %s) = %s: %s\n' "$(mb "$kyv")" "$(mb "$pol")" "$(mb "$goal")" \
  "$(met "$nb <= $goal")"

echo "== the weekly rebuild after the base moved (same tools and policies)"
both moved b
base_layer=$(layer_size moved base)
s=$(cut -d' ' -f3 "$work/seed.moved"); n=$(cut -d' ' -f3 "$work/new.moved")
printf 'seed: %s pushed; new: %s pushed; ratio new/seed %.3f\n' "$(mb "$s")" "$(mb "$n")" "$(echo "$n / $s" | bc -l)"
printf 'goal: new <= base layer %s + 1 MB: %s\n' "$(mb "$base_layer")" "$(met "$n <= $base_layer + 1000000")"

echo "== a policy change (for the record)"
echo "# bench: a policy change" >> "$(find "$ctx/policies" -name '*.yaml' | sort | head -1)"
both policy b
s=$(cut -d' ' -f3 "$work/seed.policy"); n=$(cut -d' ' -f3 "$work/new.policy")
printf 'seed: %s pushed; new: %s pushed (its policy layer: %s)\n' "$(mb "$s")" "$(mb "$n")" "$(mb "$(layer_size policy policies)")"
