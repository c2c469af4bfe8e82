//! A block device scheduled by BFQ, for `blockIO.weightDevice` on cgroup v1
//! (`blkio.bfq.weight_device`): the kernel refuses a weight for a device
//! whose scheduler is not BFQ (EOPNOTSUPP), so the root disk, usually on
//! mq-deadline or none, cannot show that the runtime applied the field.
//!
//! A disk already on BFQ is used as it is. Otherwise the test makes its own:
//! a loop device over a sparse file in its directory, switched to BFQ; the
//! cleanup detaches it (the file goes with the test's tmpfs). The host's
//! disks are never touched.

use std::fs;
use std::process::Command;

use crate::ctx::{Ctx, Res};
use crate::skip;

fn active_bfq(sched: &str) -> bool {
    sched.split_whitespace().any(|s| s == "[bfq]")
}

/// major:minor of a device on BFQ.
pub fn device(cx: &Ctx) -> Res<(u64, u64)> {
    let mut offered = false;
    for e in fs::read_dir("/sys/block").map_err(|e| format!("read /sys/block: {e}"))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let sched = fs::read_to_string(e.path().join("queue/scheduler")).unwrap_or_default();
        offered |= sched.split_whitespace().any(|s| s.trim_matches(|c| c == '[' || c == ']') == "bfq");
        // Someone else's loop device may go away mid-test: only disks.
        if active_bfq(&sched) && !name.starts_with("loop") {
            return dev_numbers(&name);
        }
    }
    if !offered && Command::new("modprobe").arg("bfq").status().map(|s| !s.success()).unwrap_or(true) {
        skip!("no block device offers the BFQ I/O scheduler and `modprobe bfq` failed (blkio.bfq.weight_device needs BFQ)");
    }
    let img = cx.file("bfq.img");
    fs::File::create(&img)
        .and_then(|f| f.set_len(16 << 20))
        .map_err(|e| format!("create {}: {e}", img.display()))?;
    let out = Command::new("losetup")
        .args(["--find", "--show"])
        .arg(&img)
        .output()
        .map_err(|e| format!("run losetup: {e}"))?;
    if !out.status.success() {
        skip!(
            "cannot attach a loop device for a BFQ-scheduled disk: losetup: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let undo = dev.clone();
    cx.on_cleanup(move || {
        let _ = Command::new("losetup").args(["-d", &undo]).status();
    });
    let name = dev.trim_start_matches("/dev/").to_string();
    let sched = format!("/sys/block/{name}/queue/scheduler");
    fs::write(&sched, "bfq").map_err(|e| format!("write bfq to {sched}: {e}"))?;
    let now = fs::read_to_string(&sched).unwrap_or_default();
    if !active_bfq(&now) {
        crate::fail!("{sched} is {:?} after writing bfq", now.trim());
    }
    dev_numbers(&name)
}

fn dev_numbers(name: &str) -> Res<(u64, u64)> {
    let p = format!("/sys/block/{name}/dev");
    let s = fs::read_to_string(&p).map_err(|e| format!("read {p}: {e}"))?;
    let (a, b) = s.trim().split_once(':').ok_or_else(|| format!("{p}: {s:?}"))?;
    Ok((
        a.parse().map_err(|e| format!("{p}: {e}"))?,
        b.parse().map_err(|e| format!("{p}: {e}"))?,
    ))
}
