//! The requirements. Each test is named `FILE/SECTION/REQUIREMENT` after
//! the spec text it checks (config.md, config-linux.md, runtime.md,
//! runtime-linux.md) and carries the keyword's level.
//!
//! A field's documented effect counts as MUST: runtime.md's create says
//! "All of the properties configured in config.json except for process
//! MUST be applied" and start "MUST run the user-specified program as
//! specified by process". SHOULD requirements are marked as such.

use std::sync::Arc;

use crate::ctx::{Ctx, Res};

mod cgroups;
mod devices;
mod hooks;
mod lifecycle;
mod misc;
mod mount_options;
mod mounts;
mod namespaces;
mod operations;
mod process;
mod security;
pub mod util;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Must,
    Should,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
        }
    }
}

pub type TestFn = Arc<dyn Fn(&Ctx) -> Res + Send + Sync>;

#[derive(Clone)]
pub struct Test {
    pub name: String,
    pub level: Level,
    /// The runtime-spec release that introduced the field, when later than
    /// 1.0.2 (noted in failures of runtimes that only accept older configs).
    pub since: Option<&'static str>,
    pub f: TestFn,
}

impl Test {
    /// `FILE/SECTION`, used to count coverage by area.
    pub fn area(&self) -> String {
        let mut it = self.name.splitn(3, '/');
        format!("{}/{}", it.next().unwrap_or(""), it.next().unwrap_or(""))
    }
}

pub fn must(name: impl Into<String>, f: impl Fn(&Ctx) -> Res + Send + Sync + 'static) -> Test {
    Test {
        name: name.into(),
        level: Level::Must,
        since: None,
        f: Arc::new(f),
    }
}

pub fn should(name: impl Into<String>, f: impl Fn(&Ctx) -> Res + Send + Sync + 'static) -> Test {
    Test {
        name: name.into(),
        level: Level::Should,
        since: None,
        f: Arc::new(f),
    }
}

impl Test {
    pub fn since(mut self, v: &'static str) -> Test {
        self.since = Some(v);
        self
    }
}

/// Every test, in report order.
pub fn all() -> Vec<Test> {
    let mut v = Vec::new();
    v.extend(lifecycle::tests());
    v.extend(operations::tests());
    v.extend(hooks::tests());
    v.extend(misc::config_tests());
    v.extend(mounts::tests());
    v.extend(mount_options::tests());
    v.extend(process::tests());
    v.extend(namespaces::tests());
    v.extend(devices::tests());
    v.extend(cgroups::tests());
    v.extend(security::tests());
    v.extend(misc::linux_tests());
    v
}
