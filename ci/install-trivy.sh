#!/bin/sh
# Installs the Trivy the scan accepts (`trivy-version` in Cargo.toml) from its release
# tarball, checked against the sha256 pinned in ci/trivy.sha256: one line per tarball, so a
# version bump without its sum fails here. The release's own checksum file is not used (it
# comes from the same place as the tarball), and a `trivy` already on PATH is never trusted
# because of the version it prints: the download, check and install always run.
# Never 0.69.4 (the compromised release).
# Environment (tests, mirrors): INSTALL_TRIVY_FROM (default: GitHub's release downloads;
# the pinned sum still applies), INSTALL_TRIVY_TO (default /usr/local/bin, else
# ~/.local/bin when that is not writable).
set -eu
cd "$(dirname "$0")/.."

die() { echo "error: $2" >&2; exit "$1"; }

version=$(sed -n 's/^trivy-version = "\(.*\)"$/\1/p' Cargo.toml)
printf '%s\n' "$version" | grep -Eqx '[0-9]+\.[0-9]+\.[0-9]+' \
  || die 2 "Cargo.toml: trivy-version '$version' is not one X.Y.Z version; pin exactly one Trivy release"
[ "$version" != 0.69.4 ] || die 2 "Cargo.toml: trivy $version is the compromised release; pin another version"
[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] \
  || die 3 "only Linux x86_64 is pinned in ci/trivy.sha256, this is $(uname -s)-$(uname -m); add that tarball's sum"

file="trivy_${version}_Linux-64bit.tar.gz"
sum=$(awk -v f="$file" '$2 == f { print $1 }' ci/trivy.sha256)
printf '%s\n' "$sum" | grep -Eqx '[0-9a-f]{64}' \
  || die 2 "ci/trivy.sha256 pins no single sha256 for $file; add the sum published for Trivy $version next to the version bump"

from=${INSTALL_TRIVY_FROM:-https://github.com/aquasecurity/trivy/releases/download/v$version}
to=${INSTALL_TRIVY_TO:-/usr/local/bin}
if [ -z "${INSTALL_TRIVY_TO:-}" ] && [ ! -w "$to" ]; then to="$HOME/.local/bin"; fi
mkdir -p "$to"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "==> install-trivy: $from/$file"
curl -fsSL --retry 3 -o "$tmp/$file" "$from/$file" || die 3 "could not download $from/$file"
got=$(sha256sum "$tmp/$file" | cut -c1-64)
[ "$got" = "$sum" ] || die 3 "$file has sha256 $got, but ci/trivy.sha256 pins $sum; not installed (a tampered or wrong download)"
tar -xzf "$tmp/$file" -C "$tmp" trivy || die 3 "$file holds no trivy binary"
install -m 0755 "$tmp/trivy" "$to/trivy"

# The scan runs the first trivy on PATH: it must be this one.
found=$(command -v trivy || true)
[ "$found" = "$to/trivy" ] \
  || die 3 "installed $to/trivy, but PATH finds ${found:-no trivy} first; put $to first on PATH or remove the other one"
said=$("$to/trivy" --version) || die 3 "$to/trivy does not run"
printf '%s\n' "$said" | grep -qx "Version: $version" || die 3 "$to/trivy does not report Version: $version"
echo "==> install-trivy: $to/trivy sha256 $(sha256sum "$to/trivy" | cut -c1-64)"
