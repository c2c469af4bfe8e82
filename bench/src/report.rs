//! Statistics over samples, the aligned table, and the JSON results.

use serde_json::{json, Value};

/// One measured quantity, with its samples per runtime (same order as the
/// runtime list).
pub struct Metric {
    pub key: &'static str,
    pub label: &'static str,
    pub unit: &'static str,
    pub samples: Vec<Vec<f64>>,
}

impl Metric {
    pub fn new(key: &'static str, label: &'static str, unit: &'static str, runtimes: usize) -> Metric {
        Metric { key, label, unit, samples: vec![Vec::new(); runtimes] }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub p10: f64,
    pub p90: f64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

/// Percentile with linear interpolation between closest ranks (numpy's
/// default); `sorted` must be sorted and non-empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

pub fn summarize(samples: &[f64]) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    Some(Summary {
        n: s.len(),
        median: percentile(&s, 0.5),
        p10: percentile(&s, 0.1),
        p90: percentile(&s, 0.9),
        mean: s.iter().sum::<f64>() / s.len() as f64,
        min: s[0],
        max: s[s.len() - 1],
    })
}

fn fmt_value(v: f64, unit: &str) -> String {
    match unit {
        "ms" => format!("{v:.2} ms"),
        _ => format!("{v:.1} {unit}"),
    }
}

/// Median of `runtime` over median of crun, if crun was measured.
fn ratio_to_crun(m: &Metric, names: &[String], i: usize) -> Option<f64> {
    let c = names.iter().position(|n| n == "crun")?;
    let base = summarize(&m.samples[c])?.median;
    let this = summarize(&m.samples[i])?.median;
    (base > 0.0).then(|| this / base)
}

/// The aligned table: one row per metric and runtime.
pub fn table(metrics: &[Metric], names: &[String]) -> String {
    let has_crun = names.iter().any(|n| n == "crun");
    let mut rows: Vec<[String; 6]> = vec![[
        "metric".into(),
        "runtime".into(),
        "median".into(),
        "p10".into(),
        "p90".into(),
        if has_crun { "vs crun".into() } else { String::new() },
    ]];
    for m in metrics {
        for (i, name) in names.iter().enumerate() {
            let Some(s) = summarize(&m.samples[i]) else { continue };
            let ratio = match ratio_to_crun(m, names, i) {
                Some(r) if name != "crun" => format!("{name}/crun {r:.2}x"),
                _ => String::new(),
            };
            rows.push([
                if i == 0 { m.label.to_string() } else { String::new() },
                name.clone(),
                fmt_value(s.median, m.unit),
                fmt_value(s.p10, m.unit),
                fmt_value(s.p90, m.unit),
                ratio,
            ]);
        }
    }
    let mut w = [0usize; 6];
    for r in &rows {
        for (k, cell) in r.iter().enumerate() {
            w[k] = w[k].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let line = format!(
            "{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {:>w4$}  {}",
            r[0], r[1], r[2], r[3], r[4], r[5],
            w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Machine-readable results: metadata, summaries, ratios and raw samples.
pub fn json(metrics: &[Metric], names: &[String], meta: Value) -> Value {
    let ms: Vec<Value> = metrics
        .iter()
        .map(|m| {
            let results: Vec<Value> = names
                .iter()
                .enumerate()
                .filter_map(|(i, name)| {
                    let s = summarize(&m.samples[i])?;
                    Some(json!({
                        "runtime": name,
                        "n": s.n, "median": s.median, "p10": s.p10, "p90": s.p90,
                        "mean": s.mean, "min": s.min, "max": s.max,
                        "ratio_to_crun": ratio_to_crun(m, names, i),
                        "samples": m.samples[i],
                    }))
                })
                .collect();
            json!({"key": m.key, "label": m.label, "unit": m.unit, "results": results})
        })
        .collect();
    json!({"meta": meta, "metrics": ms})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let s = summarize(&[5.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!(s.median, 3.0);
        assert!((s.p10 - 1.4).abs() < 1e-9);
        assert!((s.p90 - 4.6).abs() < 1e-9);
        assert_eq!(summarize(&[7.0]).unwrap().p90, 7.0);
        assert!(summarize(&[]).is_none());
    }

    #[test]
    fn table_has_ratio_to_crun() {
        let names = vec!["berth".to_string(), "crun".to_string()];
        let mut m = Metric::new("x", "run", "ms", 2);
        m.samples[0] = vec![1.0, 1.0];
        m.samples[1] = vec![2.0, 2.0];
        let t = table(&[m], &names);
        assert!(t.contains("berth/crun 0.50x"), "{t}");
    }
}
