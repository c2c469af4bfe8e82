//! Records the git commit the binary is built from, for `berth --version`'s
//! `commit:` line (dockerd shows it in `docker info`, as it does runc's).
//! `BERTH_COMMIT` in the build environment wins (packagers building from a
//! tarball); otherwise `git rev-parse HEAD` of the workspace; otherwise
//! (no git, or a tree that is not this workspace's own repository)
//! `unknown`.

use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=BERTH_COMMIT");
    let commit = match std::env::var("BERTH_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_string(),
        _ => from_git().unwrap_or_else(|| "unknown".into()),
    };
    println!("cargo:rustc-env=BERTH_COMMIT={commit}");
}

fn from_git() -> Option<String> {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")?;
    let crate_dir = Path::new(&manifest);
    let workspace = crate_dir.parent()?;
    // A tarball unpacked inside some other repository is not built from
    // that repository's commit.
    let top = git(crate_dir, &["rev-parse", "--show-toplevel"])?;
    if Path::new(&top).canonicalize().ok()? != workspace.canonicalize().ok()? {
        return None;
    }
    let commit = git(crate_dir, &["rev-parse", "HEAD"])?;
    // Rebuild when HEAD moves: HEAD itself, the branch it names, packed refs
    // (paths from git, so linked worktrees work too).
    let mut watch = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(r) = git(crate_dir, &["symbolic-ref", "-q", "HEAD"]) {
        watch.push(r);
    }
    for w in watch {
        if let Some(p) = git(crate_dir, &["rev-parse", "--path-format=absolute", "--git-path", &w]) {
            if Path::new(&p).exists() {
                println!("cargo:rerun-if-changed={p}");
            }
        }
    }
    Some(commit)
}
