#!/usr/bin/env bash
# Cold build of the xtask vs a baseline crate that only uses the six chosen crates.
# Both use the same Cargo.lock versions, an empty target dir, crates already fetched.
# Runs alternate (baseline, xtask, ...) so machine load hits both alike.
# Goal (issue 2): xtask / baseline <= 1.25.   Usage: bench/cold-build.sh [ROUNDS=3]
set -euo pipefail
rounds=${1:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

base="$work/baseline"
mkdir -p "$base/src"
sed -n '/^\[dependencies\]/,$p' "$root/xtask/Cargo.toml" > "$work/deps"
{ printf '[package]\nname = "baseline"\nversion = "0.1.0"\nedition = "2021"\n\n'; cat "$work/deps"; } > "$base/Cargo.toml"
cat > "$base/src/main.rs" <<'RS'
// Touches each chosen crate once, so each is compiled and linked in.
fn main() -> anyhow::Result<()> {
    let sh = xshell::Shell::new()?;
    let _ = xshell::cmd!(sh, "true").quiet().run();
    let _ = duct::cmd!("true").run();
    let v = semver::Version::parse("1.0.0")?;
    let j = serde_json::json!({ "v": v.to_string() });
    let _ = which::which("true");
    println!("{j}");
    Ok(())
}
RS
cp "$root/Cargo.lock" "$base/Cargo.lock"
(cd "$base" && cargo fetch -q && cd "$root" && cargo fetch -q)

now() { date +%s.%N; }
time_build() { # dir -> seconds of a cold `cargo build`
  local t0 t1; rm -rf "$work/target"
  t0=$(now); (cd "$1" && CARGO_TARGET_DIR="$work/target" cargo build -q --offline ${2:-} >/dev/null 2>&1); t1=$(now)
  echo "$t1 - $t0" | bc
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

: > "$work/b"; : > "$work/x"
for i in $(seq "$rounds"); do
  time_build "$base" >> "$work/b"
  time_build "$root" "-p xtask" >> "$work/x"
done
b=$(median < "$work/b"); x=$(median < "$work/x")
echo "baseline (six crates) cold build, median of $rounds: ${b}s  [$(tr '\n' ' ' < "$work/b")]"
echo "xtask cold build,                 median of $rounds: ${x}s  [$(tr '\n' ' ' < "$work/x")]"
ratio=$(echo "scale=3; $x / $b" | bc)
echo "ratio xtask/baseline: $ratio (goal <= 1.25)"
