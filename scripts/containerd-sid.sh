#!/usr/bin/env bash
# Fetch containerd 2.x from Debian sid without touching the system's apt
# state: a private apt configuration (its own source list naming sid on the
# mirror this system already uses, its own lists and cache), `apt-get
# download containerd`, `dpkg -x` into a cache directory. Its static-ish Go
# binaries run on Debian 12. Idempotent.
#
#   scripts/containerd-sid.sh [DIR]     (default /var/cache/berth/containerd-sid)
# Afterwards DIR/usr/bin/{containerd,ctr} exist and DIR/VERSION names the
# package version.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

dest=${1:-${BERTH_CONTAINERD_SID_DIR:-/var/cache/berth/containerd-sid}}
if [ -x "$dest/usr/bin/containerd" ] && [ -x "$dest/usr/bin/ctr" ] && [ -s "$dest/VERSION" ]; then
    log "containerd from sid already in $dest ($(cat "$dest/VERSION"))"
    exit 0
fi
# The Debian mirror this system is configured with.
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
if [ -z "$mirror" ]; then
    mirror=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list 2>/dev/null || true)
fi
[ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list{,.d}"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror sid main" >"$tmp/sources.list"
opts=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
      -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache" -o "APT::Architecture=amd64" -q)
log "apt-get update (private configuration: sid)"
apt-get "${opts[@]}" update >"$tmp/apt.log" 2>&1 || { tail -n 20 "$tmp/apt.log" >&2; die "apt-get update for sid failed"; }
(cd "$tmp" && apt-get "${opts[@]}" download containerd >>"$tmp/apt.log" 2>&1) || { tail -n 20 "$tmp/apt.log" >&2; die "apt-get download containerd (sid) failed"; }
deb=$(ls "$tmp"/containerd_*.deb)
rm -rf "$dest.new"
mkdir -p "$dest.new"
dpkg -x "$deb" "$dest.new"
dpkg-deb -f "$deb" Version >"$dest.new/VERSION"
rm -rf "$dest"
mv "$dest.new" "$dest"
log "containerd $(cat "$dest/VERSION") from sid in $dest"
