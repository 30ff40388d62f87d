# shellcheck shell=bash
# Sourced by bench/smoke.sh and bench/image-size.sh: builds a bench image from the repo's
# real Dockerfile with `cargo xtask image`, on a busybox base (no image can be pulled
# here) with the test stand-ins of kyverno/helm/pluto (xtask/tests/standins) served from a
# loopback HTTP server, in a throwaway copy of the repo whose image name is pp-bench-$$.
# Sets IMAGE, BENCH_ROOT (the copy, for XTASK_ROOT) and XTASK; cleans up on exit.
# Needs: docker, git, python3, busybox-static, cargo.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d /tmp/pp-bench.XXXXXX)
base_image="pp-bench-base-$$:busybox"
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  docker images --format '{{.Repository}}:{{.Tag}}' | grep -E "^pp-bench(-base)?-$$:" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

(cd "$root" && cargo build -q -p xtask)
XTASK="$root/target/debug/xtask"

# The busybox base.
mkdir -p "$work/base/bin" "$work/base/etc" "$work/base/tmp"
cp /usr/bin/busybox "$work/base/bin/busybox"
for a in $(/usr/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$work/base/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$work/base/etc/passwd"
echo 'root:x:0:' > "$work/base/etc/group"
chmod 1777 "$work/base/tmp"
tar -C "$work/base" -cf "$work/base.tar" .
docker import --change 'ENV PATH=/usr/local/bin:/bin' --change 'CMD ["/bin/sh"]' "$work/base.tar" "$base_image" >/dev/null

# The stand-in tarballs, in the upstream layouts, at the Dockerfile's pinned versions.
# shellcheck disable=SC1003 # '\\' is tr's spelling of one backslash (the Dockerfile's line continuations)
pin() { tr '\\' '\n' < "$root/Dockerfile" | grep -o "$1_VERSION=[^ ]*" | head -1 | cut -d= -f2; }
mkdir -p "$work/srv"
pack() { # tool member file
  local d="$work/pack-$1" v; v=$(pin "${1^^}")
  mkdir -p "$d/$(dirname "$2")"
  sed "s/@VERSION@/$v/g" "$root/xtask/tests/standins/$1" > "$d/$2"
  chmod 0755 "$d/$2"
  tar --owner=0 --group=0 -czf "$work/srv/$3" -C "$d" "${2%%/*}"
  build_args+=(--build-arg "${1^^}_SHA256=$(sha256sum "$work/srv/$3" | cut -c1-64)")
}
build_args=(--build-arg "BASE_IMAGE=$base_image" --build-arg "DOWNLOAD_IMAGE=$base_image" --network host)
pack kyverno kyverno "kyverno-cli_v$(pin KYVERNO)_linux_x86_64.tar.gz"
pack helm linux-amd64/helm "helm-v$(pin HELM)-linux-amd64.tar.gz"
pack pluto pluto "pluto_$(pin PLUTO)_linux_amd64.tar.gz"
python3 -c 'import http.server, socketserver, sys, os
os.chdir(sys.argv[1])
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
s = socketserver.TCPServer(("127.0.0.1", 0), Quiet)
print(s.server_address[1], flush=True)
s.serve_forever()' "$work/srv" > "$work/port" &
server_pid=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done

# A committed copy of the repo named pp-bench-$$, then the real `cargo xtask image`.
BENCH_ROOT="$work/repo"
mkdir -p "$BENCH_ROOT"
(cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} cp --parents {} "$BENCH_ROOT/" 2>/dev/null || true)
sed -i "s/^image = .*/image = \"pp-bench-$$\"/" "$BENCH_ROOT/Cargo.toml"
# The benches give BASE_IMAGE themselves (a local busybox); no base line to follow.
sed -i '/^base-image-track/d' "$BENCH_ROOT/Cargo.toml"
(cd "$BENCH_ROOT" && git init -q -b main && git add -A && git -c user.name=bench -c user.email=bench@example.invalid commit -qm bench)
XTASK_ROOT="$BENCH_ROOT" "$XTASK" image --tools-mirror "http://127.0.0.1:$(cat "$work/port")" "${build_args[@]}" > "$work/build.log" 2>&1 \
  || { cat "$work/build.log"; echo "bench: building the bench image failed" >&2; exit 1; }
# shellcheck disable=SC2034 # IMAGE is for the scripts that source this file
IMAGE="pp-bench-$$:$(cat "$BENCH_ROOT/VERSION")"
