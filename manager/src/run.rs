//! `berthctl run`: check the flags, make the container's directory and
//! bundle, start its shim, Create and Start through it, then either print
//! the name (-d) or stream its stdio and return its exit status. Anything
//! failing before the container runs takes everything made so far with it.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::cli::RunArgs;
use crate::shim::{self, Shim};
use crate::store::{self, check_name, random_hex, write_atomic, Container, Store};
use crate::{image, rootfs, spec, stream};

/// Undoes a half-made container on drop, unless committed.
struct Undo<'a> {
    store: &'a Store,
    cdir: PathBuf,
    shim: Option<Arc<Shim>>,
    committed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        if let Some(s) = &self.shim {
            let _ = s.kill("", libc::SIGKILL as u32, true);
            let _ = s.delete("");
            s.shutdown();
        }
        let _ = rootfs::release(&self.cdir);
        let _ = fs::remove_dir_all(&self.cdir);
        cleanup_namespace(self.store);
    }
}

/// berth's state root for our namespace goes once it is empty.
pub fn cleanup_namespace(store: &Store) {
    let _ = fs::remove_dir(Path::new("/run/containerd-berth").join(shim::namespace(&store.root)));
}

/// The cgroup of a container of this store.
fn cgroup_path(store: &Store, name: &str) -> String {
    format!("/berth/{}-{name}", shim::namespace(&store.root))
}

pub fn run(store: &Store, a: RunArgs) -> Result<i32, String> {
    if a.rm && a.detach {
        return Err("--rm with -d is not supported: berthctl has no daemon to remove the container when it exits".into());
    }
    if a.interactive && a.detach {
        return Err("-i with -d is not supported: a detached container's stdin is closed".into());
    }
    if a.tty && a.detach {
        return Err("-t with -d is not supported: a detached container's output goes to its log file".into());
    }
    let name = match &a.name {
        Some(n) => n.clone(),
        None => format!("c-{}", random_hex(5)),
    };
    check_name(&name).map_err(|e| format!("--name: {e}"))?;
    // What runs: an image, or a bundle.
    let (img_cfg, base, image_rootfs, image_ref, image_id, cmd) = match &a.bundle {
        Some(b) => {
            let (cfg, rootfs) = bundle_config(b)?;
            (Value::Null, Some(cfg), Some(rootfs), String::new(), String::new(), a.image.clone())
        }
        None => {
            let r = a.image.first().ok_or("run: give an IMAGE (or --bundle DIR)")?;
            let img = match (a.pull.as_str(), image::lookup(store, r)) {
                ("always", _) => {
                    crate::pull::pull(store, r, &a.conn.conn(), a.quiet)?;
                    image::lookup(store, r)?
                }
                ("missing", Err(_)) => {
                    crate::pull::pull(store, r, &a.conn.conn(), a.quiet)
                        .map_err(|e| format!("no such image: {r} here (berthctl image ls), and {e}"))?;
                    image::lookup(store, r)?
                }
                (_, found) => found?,
            };
            (img.config()?, None, Some(img.rootfs()), r.clone(), img.meta.id.clone(), a.image[1..].to_vec())
        }
    };
    let from_image = base.is_none();
    let mut config = spec::build(&a, &name, &img_cfg, base, image_rootfs.as_deref(), &cmd, &cgroup_path(store, &name))?;
    if a.tty {
        // The size from the start: the process may ask before the first resize.
        if let Some((cols, rows)) = stream::term_size() {
            config["process"]["consoleSize"] = serde_json::json!({"height": rows, "width": cols});
        }
    }
    let cdir = store.container_dir(&name);
    match fs::create_dir(&cdir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(format!("container name {name:?} is already in use (berthctl rm -f {name})"));
        }
        Err(e) => return Err(format!("create {}: {e}", cdir.display())),
    }
    // From here on, a failure removes everything (signals too: blocked, and
    // passed on to the container once it runs).
    let sigs = stream::block_signals();
    let mut undo = Undo { store, cdir: cdir.clone(), shim: None, committed: false };
    let bundle = cdir.join("bundle");
    fs::create_dir(&bundle).map_err(|e| format!("create {}: {e}", bundle.display()))?;
    let kind = if from_image {
        rootfs::prepare(image_rootfs.as_deref().unwrap(), &cdir)?
    } else {
        config["root"]["path"] = Value::String(image_rootfs.unwrap().to_string_lossy().into_owned());
        "bundle"
    };
    write_atomic(&bundle.join("config.json"), &serde_json::to_vec_pretty(&config).unwrap())?;
    for f in [bundle.join("log"), cdir.join("events"), cdir.join("output.log")] {
        fs::File::create(&f).map_err(|e| format!("create {}: {e}", f.display()))?;
    }
    let address = shim::start(&store.root, &name, &bundle)?;
    let shim = Arc::new(Shim::connect(&address, &name)?);
    undo.shim = Some(shim.clone());
    let record = Container {
        name: name.clone(),
        image: image_ref,
        image_id,
        bundle: bundle.clone(),
        rootfs: kind.into(),
        address,
        command: config["process"]["args"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
            .unwrap_or_default(),
        created: store::now(),
        tty: a.tty,
    };
    write_atomic(&cdir.join("container.json"), &serde_json::to_vec_pretty(&record).unwrap())?;
    let log_path = cdir.join("output.log");
    if a.detach {
        let uri = format!("file://{}", log_path.display());
        shim.create(&bundle, false, ["", &uri, &uri])?;
        shim.start("")?;
        undo.committed = true;
        println!("{name}");
        return Ok(0);
    }
    let mut fifos = stream::Fifos::make(&cdir, "init", a.interactive, a.tty)?;
    let uris = fifos.uris();
    shim.create(&bundle, a.tty, [&uris[0], &uris[1], &uris[2]])?;
    let log = fs::OpenOptions::new().append(true).open(&log_path).ok();
    let copies = fifos.attach(log)?;
    let raw = a.tty.then(stream::RawTerm::enter);
    shim.start("")?;
    undo.committed = true;
    stream::forward_signals(sigs, shim.clone(), String::new(), a.tty);
    if a.tty {
        if let Some((c, r)) = stream::term_size() {
            let _ = shim.resize("", c, r);
        }
    }
    let status = shim.wait("", 0).map_err(|e| shim::rpc_err("wait", e))?;
    copies.drain(Duration::from_secs(2));
    drop(raw);
    fifos.remove();
    if a.rm {
        crate::ctl::remove(store, &name, true)?;
    }
    Ok(status as i32)
}

/// An existing bundle's config.json, and its rootfs as an absolute path.
fn bundle_config(dir: &Path) -> Result<(Value, PathBuf), String> {
    let p = dir.join("config.json");
    let data = fs::read(&p).map_err(|e| format!("--bundle: {}: {e}", p.display()))?;
    let v: Value = serde_json::from_slice(&data).map_err(|e| format!("--bundle: {}: invalid JSON: {e}", p.display()))?;
    let root = v["root"]["path"].as_str().ok_or_else(|| format!("--bundle: {}: .root.path: missing", p.display()))?;
    let rootfs = dir.join(root);
    let rootfs = fs::canonicalize(&rootfs).map_err(|e| format!("--bundle: {}: .root.path: {}: {e}", p.display(), rootfs.display()))?;
    Ok((v, rootfs))
}
