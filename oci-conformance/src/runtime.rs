//! A runtime under test, and what the suite learns about it before running
//! tests: which config versions it accepts and how it takes a signal.
//!
//! Adaptation is detected, never keyed on the binary's name:
//! - `ociVersion`: Debian's runc 1.1.5 and crun 1.8.1 reject configs newer
//!   than they know. The probe creates a trivial container with each of
//!   [`OCI_VERSIONS`] (newest first) and uses the first one accepted for
//!   every bundle.
//! - argument order: every command is issued in runtime-cli.md's template
//!   (`RUNTIME [global-options] COMMAND [command-options] ARGS`), options
//!   before the container id, which all runtimes accept (crun 1.8.1 rejects
//!   options after the id).
//! - `kill`: runtime.md's `kill <id> <signal>` (runc, crun, berth) or
//!   runtime-cli.md's `kill --signal SIG <id>`, whichever the probe sees work.
//! - `delete --force` (a runc extension, used only for cleanup): probed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::bundle::{self, Template};
use crate::proc::{self, Spec};

/// Versions tried, newest first. 1.3.0 is the spec this suite is written from.
pub const OCI_VERSIONS: [&str; 6] = ["1.3.0", "1.2.1", "1.2.0", "1.1.0", "1.0.2", "1.0.0"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillForm {
    /// `kill ID SIGNAL`
    Positional,
    /// `kill --signal SIGNAL ID`
    SignalFlag,
}

#[derive(Debug, Clone)]
pub struct Runtime {
    /// Short name for tables: file name, or NAME from NAME=PATH.
    pub name: String,
    pub path: PathBuf,
    /// First line of `--version`.
    pub version: String,
    /// The newest ociVersion it accepted.
    pub oci_version: String,
    pub kill_form: KillForm,
    pub force_delete: bool,
    /// Why it cannot run tests at all (every test then fails with this).
    pub broken: Option<String>,
}

impl Runtime {
    /// `--root ROOT ARGS...`
    pub fn args(&self, root: &Path, args: &[&str]) -> Vec<String> {
        let mut v = vec!["--root".to_string(), root.display().to_string()];
        v.extend(args.iter().map(|s| s.to_string()));
        v
    }

    pub fn kill_args(&self, id: &str, sig: &str) -> Vec<String> {
        match self.kill_form {
            KillForm::Positional => vec!["kill".into(), id.into(), sig.into()],
            KillForm::SignalFlag => vec!["kill".into(), "--signal".into(), sig.into(), id.into()],
        }
    }

    /// Whether this runtime's accepted ociVersion is older than `since`.
    pub fn older_than(&self, since: &str) -> bool {
        version_key(&self.oci_version) < version_key(since)
    }
}

pub fn version_key(v: &str) -> (u32, u32, u32) {
    let mut it = v.split(['.', '-']).map(|p| p.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// Resolve `--runtime` values: PATH, NAME=PATH, or a name on $PATH.
pub fn resolve(specs: &[String]) -> Result<Vec<(String, PathBuf)>, String> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for s in specs.iter().filter(|s| !s.is_empty()) {
        let (name, p) = match s.split_once('=') {
            Some((n, p)) => (Some(n.to_string()), p.to_string()),
            None => (None, s.clone()),
        };
        let path = if p.contains('/') {
            PathBuf::from(&p)
        } else {
            std::env::var_os("PATH")
                .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(&p)).find(|c| c.is_file()))
                .ok_or_else(|| format!("--runtime {s}: no {p} on $PATH"))?
        };
        if !path.is_file() {
            return Err(format!("--runtime {s}: {} is not a file", path.display()));
        }
        let path = path.canonicalize().map_err(|e| format!("--runtime {s}: {e}"))?;
        let mut name = name.unwrap_or_else(|| path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or(p));
        if out.iter().any(|(n, _)| *n == name) {
            name = format!("{name}#{}", out.len() + 1);
        }
        out.push((name, path));
    }
    if out.is_empty() {
        return Err("no --runtime given".into());
    }
    Ok(out)
}

/// Probe one runtime in `dir` (a scratch directory).
pub fn probe(name: &str, path: &Path, tpl: &Template, dir: &Path, run_id: &str) -> Runtime {
    let t = Duration::from_secs(20);
    let _ = std::fs::create_dir_all(dir);
    let ver = proc::run(Spec::new(path, vec!["--version".into()], &dir.join("version"), t));
    let version = ver.stdout.lines().next().unwrap_or("").trim().to_string();
    let mut rt = Runtime {
        name: name.to_string(),
        path: path.to_path_buf(),
        version: if version.is_empty() {
            "(no --version output)".into()
        } else {
            version
        },
        oci_version: OCI_VERSIONS[OCI_VERSIONS.len() - 1].into(),
        kill_form: KillForm::Positional,
        force_delete: false,
        broken: None,
    };
    let root = dir.join("root");
    let bundle = dir.join("bundle");
    if let Err(e) = bundle::copy_tree(&tpl.rootfs, &bundle.join("rootfs")) {
        rt.broken = Some(format!("cannot make a probe bundle: {e}"));
        return rt;
    }
    let run = |args: Vec<String>, base: &str| proc::run(Spec::new(path, args, &dir.join(base), t));
    let mut last_err = String::new();
    let mut created = None;
    for (i, v) in OCI_VERSIONS.iter().enumerate() {
        let id = format!("oc-probe-{run_id}-{name}-{i}").replace('#', "-");
        let marker = format!("ocmk{run_id}probe");
        let mut cfg = bundle::default_config(v, &marker, &format!("/oci-conformance/{run_id}-probe-{i}"));
        cfg["process"]["args"] = json!([bundle::PAYLOAD_IN_CTR, "sleep", marker]);
        if let Err(e) = std::fs::write(bundle.join("config.json"), cfg.to_string()) {
            rt.broken = Some(format!("cannot write the probe config: {e}"));
            return rt;
        }
        let b = bundle.display().to_string();
        let d = run(rt.args(&root, &["create", "--bundle", &b, &id]), &format!("create-{i}"));
        if d.ok() {
            rt.oci_version = v.to_string();
            created = Some(id);
            break;
        }
        last_err = d.describe();
        let _ = run(rt.args(&root, &["delete", "--force", &id]), "cleanup");
    }
    let Some(id) = created else {
        rt.broken = Some(format!(
            "cannot create a basic container with any ociVersion ({}): {last_err}",
            OCI_VERSIONS.join(", ")
        ));
        return rt;
    };
    let mut killed = false;
    for form in [KillForm::Positional, KillForm::SignalFlag] {
        rt.kill_form = form;
        let mut a = vec!["--root".to_string(), root.display().to_string()];
        a.extend(rt.kill_args(&id, "KILL"));
        if run(a, "kill").ok() {
            killed = true;
            break;
        }
    }
    if !killed {
        rt.broken = Some("neither `kill ID KILL` nor `kill --signal KILL ID` works on a created container".into());
    }
    proc::wait_until(Duration::from_secs(5), || {
        let s = run(rt.args(&root, &["state", &id]), "state");
        s.stdout.contains("\"stopped\"")
    });
    rt.force_delete = run(rt.args(&root, &["delete", "--force", &id]), "delete").ok();
    if !rt.force_delete {
        let _ = run(rt.args(&root, &["delete", &id]), "delete");
    }
    rt
}
