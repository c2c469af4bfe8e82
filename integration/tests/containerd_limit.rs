//! containerd-shim-berth-v2's bound on a launcher request, under a real
//! containerd (1.6 and 2.1): with `BERTH_SHIM_REQUEST_LIMIT=3` in
//! containerd's environment (which its shims inherit), a create whose
//! createRuntime hook sleeps 60 s fails after about 3 s instead of
//! waiting for the hook. A test binary of its own: the variable is set for
//! the whole process.

use berth_integration::containerd::{Containerd, Version, RUNTIME};
use berth_integration::prelude::*;

berth_integration::each_containerd!(slow_request_is_cut_off);

fn slow_request_is_cut_off(v: Version) {
    std::env::set_var("BERTH_SHIM_REQUEST_LIMIT", "3");
    let c = Containerd::start(v, "limit");
    let rootfs = c.dir.join("rootfs-slow");
    berth_integration::bundle::make_busybox_rootfs(&rootfs).unwrap();
    let marker = format!("limit-hook-{}", c.ns);
    let mut spec = default_config(&["true"]);
    spec["root"]["path"] = json!(rootfs);
    spec["linux"]["cgroupsPath"] = json!(format!("/{}/slow", c.ns));
    spec["hooks"] = json!({"createRuntime": [
        {"path": "/bin/sh", "args": ["sh", "-c", "sleep 60; true", marker]}
    ]});
    let path = c.dir.join("spec-slow.json");
    fs::write(&path, spec.to_string()).unwrap();
    let start = std::time::Instant::now();
    let args = [
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        "--config",
        path.to_str().unwrap(),
        "slow",
    ];
    let o = c.ctr(&args);
    let took = start.elapsed();
    for p in host::pids_with_marker(&marker) {
        host::kill9(p);
    }
    assert!(!o.success(), "{o}");
    assert!(o.stderr.contains("without replying"), "{o}");
    assert!(took < Duration::from_secs(20), "took {took:?}: {o}");
    c.ctr(&["containers", "rm", "slow"]);
    c.assert_clean();
}
