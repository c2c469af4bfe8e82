#!/usr/bin/env python3
"""Write the seed corpus fuzz/seeds/<target>/ (committed; rerun to refresh).

Run from the repo root, as root (the netlink seeds are real replies of this
host's kernel; the image seeds use scripts/mkimage.sh on a one-file rootfs):

    python3 fuzz/mkseeds.py [OCI_SCHEMA_DIR]   (default ../shared/oci-runtime-spec/schema)

It also writes fuzz/dicts/<target>.dict, libFuzzer dictionaries: without a
sanitizer runtime libFuzzer sees no string comparisons, so the JSON keys and
enum values of the OCI schema are given to it (scripts/fuzz.sh passes them).

Sources: config.json from scripts/mkbundle.sh and `berth spec` variants,
seccomp-profiles/*.json, captured RTM_GETLINK/RTM_GETADDR replies, launcher
requests and replies as shim/src/launcher/protocol.rs encodes them, ttrpc frames of the
task API built by hand (protobuf wire format), and small image archives and
layers.
"""
import glob
import gzip
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile

SEEDS = "fuzz/seeds"


def put(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def configs(tmp):
    subprocess.run(["scripts/mkbundle.sh", f"{tmp}/bundle"], check=True, capture_output=True)
    with open(f"{tmp}/bundle/config.json", "rb") as f:
        base = json.load(f)
    put("spec_config", "mkbundle.json", json.dumps(base, indent=1))
    rich = json.loads(json.dumps(base))
    rich["mounts"].append({"destination": "/data", "type": "bind", "source": "/tmp",
                           "options": ["rbind", "ro", "nosuid", "rprivate", "idmap"]})
    rich["linux"]["resources"] = {
        "memory": {"limit": 67108864, "swap": 134217728},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-1"},
        "pids": {"limit": 64},
        "blockIO": {"weight": 300},
        "devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}],
    }
    rich["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    rich["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    rich["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    rich["linux"]["namespaces"].append({"type": "user"})
    rich["linux"]["rootfsPropagation"] = "rslave"
    with open("seccomp-profiles/deny-mkdir.json") as f:
        rich["linux"]["seccomp"] = json.load(f)
    rich["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    rich["hooks"] = {"prestart": [{"path": "/bin/true", "args": ["true"], "timeout": 5}]}
    put("spec_config", "rich.json", json.dumps(rich))
    put("spec_config", "process.json", json.dumps(base["process"]))


def full_config(tmp):
    """Every resources, process and linux field berth reads, once."""
    with open(f"{tmp}/bundle/config.json", "rb") as f:
        c = json.load(f)
    c["ociVersion"] = "1.3.0"
    c["process"].update({
        "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
        "scheduler": {"policy": "SCHED_BATCH", "nice": 5, "flags": ["SCHED_FLAG_RESET_ON_FORK"]},
        "execCPUAffinity": {"initial": "0", "final": "0-1"},
        "oomScoreAdj": 100, "noNewPrivileges": True, "umask": 18,
        "user": {"uid": 1, "gid": 1, "additionalGids": [2, 3], "umask": 18},
        "consoleSize": {"height": 24, "width": 80},
    })
    c["linux"].update({
        "resources": {
            "memory": {"limit": 1 << 26, "reservation": 1 << 25, "swap": 1 << 27, "kernel": -1, "kernelTCP": 1 << 20,
                       "swappiness": 10, "disableOOMKiller": True, "useHierarchy": True, "checkBeforeUpdate": True},
            "cpu": {"shares": 512, "quota": 50000, "burst": 1000, "period": 100000, "realtimeRuntime": 950,
                    "realtimePeriod": 1000000, "cpus": "0", "mems": "0", "idle": 1},
            "pids": {"limit": 64},
            "blockIO": {"weight": 300, "leafWeight": 300,
                        "weightDevice": [{"major": 7, "minor": 0, "weight": 200, "leafWeight": 100}],
                        "throttleReadBpsDevice": [{"major": 7, "minor": 0, "rate": 1048576}],
                        "throttleWriteIOPSDevice": [{"major": 7, "minor": 0, "rate": 100}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
            "network": {"classID": 1048577, "priorities": [{"name": "lo", "priority": 5}]},
            "rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 10000}},
            "unified": {"memory.high": "max", "io.weight": "default 100"},
            "devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "b", "major": 7, "minor": -1, "access": "r"}],
        },
        "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0}],
        "personality": {"domain": "LINUX32", "flags": []},
        "timeOffsets": {"monotonic": {"secs": 10, "nanosecs": 0}, "boottime": {"secs": 1, "nanosecs": 5}},
        "intelRdt": {"closID": "c", "l3CacheSchema": "L3:0=f", "memBwSchema": "MB:0=50"},
        "memoryPolicy": {"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]},
        "netDevices": {"eth1": {"name": "eth9"}},
        "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"],
        "mountLabel": "", "cgroupsPath": "/berth/x",
    })
    c["linux"]["namespaces"] += [{"type": "cgroup"}, {"type": "time"}]
    c["mounts"].append({"destination": "/m", "type": "tmpfs", "source": "tmpfs",
                        "options": ["nosuid", "rro", "mode=755"], "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]})
    put("spec_config", "full.json", json.dumps(c))


def dicts(schema):
    keys, enums = set(), set()

    def walk(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k == "properties" and isinstance(v, dict):
                    keys.update(v)
                if k == "enum" and isinstance(v, list):
                    enums.update(x for x in v if isinstance(x, str))
                walk(v)
        elif isinstance(o, list):
            for x in o:
                walk(x)
    for f in sorted(glob.glob(f"{schema}/*.json")):
        with open(f) as fh:
            walk(json.load(fh))
    if not keys:
        sys.exit(f"mkseeds.py: no OCI schema in {schema}")
    words = sorted(f'"\\"{k}\\""' for k in keys) + sorted(f'"{e}"' for e in enums)
    os.makedirs("fuzz/dicts", exist_ok=True)
    with open("fuzz/dicts/oci.dict", "w") as f:
        f.write("# OCI runtime-spec schema keys and enum values (fuzz/mkseeds.py)\n")
        f.write("\n".join(words) + "\n")
    for t in ("spec_config", "seccomp_profile", "shim_launcher", "shim_ttrpc"):
        if os.path.lexists(f"fuzz/dicts/{t}.dict"):
            os.remove(f"fuzz/dicts/{t}.dict")
        os.symlink("oci.dict", f"fuzz/dicts/{t}.dict")
    opts = ["bind", "rbind", "ro", "rro", "rw", "rrw", "nosuid", "rnosuid", "nodev", "noexec", "rprivate",
            "rshared", "rslave", "private", "shared", "slave", "unbindable", "runbindable", "idmap", "ridmap",
            "tmpcopyup", "remount", "strictatime", "relatime", "noatime", "nosymfollow", "mode=", "size="]
    with open("fuzz/dicts/mount_options.dict", "w") as f:
        f.write("# mount options (fuzz/mkseeds.py)\n" + "\n".join(f'"{o}"' for o in opts) + "\n")


def mount_options():
    put("mount_options", "bind", "rbind\nro\nnosuid\nnodev\nrprivate")
    put("mount_options", "tmpfs", "shared\nnosuid\nstrictatime\nmode=755\nsize=65536k")
    put("mount_options", "rec", "rro\nrnosuid\nridmap\nrecursive_attrs")


def seccomp():
    for n in sorted(os.listdir("seccomp-profiles")):
        if n.endswith(".json"):
            shutil.copy(f"seccomp-profiles/{n}", f"{SEEDS}/seccomp_profile/{n}")
    put("seccomp_profile", "args.json", json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                      "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_NE"},
                               {"index": 1, "value": 255, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]}]}))


def netlink():
    RTM_GETLINK, RTM_GETADDR, DUMP = 18, 22, 0x300 | 1
    for name, typ, body in (("links", RTM_GETLINK, bytes(16)), ("addrs", RTM_GETADDR, bytes(8))):
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
        s.bind((0, 0))
        seq = 7
        s.send(struct.pack("=IHHII", 16 + len(body), typ, DUMP, seq, 0) + body)
        put("netlink_reply", name, struct.pack("=I", seq) + s.recv(65536))
        s.close()
    # A failed request: NLMSG_ERROR with -ENODEV and the request echoed.
    put("netlink_reply", "error", struct.pack("=IIHHIIi", 9, 36, 2, 0, 9, 0, -19) + bytes(16))


def launcher():
    """Requests (JSON) and replies (u32 LE header length, JSON, raw data) as
    shim/src/launcher/protocol.rs encodes them."""
    root, rid = "/run/berth", "c1"
    reqs = [
        {"create": {"bundle": "/b", "console": "/s.sock"}},
        {"exec": {"process": "/b/p.json"}},
        {"update": {"resources": {"memory": {"limit": 1 << 26, "swap": -1}, "pids": {"limit": 9},
                                  "cpu": {"shares": 512, "cpus": "0-1"}, "unified": {"memory.high": "max"},
                                  "devices": [{"allow": False, "access": "rwm"}]}}},
        "stats",
        "start",
    ]
    for i, op in enumerate(reqs):
        put("shim_launcher", f"req{i}", json.dumps({"root": root, "id": rid, "op": op}))

    def reply(header, data=b""):
        h = json.dumps(header).encode()
        return struct.pack("<I", len(h)) + h + data

    put("shim_launcher", "reply-ok", reply({"ok": {"created": {"pid": 42, "cgroups": {
        "procs_dirs": ["/sys/fs/cgroup/pids/c1"], "memory_dir": None, "v2": False}}}}))
    put("shim_launcher", "reply-stats", reply({"ok": {"stats": {"type_url": "io.containerd.cgroups.v1.Metrics"}}},
                                              bytes(range(256))))
    put("shim_launcher", "reply-err", reply({"error": {"kind": "not_found", "msg": "container \"c1\" does not exist"}}))


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, value):
    if isinstance(value, bool) or isinstance(value, int):
        return varint(num << 3) + varint(int(value))
    if isinstance(value, str):
        value = value.encode()
    return varint(num << 3 | 2) + varint(len(value)) + value


def ttrpc():
    def frame(method, payload):
        req = field(1, "containerd.task.v2.Task") + field(2, method) + field(3, payload) + field(4, 10**9)
        return struct.pack(">IIBB", len(req), 1, 1, 0) + req
    mount = field(1, "overlay") + field(2, "overlay") + field(4, "lowerdir=/l") + field(4, "upperdir=/u") + field(4, "ro")
    create = field(1, "c1") + field(2, "/run/b/c1") + field(3, mount) + field(4, False) + field(6, "/f/out")
    put("shim_ttrpc", "create", frame("Create", create))
    spec = json.dumps({"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["A=b"]})
    any_ = field(1, "types.containerd.io/opencontainers/runtime-spec/1/Process") + field(2, spec)
    put("shim_ttrpc", "exec", frame("Exec", field(1, "c1") + field(2, "e1") + field(7, any_)))
    res = field(1, "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources") + field(2, json.dumps({"cpu": {"shares": 2}}))
    put("shim_ttrpc", "update", frame("Update", field(1, "c1") + field(2, res)))
    put("shim_ttrpc", "kill", frame("Kill", field(1, "c1") + field(3, 9) + field(4, True)))


def tar_bytes(members, gz=False):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w", format=tarfile.GNU_FORMAT) as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def member(name, typ=tarfile.REGTYPE, data=None, link="", mode=0o644):
    i = tarfile.TarInfo(name)
    i.type, i.mode, i.linkname = typ, mode, link
    if data is not None:
        i.size = len(data)
    return i, data


def images(tmp):
    root = f"{tmp}/rootfs"
    os.makedirs(f"{root}/bin")
    with open(f"{root}/bin/hello", "w") as f:
        f.write("#!/bin/sh\necho hello\n")
    subprocess.run(["scripts/mkimage.sh", f"{tmp}/img.tar", "tiny:1", root], check=True, capture_output=True)
    with open(f"{tmp}/img.tar", "rb") as f:
        put("image_archive", "oci-layout.tar", f.read())
    layer = tar_bytes([
        member("./", tarfile.DIRTYPE, mode=0o755), member("etc/", tarfile.DIRTYPE, mode=0o755),
        member("etc/hostname", data=b"box\n"), member("etc/link", tarfile.SYMTYPE, link="hostname"),
        member("etc/hard", tarfile.LNKTYPE, link="etc/hostname"), member("etc/.wh.old"),
        member("var/.wh..wh..opq"), member("dev/null", tarfile.CHRTYPE, mode=0o666),
    ])
    put("image_layer", "layer.tar", layer)
    put("image_layer", "layer.tar.gz", gzip.compress(layer, mtime=0))


def main():
    shutil.rmtree(SEEDS, ignore_errors=True)
    os.makedirs(f"{SEEDS}/seccomp_profile")
    dicts(sys.argv[1] if len(sys.argv) > 1 else "../shared/oci-runtime-spec/schema")
    with tempfile.TemporaryDirectory() as tmp:
        configs(tmp)
        full_config(tmp)
        images(tmp)
    mount_options()
    seccomp()
    netlink()
    launcher()
    ttrpc()


if __name__ == "__main__":
    main()
