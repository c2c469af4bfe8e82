//! The payload's output (`Kv`) and JSON pointer edits of a config.

use serde_json::{json, Value};

use crate::ctx::{Res, Verdict};

/// Set the value at a JSON pointer, creating objects on the way.
pub fn set_pointer(root: &mut Value, pointer: &str, v: Value) {
    let mut cur = root;
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    let Some((last, path)) = parts.split_last() else {
        return;
    };
    for p in path {
        if cur.is_array() {
            let i: usize = p.parse().unwrap_or(0);
            cur = &mut cur[i];
        } else {
            if !cur.get(*p).is_some_and(|v| v.is_object() || v.is_array()) {
                cur[*p] = json!({});
            }
            cur = &mut cur[*p];
        }
    }
    if cur.is_array() {
        if let Ok(i) = last.parse::<usize>() {
            cur[i] = v;
        }
    } else {
        cur[*last] = v;
    }
}

/// The payload's `key=value` lines.
#[derive(Debug, Default, Clone)]
pub struct Kv(pub Vec<(String, String)>);

impl Kv {
    pub fn parse(text: &str) -> Kv {
        Kv(text
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value, or a failure naming the missing key.
    pub fn req(&self, key: &str) -> Res<&str> {
        self.get(key)
            .ok_or_else(|| Verdict::Fail(format!("the payload printed no {key:?}")))
    }
}
