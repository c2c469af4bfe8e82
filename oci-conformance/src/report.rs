//! Output: TAP lines as results arrive, then a summary table (as TAP
//! comments), and optionally the side-by-side Markdown table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use crate::runtime::Runtime;
use crate::suite::Test;

#[derive(Debug, Clone)]
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

impl Outcome {
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail(_) => "FAIL",
            Outcome::Skip(_) => "skip",
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Outcome::Pass => "",
            Outcome::Fail(r) | Outcome::Skip(r) => r,
        }
    }
}

pub struct Results {
    pub rts: Vec<Arc<Runtime>>,
    pub tests: Vec<Test>,
    /// `cells[test][runtime]`
    pub cells: Vec<Vec<Option<(Outcome, Duration)>>>,
}

#[derive(Default, Clone, Copy)]
pub struct Totals {
    pub pass: usize,
    pub fail: usize,
    pub skip: usize,
}

impl Results {
    pub fn new(rts: Vec<Arc<Runtime>>, tests: Vec<Test>) -> Results {
        let cells = tests.iter().map(|_| rts.iter().map(|_| None).collect()).collect();
        Results { rts, tests, cells }
    }

    pub fn totals(&self, rt: usize) -> Totals {
        let mut t = Totals::default();
        for row in &self.cells {
            match &row[rt] {
                Some((Outcome::Pass, _)) => t.pass += 1,
                Some((Outcome::Fail(_), _)) => t.fail += 1,
                Some((Outcome::Skip(_), _)) => t.skip += 1,
                None => {}
            }
        }
        t
    }

    pub fn any_fail(&self) -> bool {
        (0..self.rts.len()).any(|r| self.totals(r).fail > 0)
    }
}

pub fn tap_line(
    n: usize,
    rt: &Runtime,
    test: &Test,
    o: &Outcome,
    elapsed: Duration,
    log: &[String],
    verbose: bool,
) -> String {
    let mut s = String::new();
    let desc = format!("{} {} [{}]", rt.name, test.name, test.level.as_str());
    match o {
        Outcome::Pass => {
            let _ = writeln!(s, "ok {n} - {desc}");
        }
        Outcome::Skip(r) => {
            let _ = writeln!(s, "ok {n} - {desc} # SKIP {}", one_line(r));
        }
        Outcome::Fail(r) => {
            let _ = writeln!(s, "not ok {n} - {desc}");
            let _ = writeln!(s, "  ---");
            let _ = writeln!(s, "  message: {}", yaml_str(r));
            let _ = writeln!(s, "  duration_ms: {}", elapsed.as_millis());
            if verbose && !log.is_empty() {
                let _ = writeln!(s, "  commands:");
                for l in log {
                    let _ = writeln!(s, "    - {}", yaml_str(l));
                }
            }
            let _ = writeln!(s, "  ...");
        }
    }
    s
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(&one_line(s)).unwrap_or_default()
}

/// The summary table and skip reasons, as TAP comment lines.
pub fn summary(r: &Results) -> String {
    let mut s = String::new();
    let w = r.tests.iter().map(|t| t.name.len()).max().unwrap_or(20).max(11);
    let cols: Vec<usize> = r.rts.iter().map(|rt| rt.name.len().max(4)).collect();
    let _ = write!(s, "# {:<w$}  {:<6}", "requirement", "level");
    for (rt, cw) in r.rts.iter().zip(&cols) {
        let _ = write!(s, "  {:<cw$}", rt.name);
    }
    s.push('\n');
    for (ti, t) in r.tests.iter().enumerate() {
        if r.cells[ti].iter().all(|c| c.is_none()) {
            continue;
        }
        let _ = write!(s, "# {:<w$}  {:<6}", t.name, t.level.as_str());
        for (ri, cw) in cols.iter().enumerate() {
            let word = r.cells[ti][ri].as_ref().map(|(o, _)| o.word()).unwrap_or("-");
            let _ = write!(s, "  {word:<cw$}");
        }
        s.push('\n');
    }
    let _ = writeln!(s, "#");
    let skips = skip_reasons(r);
    if !skips.is_empty() {
        let _ = writeln!(s, "# skipped (reason):");
        for (name, rts, reason) in skips {
            let _ = writeln!(s, "#   {name} [{rts}]: {}", one_line(&reason));
        }
        let _ = writeln!(s, "#");
    }
    for (ri, rt) in r.rts.iter().enumerate() {
        let t = r.totals(ri);
        let _ = writeln!(
            s,
            "# totals {}: {} pass, {} fail, {} skip (of {}; ociVersion {})",
            rt.name,
            t.pass,
            t.fail,
            t.skip,
            t.pass + t.fail + t.skip,
            rt.oci_version
        );
    }
    s
}

/// (requirement, runtimes, reason) for every skip, one entry per distinct
/// reason of a requirement.
fn skip_reasons(r: &Results) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (ti, t) in r.tests.iter().enumerate() {
        let mut by_reason: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (ri, rt) in r.rts.iter().enumerate() {
            if let Some((Outcome::Skip(reason), _)) = &r.cells[ti][ri] {
                by_reason.entry(reason.clone()).or_default().push(rt.name.clone());
            }
        }
        for (reason, rts) in by_reason {
            out.push((t.name.clone(), rts.join(","), reason));
        }
    }
    out
}

fn md_escape(s: &str) -> String {
    one_line(s).replace('|', "\\|").replace('<', "&lt;")
}

/// The Markdown document: header, totals, the side-by-side table, and the
/// reason of every failure and skip.
/// `scrub` pairs (text, replacement) keep run-specific paths and ids out of
/// the document, so regenerating it only changes what really changed.
pub fn markdown(r: &Results, header_notes: &[String], command: &str, scrub: &[(String, String)]) -> String {
    let clean = |s: &str| {
        scrub
            .iter()
            .fold(md_escape(s), |acc, (from, to)| acc.replace(from.as_str(), to))
    };
    let mut s = String::new();
    let names: Vec<&str> = r.rts.iter().map(|rt| rt.name.as_str()).collect();
    let _ = writeln!(s, "# OCI runtime-spec conformance: {}\n", names.join(", "));
    let _ = writeln!(
        s,
        "Generated by `{command}` with the `oci-conformance` suite \
         (one test per requirement of config.md, config-linux.md, runtime.md and \
         runtime-linux.md; see [oci-conformance/README.md](../oci-conformance/README.md)). \
         Do not edit by hand.\n"
    );
    for n in header_notes {
        let _ = writeln!(s, "- {}", md_escape(n));
    }
    let _ = writeln!(s, "\n| runtime | version | ociVersion used | pass | fail | skip |");
    let _ = writeln!(s, "| --- | --- | --- | --- | --- | --- |");
    for (ri, rt) in r.rts.iter().enumerate() {
        let t = r.totals(ri);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            rt.name,
            md_escape(&rt.version),
            rt.oci_version,
            t.pass,
            t.fail,
            t.skip
        );
    }
    let musts = r.tests.iter().filter(|t| t.level == crate::suite::Level::Must).count();
    let _ = writeln!(
        s,
        "\n{} requirements: {} MUST, {} SHOULD.\n",
        r.tests.len(),
        musts,
        r.tests.len() - musts
    );
    let _ = write!(s, "| requirement | level |");
    for n in &names {
        let _ = write!(s, " {n} |");
    }
    let _ = write!(s, "\n| --- | --- |");
    for _ in &names {
        let _ = write!(s, " --- |");
    }
    s.push('\n');
    for (ti, t) in r.tests.iter().enumerate() {
        let _ = write!(s, "| `{}` | {} |", t.name, t.level.as_str());
        for ri in 0..names.len() {
            let cell = match &r.cells[ti][ri] {
                Some((Outcome::Pass, _)) => "pass",
                Some((Outcome::Fail(_), _)) => "**FAIL**",
                Some((Outcome::Skip(_), _)) => "skip",
                None => "-",
            };
            let _ = write!(s, " {cell} |");
        }
        s.push('\n');
    }
    for (ri, rt) in r.rts.iter().enumerate() {
        let mut lines = Vec::new();
        for (ti, t) in r.tests.iter().enumerate() {
            if let Some((o @ (Outcome::Fail(_) | Outcome::Skip(_)), _)) = &r.cells[ti][ri] {
                lines.push(format!("- `{}` {}: {}", t.name, o.word(), clean(o.reason())));
            }
        }
        if !lines.is_empty() {
            let _ = writeln!(s, "\n## {}: failures and skips\n", rt.name);
            for l in lines {
                let _ = writeln!(s, "{l}");
            }
        }
    }
    s
}
