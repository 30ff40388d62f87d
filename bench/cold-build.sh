#!/usr/bin/env bash
# Cold build of the xtask vs a baseline crate that only uses the six chosen crates.
# All use the same Cargo.lock versions, an empty target dir, crates already fetched.
# Two baselines: with cargo's default profile (the issue's definition), and with the same
# [profile] settings as this workspace (to show what the settings alone are worth).
# Runs alternate (baseline, baseline-same-profile, xtask, ...) so machine load hits all alike.
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
same="$work/baseline-same-profile"
cp -r "$base" "$same"
sed -n '/^\[profile/,$p' "$root/Cargo.toml" >> "$same/Cargo.toml"
(cd "$base" && cargo fetch -q && cd "$same" && cargo fetch -q && cd "$root" && cargo fetch -q)

now() { date +%s.%N; }
time_build() { # dir [cargo build args...] -> seconds of a cold `cargo build`
  local t0 t1; rm -rf "$work/target"
  t0=$(now); (cd "$1" && CARGO_TARGET_DIR="$work/target" cargo build -q --offline "${@:2}" >/dev/null 2>&1); t1=$(now)
  echo "$t1 - $t0" | bc
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

: > "$work/b"; : > "$work/s"; : > "$work/x"
for _ in $(seq "$rounds"); do
  time_build "$base" >> "$work/b"
  time_build "$same" >> "$work/s"
  time_build "$root" -p xtask >> "$work/x"
done
b=$(median < "$work/b"); sp=$(median < "$work/s"); x=$(median < "$work/x")
echo "baseline (six crates), default profile, median of $rounds: ${b}s  [$(tr '\n' ' ' < "$work/b")]"
echo "baseline (six crates), same profile,    median of $rounds: ${sp}s  [$(tr '\n' ' ' < "$work/s")]"
echo "xtask,                                  median of $rounds: ${x}s  [$(tr '\n' ' ' < "$work/x")]"
echo "ratio xtask/baseline: $(echo "scale=3; $x / $b" | bc) (goal <= 1.25)"
echo "ratio xtask/baseline with the same profile: $(echo "scale=3; $x / $sp" | bc) (the cost of the xtask's own code)"
