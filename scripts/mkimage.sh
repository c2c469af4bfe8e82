#!/bin/sh
# Write an importable OCI image layout archive (one plain tar layer) from a
# rootfs directory, or from Debian's busybox-static when none is given:
#
#   scripts/mkimage.sh OUT.tar [NAME [ROOTFS_DIR]]      (NAME default: busybox:latest)
#   berthctl image import OUT.tar
#
# MKIMAGE_CMD, a JSON array, replaces the image's Cmd (default ["sh"]), e.g.
# for a CRI sandbox ("pause") image that must run until stopped.
# Needs tar and sha256sum (coreutils); busybox-static for the default rootfs.
set -eu

die() { echo "mkimage.sh: error: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: $0 OUT.tar [NAME [ROOTFS_DIR]]"
out=$1
name=${2:-busybox:latest}
src=${3:-}
case $out in /*) ;; *) out=$(pwd)/$out ;; esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ -z "$src" ]; then
    # The same rootfs as scripts/mkbundle.sh makes.
    scripts_dir=$(cd "$(dirname "$0")" && pwd)
    "$scripts_dir/mkbundle.sh" "$work/bundle" >/dev/null 2>&1 || die "mkbundle.sh failed (is busybox-static installed?)"
    src=$work/bundle/rootfs
fi
[ -d "$src" ] || die "$src: not a directory"

blobs=$work/layout/blobs/sha256
mkdir -p "$blobs"

# blob FILE: move FILE into blobs/ under its digest; prints "DIGEST SIZE".
blob() {
    d=$(sha256sum "$1" | cut -d' ' -f1)
    s=$(wc -c <"$1" | tr -d ' ')
    mv "$1" "$blobs/$d"
    echo "$d $s"
}

# The default image is reproducible (the same digest on every run, so a
# second import is a no-op): its files' times are clamped to busybox's.
mtime=
[ -n "${3:-}" ] || mtime="--mtime=@$(stat -c %Y "$(readlink -f /bin/busybox)") --clamp-mtime"
# shellcheck disable=SC2086
tar --numeric-owner --owner=0 --group=0 --sort=name $mtime -C "$src" -cf "$work/layer" .
set -- $(blob "$work/layer"); layer=$1; layer_size=$2

printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":%s},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "${MKIMAGE_CMD:-[\"sh\"]}" "$layer" >"$work/config"
set -- $(blob "$work/config"); config=$1; config_size=$2

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$config" "$config_size" "$layer" "$layer_size" >"$work/manifest"
set -- $(blob "$work/manifest"); manifest=$1; manifest_size=$2

printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s"}}]}' \
    "$manifest" "$manifest_size" "$name" >"$work/layout/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$work/layout/oci-layout"

# shellcheck disable=SC2086
tar --numeric-owner --owner=0 --group=0 --sort=name $mtime -C "$work/layout" -cf "$out" oci-layout index.json blobs
echo "mkimage.sh: $out: OCI image $name (sha256:$config)" >&2
