//! Pieces of the container-escape tests shared by the entry points that
//! start processes in a container (`berth exec`, `berth run`, the shim's
//! Create and Exec): Docker's default capabilities, and a watcher that
//! looks at an exec'd process from inside the container while it still
//! runs the runtime's code.

/// Docker's default capability set (no CAP_SYS_PTRACE, no CAP_SYS_ADMIN).
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SYS_CHROOT",
    "CAP_MKNOD",
    "CAP_AUDIT_WRITE",
    "CAP_SETFCAP",
];

/// A container script (run as the container's init, as root with
/// CAP_SYS_PTRACE): for each round K (the host creates `/goK`), make
/// `/etc/passwd` a FIFO, so that an exec'd process whose environment has no
/// HOME blocks reading it (the runtime looks HOME up there before execve,
/// while the process still runs the runtime's code), say so (`/readyK`
/// holds "ok"), find that process (its command line contains `marker`),
/// write what it holds to `/reportK` (fds, whether cwd and root are the
/// container's, whether its exe could be opened), keep a handle on its
/// exe, release it, and once the host says the exec is over (`/laterK`),
/// try writing through the kept handle. `/reportK` ends with "done".
pub fn watcher(marker: &str) -> String {
    // The marker is split so that the watcher's own command line (and
    // grep's) never contains it.
    let (a, b) = marker.split_at(marker.len() / 2);
    format!(
        r#"m={a}; m=${{m}}{b}; k=0
while :; do k=$((k+1)); while [ ! -e /go$k ]; do sleep 0.02; done
  rm -f /etc/passwd; mkfifo /etc/passwd; echo ok > /ready$k; r=/report$k; : > $r.tmp; t=0; found=
  while [ -z "$found" ] && [ $t -lt 500 ]; do
    for p in /proc/[0-9]*; do
      [ "$p" = /proc/$$ ] && continue
      grep -q -- "$m" $p/cmdline 2>/dev/null || continue
      found=$p; echo "pid ${{p#/proc/}} $(tr '\0' ' ' < $p/cmdline)" >> $r.tmp
      if ls $p/fd/ >/dev/null 2>&1; then
        for f in $p/fd/*; do l=$(readlink $f); echo "fd ${{f##*/}} $l" >> $r.tmp
          [ -d "$f" ] && echo "dirfd ${{f##*/}} $l" >> $r.tmp; done
        [ $p/cwd -ef / ] && echo cwd-inside >> $r.tmp || echo "cwd-outside $(readlink $p/cwd)" >> $r.tmp
        [ $p/root -ef / ] && echo root-inside >> $r.tmp || echo "root-outside $(readlink $p/root)" >> $r.tmp
      else echo fd-denied >> $r.tmp; fi
      if ( exec 3< $p/exe ) 2>/dev/null; then exec 3< $p/exe; echo exe-read-open >> $r.tmp; else echo exe-denied >> $r.tmp; fi
      break
    done; t=$((t+1)); [ -z "$found" ] && sleep 0.02
  done
  [ -z "$found" ] && echo notfound >> $r.tmp
  mv $r.tmp $r
  echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd
  while [ ! -e /later$k ]; do sleep 0.02; done
  if [ -e /proc/self/fd/3 ]; then i=0; while [ $i -lt 100 ]; do
    e=$( ( printf X >> /proc/self/fd/3 ) 2>&1 ) && {{ echo later-write-open >> $r; break; }}
    case $e in *busy*) sleep 0.05; i=$((i+1));; *) echo "later-write-denied: $e" >> $r; break;; esac; done
    exec 3<&-; fi
  rm -f /etc/passwd; echo done >> $r
done"#
    )
}

/// The lines of a [`watcher`] report that show a host object in the
/// process: a directory fd, a cwd or root outside the container, an fd
/// above stdio other than a socket (sync, console) or the runtime's
/// sealed exec trampoline, or its exe written after it exited. Panics when
/// the report shows the attack was not set up (process not seen, or its
/// exe not openable: the watcher lacks CAP_SYS_PTRACE).
pub fn host_objects_in(report: &str) -> Vec<String> {
    assert!(
        report.contains("exe-read-open"),
        "the watcher could not open the process's exe (no CAP_SYS_PTRACE?): the attack was not set up:\n{report}"
    );
    exposed_in(report)
}

/// As [`host_objects_in`], where the watcher may also be refused the
/// process outright (its fds and exe): rootless, the exec'd process's
/// memory belongs to the host's user namespace, where the container's
/// CAP_SYS_PTRACE counts for nothing. Panics if the process was not seen,
/// or if its fds could be listed but its exe not opened (a half-refused
/// view that says the set-up is not what the test thinks).
pub fn host_objects_or_refused(report: &str) -> Vec<String> {
    if report.contains("fd-denied") && report.contains("exe-denied") {
        assert!(report.contains("pid "), "the exec'd process was never seen:\n{report}");
        return Vec::new();
    }
    host_objects_in(report)
}

fn exposed_in(report: &str) -> Vec<String> {
    assert!(
        report.contains("pid "),
        "the exec'd process was never seen:\n{report}"
    );
    report
        .lines()
        .filter(|line| {
            line.starts_with("dirfd")
                || line.contains("-outside")
                || line.starts_with("later-write-open")
                || line.strip_prefix("fd ").is_some_and(|fd| {
                    let (n, target) = fd.split_once(' ').unwrap_or((fd, ""));
                    let n: u32 = n.parse().unwrap_or(99);
                    n > 2
                        && !(target.starts_with("socket:")
                            || target.starts_with("/memfd:berth-exec"))
                })
        })
        .map(str::to_string)
        .collect()
}
