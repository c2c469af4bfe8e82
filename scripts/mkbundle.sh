#!/bin/sh
# Make an OCI bundle in DIR: a rootfs from Debian's busybox-static and a
# config.json running CMD (default: sh).
#
#   scripts/mkbundle.sh DIR [CMD [ARG...]]
#
# config.json is close to `runc spec`'s default, with ociVersion 1.0.2 (which
# runc 1.1.5 and crun 1.8.1 also accept), no terminal, and no capabilities
# list; it matches default_config() in integration/src/bundle.rs.
set -eu

die() { echo "mkbundle.sh: error: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: $0 DIR [CMD [ARG...]]"
dir=$1
shift
[ $# -ge 1 ] || set -- sh
busybox=/bin/busybox
[ -x "$busybox" ] || die "$busybox not found (apt-get install busybox-static)"

# One JSON string: backslashes, double quotes, tabs and newlines escaped.
json_str() {
    printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/	/\\t/g' \
        | awk 'NR > 1 { printf "%s", "\\n" } { printf "%s", $0 }')"
}

rootfs=$dir/rootfs
for d in bin sbin usr/bin usr/sbin proc sys dev tmp etc root var run; do
    mkdir -p "$rootfs/$d"
done
cp "$busybox" "$rootfs/bin/busybox"
# Relative links: `busybox --install -s` would point them at the host's
# path of busybox (/usr/bin/busybox on merged-/usr Debian), absent inside.
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -sfn busybox "$rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"

args=""
for a in "$@"; do
    args="$args${args:+, }$(json_str "$a")"
done

cat >"$dir/config.json" <<JSON
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": [$args],
    "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"],
    "cwd": "/",
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": false},
  "hostname": "berth",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]}
  ],
  "linux": {
    "namespaces": [
      {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
      {"type": "uts"}, {"type": "mount"}
    ],
    "maskedPaths": [
      "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
      "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
      "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
    ],
    "readonlyPaths": [
      "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
    ]
  }
}
JSON
echo "mkbundle.sh: bundle in $dir running: $*" >&2
