//! `berth list`: a table like runc's, ids only, or JSON.

use std::path::Path;

use berth::error::Result;
use berth::OciState;

use crate::cli::ListFormat;

pub fn list(root: &Path, quiet: bool, format: ListFormat) -> Result<()> {
    // A create that died before writing state.json is listed too, so that
    // it is seen and deleted.
    let rows = berth::list(root)?;
    if quiet {
        for r in &rows {
            println!("{}", r.id);
        }
        return Ok(());
    }
    match format {
        ListFormat::Json => println!("{}", serde_json::to_string(&rows).expect("serializes")),
        ListFormat::Table => print!("{}", table(root, &rows)),
    }
    Ok(())
}

/// The owner column: who owns the container's state dir (runc's rule),
/// by name when the host knows it.
fn owner(root: &Path, id: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata(root.join(id)).map(|m| m.uid()) else {
        return "root".into();
    };
    berth::user_name(uid).unwrap_or_else(|| uid.to_string())
}

fn table(root: &Path, rows: &[OciState]) -> String {
    let mut cells = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
        .map(String::from)
        .to_vec()];
    for r in rows {
        cells.push(vec![
            r.id.clone(),
            r.pid.to_string(),
            r.status.to_string(),
            r.bundle.display().to_string(),
            r.created.clone().unwrap_or_default(),
            r.owner
                .clone()
                .filter(|o| !o.is_empty())
                .unwrap_or_else(|| owner(root, &r.id)),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| cells.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &cells {
        for (c, cell) in r.iter().enumerate() {
            if c == 5 {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}   ", w = widths[c]));
            }
        }
        out.push('\n');
    }
    out
}
