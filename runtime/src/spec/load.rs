//! Parsing `config.json`: JSON → pre-filtered [`Value`] → typed [`Spec`].
//!
//! The pre-filter exists because oci-spec's enums are closed while the OCI
//! ecosystem is not: a config written for a newer kernel may name capabilities
//! this build does not know. runc ignores those, and so does berth (with a
//! warning), instead of rejecting the whole config.

use oci_spec::runtime::{Capability, Process, Spec};
use serde::Deserialize;
use serde_json::Value;

use super::{ConfigError, Fault};
use crate::error::Clip;

/// The capability sets of `process.capabilities`, all pre-filtered.
const CAPABILITY_SETS: [&str; 5] = [
    "bounding",
    "effective",
    "inheritable",
    "permitted",
    "ambient",
];

/// Parse the bytes of a `config.json` into a [`Spec`]; `file` is only used in
/// errors and warnings. Checks `ociVersion`, drops unknown capabilities, and
/// maps deserialization errors to spec-notation paths and friendly messages.
/// No semantic validation: see [`super::validate_spec`].
pub fn parse_spec(file: &str, data: &[u8]) -> Result<Spec, ConfigError> {
    let mut value: Value = serde_json::from_slice(data)
        .map_err(|e| ConfigError::whole_file(file, format!("invalid JSON: {e}")))?;
    check_version(&value).map_err(|f| f.in_file(file))?;
    drop_unknown_capabilities(file, &mut value);
    spec_scheduler_flag_names(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        friendly_error(path, &e.inner().to_string()).in_file(file)
    })
}

/// Parse a process.json (`exec --process`): the config's `process` object,
/// with unknown capabilities dropped as in config.json and the same checks.
pub fn parse_process(file: &str, data: &[u8]) -> Result<Process, ConfigError> {
    let value: Value = serde_json::from_slice(data)
        .map_err(|e| ConfigError::whole_file(file, format!("invalid JSON: {e}")))?;
    let mut root = serde_json::json!({ "process": value });
    drop_unknown_capabilities(file, &mut root);
    spec_scheduler_flag_names(&mut root);
    let process: Process = serde_path_to_error::deserialize(root["process"].take()).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        friendly_error(path, &e.inner().to_string()).in_file(file)
    })?;
    super::validate::check_process_fields(&process).map_err(|f| f.in_file(file))?;
    Ok(process)
}

fn check_version(root: &Value) -> Result<(), Fault> {
    let Some(obj) = root.as_object() else {
        return Err(Fault::new(
            "",
            format!("expected a JSON object, found {}", kind_of(root)),
        ));
    };
    match obj.get("ociVersion") {
        None | Some(Value::Null) => Err(Fault::new("ociVersion", "required field is missing")),
        Some(Value::String(v)) if version_supported(v) => Ok(()),
        Some(Value::String(v)) => Err(Fault::new(
            "ociVersion",
            format!("unsupported version {} (berth supports 1.0.0 to 1.3.x)", Clip(v)),
        )),
        Some(other) => Err(Fault::new(
            "ociVersion",
            format!("expected a string, found {}", kind_of(other)),
        )),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Whether berth accepts a config declaring `ociVersion` = `v`: a SemVer 2.0.0
/// version 1.0.x, 1.1.x, 1.2.x or 1.3.x, with optional pre-release and build
/// suffixes (`1.0.2-dev`, `1.1.0-rc.1`, `1.2.0+build.5`).
pub fn version_supported(v: &str) -> bool {
    let (rest, build) = match v.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (v, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let suffix_ok = |s: &str| {
        s.split('.')
            .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    };
    if !pre.is_none_or(suffix_ok) || !build.is_none_or(suffix_ok) {
        return false;
    }
    let numeric = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    };
    let mut parts = core.split('.');
    let (Some(major), Some(minor), Some(patch), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    numeric(major)
        && numeric(minor)
        && numeric(patch)
        && major == "1"
        && matches!(minor, "0" | "1" | "2" | "3")
}

/// oci-spec 0.10 spells two of the spec's scheduler flags differently
/// (`SCHED_RESET_ON_FORK`, `SCHED_FLAG_D_L_OVERRUN`); map the spec's names
/// (config.md: `SCHED_FLAG_RESET_ON_FORK`, `SCHED_FLAG_DL_OVERRUN`) onto
/// them so that spec-conforming configs load.
fn spec_scheduler_flag_names(root: &mut Value) {
    let Some(flags) = root
        .get_mut("process")
        .and_then(|p| p.get_mut("scheduler"))
        .and_then(|s| s.get_mut("flags"))
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for f in flags {
        let mapped = match f.as_str() {
            Some("SCHED_FLAG_RESET_ON_FORK") => "SCHED_RESET_ON_FORK",
            Some("SCHED_FLAG_DL_OVERRUN") => "SCHED_FLAG_D_L_OVERRUN",
            _ => continue,
        };
        *f = Value::String(mapped.into());
    }
}

/// Remove capability names oci-spec cannot represent from every set of
/// `process.capabilities`, logging a warning that names them. Non-string
/// entries are left for the typed deserialization to report.
fn drop_unknown_capabilities(file: &str, root: &mut Value) {
    let Some(caps) = root
        .get_mut("process")
        .and_then(|p| p.get_mut("capabilities"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for set in CAPABILITY_SETS {
        let Some(Value::Array(list)) = caps.get_mut(set) else {
            continue;
        };
        let mut dropped: Vec<String> = Vec::new();
        list.retain(|entry| match entry {
            Value::String(name) if Capability::deserialize(entry).is_err() => {
                dropped.push(name.clone());
                false
            }
            _ => true,
        });
        if !dropped.is_empty() {
            log::warn!(
                "{file}: process.capabilities.{set}: ignoring unknown capabilities: {}",
                dropped.join(", ")
            );
        }
    }
}

/// Turn a serde message at `path` into a friendlier one (the path may be
/// refined, e.g. for a missing field).
pub(crate) fn friendly_error(path: String, raw: &str) -> Fault {
    if let Some((value, expected)) = parse_unknown_variant(raw) {
        let msg = if is_indexed_field(&path, "linux.namespaces", "type") {
            format!("unknown namespace {}", Clip(value))
        } else if is_indexed_field(&path, "process.rlimits", "type") {
            format!("unknown rlimit {}", Clip(value))
        } else if is_indexed_field(&path, "linux.devices", "type") {
            format!("unknown device type {} (expected c, b, u or p)", Clip(value))
        } else if expected.is_empty() {
            format!("unknown value {}", Clip(value))
        } else {
            let list: Vec<String> = expected.iter().map(|e| format!("{e:?}")).collect();
            let one_of = if list.len() == 1 { "" } else { "one of " };
            format!(
                "unknown value {}, expected {one_of}{}",
                Clip(value),
                list.join(", ")
            )
        };
        return Fault::new(path, msg);
    }
    if let Some(field) = raw
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        let path = if path.is_empty() {
            field.to_string()
        } else {
            format!("{path}.{field}")
        };
        return Fault::new(path, "required field is missing");
    }
    Fault::new(path, raw)
}

/// Parse serde's "unknown variant `x`, expected one of `a`, `b`" message into
/// the value and the expected names.
fn parse_unknown_variant(raw: &str) -> Option<(&str, Vec<&str>)> {
    let rest = raw.strip_prefix("unknown variant `")?;
    if let Some(value) = rest.strip_suffix("`, there are no variants") {
        return Some((value, Vec::new()));
    }
    let (value, expected) = rest.split_once("`, expected ")?;
    // The expected names are the odd pieces between backquotes.
    let names = expected.split('`').skip(1).step_by(2).collect();
    Some((value, names))
}

/// Whether `path` is `<array>[N].<field>`.
fn is_indexed_field(path: &str, array: &str, field: &str) -> bool {
    let Some(rest) = path.strip_prefix(array).and_then(|r| r.strip_prefix('[')) else {
        return false;
    };
    let Some((index, tail)) = rest.split_once(']') else {
        return false;
    };
    !index.is_empty()
        && index.bytes().all(|b| b.is_ascii_digit())
        && tail.strip_prefix('.') == Some(field)
}
