//! `berth list`: a table like runc's, ids only, or JSON.

use std::path::Path;

use crate::cli::ListFormat;
use crate::container::{self, OciState, StateDir};
use crate::error::Result;

pub fn list(root: &Path, quiet: bool, format: ListFormat) -> Result<()> {
    let mut rows: Vec<OciState> = Vec::new();
    for id in container::list_ids(root)? {
        let Ok(dir) = StateDir::open(root, &id) else { continue };
        match dir.load() {
            Ok(Some(st)) => rows.push(st.oci(st.status(&dir.path))),
            // A create that died before writing state.json: listed, so
            // that it is seen and deleted.
            Ok(None) => rows.push(container::oci_unfinished(&id)),
            Err(e) => log::warn!("{id}: {e}"),
        }
    }
    if quiet {
        for r in &rows {
            println!("{}", r.id);
        }
        return Ok(());
    }
    match format {
        ListFormat::Json => println!("{}", serde_json::to_string(&rows).expect("serializes")),
        ListFormat::Table => print!("{}", table(&rows)),
    }
    Ok(())
}

fn table(rows: &[OciState]) -> String {
    let mut cells = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from).to_vec()];
    for r in rows {
        cells.push(vec![
            r.id.clone(),
            r.pid.to_string(),
            r.status.to_string(),
            r.bundle.display().to_string(),
            r.created.clone().unwrap_or_default(),
            r.owner.clone().filter(|o| !o.is_empty()).unwrap_or_else(|| "root".into()),
        ]);
    }
    let widths: Vec<usize> = (0..6).map(|c| cells.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
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
