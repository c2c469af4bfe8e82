//! The fast paths and their slow twins. Each fast path of the hot path has
//! a plain twin that does the same work the obvious way; setting
//! `BERTH_SLOW_PATHS` selects the twins, so the integration suite can run
//! once more with them as an oracle (scripts/test.sh does): a fast path
//! that changes behaviour shows up as a difference between the two runs.
//!
//! | name | fast path | slow twin |
//! | --- | --- | --- |
//! | `cli` | the hand parser of the hot commands (the binary's `cli_fast`) | clap for every command |
//! | `net` | init makes its network namespace while berth makes the v1 cgroups (`process::defers_net`) | clone3 makes every namespace; cgroups first |
//! | `spread` | init placed on another CPU while both work (`process/spread.rs`) | the scheduler's choice |
//!
//! `BERTH_SLOW_PATHS` is a comma-separated list of names, or `all`.

use std::sync::OnceLock;

/// The environment variable that selects the slow twins.
pub const VAR: &str = "BERTH_SLOW_PATHS";

/// Every fast path that has a slow twin.
pub const NAMES: [&str; 3] = ["cli", "net", "spread"];

/// Whether `list` (as `$BERTH_SLOW_PATHS`) selects the slow twin of `name`.
fn selects(list: &str, name: &str) -> bool {
    list.split(',').map(str::trim).any(|n| n == name || n == "all")
}

/// Whether the fast path `name` is switched off (its slow twin runs).
pub fn off(name: &str) -> bool {
    static LIST: OnceLock<Option<String>> = OnceLock::new();
    debug_assert!(NAMES.contains(&name), "unknown fast path {name}");
    LIST.get_or_init(|| std::env::var(VAR).ok()).as_deref().is_some_and(|l| selects(l, name))
}

/// The slow twins in force, for a debug line.
pub fn slow_ones() -> Vec<&'static str> {
    NAMES.iter().copied().filter(|n| off(n)).collect()
}

#[cfg(test)]
mod tests {
    use super::selects;

    #[test]
    fn names_and_all_select_slow_twins() {
        assert!(selects("all", "cli") && selects("all", "spread"));
        assert!(selects("net, spread", "spread") && selects("cli", "cli"));
        assert!(!selects("net", "cli") && !selects("", "net") && !selects("clix", "cli"));
    }
}
