#!/bin/sh
# Runs inside the Dockerfile's preparation stages (on DOWNLOAD_IMAGE: busybox or any POSIX
# sh with wget, sha256sum, tar, find, touch), never on the host.
#
#   image-stage.sh fetch TOOL URL SHA256 MEMBER
#     downloads TOOL's release tarball, checks it against its pinned sha256 and unpacks
#     only MEMBER (the binary) as /out/usr/local/bin/TOOL, then normalizes /out.
#   image-stage.sh normalize DIR
#     fixes every path's metadata under DIR: mtime 0, owner 0:0, directories and
#     executables 0755, other files 0644.
#
# The final stage copies each /out tree as a whole, and that copy also gives the
# directories on the way (/usr, /usr/local/bin...) the tree's metadata: with it fixed, the
# same bytes always make the same layer, whatever the base and whenever built.
# Every failure names the tool: the xtask reads `download failed for TOOL`, `checksum
# mismatch for TOOL` and `no MEMBER in the TOOL tarball`.
set -eu

# `-exec ... \;` rather than `+`: not every busybox build has the latter.
normalize() {
  chown -R 0:0 "$1"
  find "$1" -type d -exec chmod 0755 {} \;
  find "$1" -type f -perm -u+x -exec chmod 0755 {} \;
  find "$1" -type f ! -perm -u+x -exec chmod 0644 {} \;
  # Symlinks are left alone (`touch` would follow them); the image holds none.
  find "$1" ! -type l -exec touch -d @0 {} \;
}

fetch() {
  tool=$1 url=$2 sum=$3 member=$4
  tarball=/tmp/$tool.tar.gz
  echo "fetching $tool from $url"
  wget -q -O "$tarball" "$url" || { echo "download failed for $tool from $url"; exit 1; }
  printf '%s  %s\n' "$sum" "$tarball" > "/tmp/$tool.sha256"
  sha256sum -c "/tmp/$tool.sha256" || { echo "checksum mismatch for $tool: $url is not the release pinned by its sha256 $sum"; exit 1; }
  mkdir -p /out/usr/local/bin
  tar -xzOf "$tarball" "$member" > "/out/usr/local/bin/$tool" || { echo "no $member in the $tool tarball"; exit 1; }
  chmod 0755 "/out/usr/local/bin/$tool"
  rm -f "$tarball" "/tmp/$tool.sha256"
  normalize /out
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  fetch) [ $# -eq 4 ] || { echo "usage: image-stage.sh fetch TOOL URL SHA256 MEMBER" >&2; exit 2; }; fetch "$@" ;;
  normalize) [ $# -eq 1 ] || { echo "usage: image-stage.sh normalize DIR" >&2; exit 2; }; normalize "$1" ;;
  *) echo "usage: image-stage.sh fetch|normalize ..." >&2; exit 2 ;;
esac
