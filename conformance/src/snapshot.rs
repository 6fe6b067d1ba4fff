//! Normalised response bodies: what a snapshot keeps and what drift compares.
//!
//! Ids, timestamps, signatures, tokens in URLs and live counters are replaced by placeholders;
//! field names, value types, state names and messages are kept. So the same snapshot matches the
//! mock and the live API, and a renamed field, a changed type or a new state name shows up as a
//! readable difference.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// Keys whose values are identifiers: kept as their type, never their value.
const ID_KEYS: &[&str] = &[
    "id",
    "jobId",
    "mediaId",
    "accountId",
    "prefixed_id",
    "processId",
    "bucketName",
    "user",
];

/// Keys whose values are times, as text or as Unix seconds.
const TIME_KEYS: &[&str] = &["createdAt", "updatedAt", "timestamp"];

/// Keys whose values change on every call (counters, balances) and keep only their type.
const VOLATILE_KEYS: &[&str] = &[
    "remaining_minute",
    "remaining_day",
    "balance",
    "used",
    "credits_used",
];

/// The normalised copy of `value`.
pub fn normalize(value: &Value) -> Value {
    normalize_in(value, None)
}

fn normalize_in(value: &Value, key: Option<&str>) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(name, inner)| (name.clone(), normalize_in(inner, Some(name))))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|item| normalize_in(item, key)).collect())
        }
        Value::String(text) => match key {
            Some(key) if ID_KEYS.contains(&key) => Value::from("[id]"),
            Some(key) if TIME_KEYS.contains(&key) => Value::from("[time]"),
            Some("extra") => Value::from("[opaque]"),
            Some("location") if text.starts_with('/') => Value::from("[path]"),
            _ if is_timestamp(text) => Value::from("[time]"),
            _ if text.starts_with("http://") || text.starts_with("https://") => {
                Value::from(normalize_url(text))
            }
            _ => value.clone(),
        },
        Value::Number(_) => match key {
            Some(key)
                if ID_KEYS.contains(&key)
                    || VOLATILE_KEYS.contains(&key)
                    || TIME_KEYS.contains(&key) =>
            {
                Value::from(0)
            }
            _ => value.clone(),
        },
        Value::Bool(_) | Value::Null => value.clone(),
    }
}

/// `2026-02-04T18:35:01…` in any precision or offset.
fn is_timestamp(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 19
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12]
            .iter()
            .all(|&idx| bytes[idx].is_ascii_digit())
}

/// Origin → `[origin]`, path segments with digits or all hex (ids, hashes, shards, sizes) →
/// `[token]` (extension kept), query values →
/// `[signed]` (names kept: a renamed parameter is drift).
fn normalize_url(url: &str) -> String {
    let (without_query, query) = url.split_once('?').unwrap_or((url, ""));
    let after_scheme = without_query
        .split_once("://")
        .map_or(without_query, |(_, rest)| rest);
    let path = after_scheme
        .find('/')
        .map_or("", |slash| &after_scheme[slash..]);
    let segments: Vec<String> = path
        .split('/')
        .map(|segment| {
            let (stem, extension) = match segment.rsplit_once('.') {
                Some((stem, extension)) if extension.len() <= 5 => (stem, Some(extension)),
                _ => (segment, None),
            };
            // Digits mark ids, sizes and timestamps; all-hex segments are hashes and shards
            // (`0/0a/…`). Path words (`cdn`, `files`, `upload`) have other letters.
            let is_token = !stem.is_empty()
                && (stem.bytes().any(|byte| byte.is_ascii_digit())
                    || stem.bytes().all(|byte| byte.is_ascii_hexdigit()));
            let stem = if is_token { "[token]" } else { stem };
            extension.map_or_else(
                || stem.to_owned(),
                |extension| format!("{stem}.{extension}"),
            )
        })
        .collect();
    let mut normalized = format!("[origin]{}", segments.join("/"));
    if !query.is_empty() {
        let params: Vec<String> = query
            .split('&')
            .map(|pair| pair.split_once('=').map_or(pair, |(name, _)| name))
            // The mock's own routing parameter (a session in a URL it wrote) is not contract.
            .filter(|name| *name != "mock_session")
            .map(|name| format!("{name}=[signed]"))
            .collect();
        if !params.is_empty() {
            normalized.push('?');
            normalized.push_str(&params.join("&"));
        }
    }
    normalized
}

/// The JSON body of an insta `.snap` file (the part after its `---` header).
pub fn read_snap(text: &str) -> Option<Value> {
    let rest = text.strip_prefix("---")?;
    let (_, body) = rest.split_once("\n---")?;
    serde_json::from_str(body.trim_start_matches(['-', '\n', '\r'])).ok()
}

/// One difference between a snapshot and a live body, as a person would act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Where, as a JSON pointer.
    pub pointer: String,
    /// What changed, in words.
    pub change: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{pointer}: {}", self.change)
    }
}

/// The JSON pointers in `instance` whose *values* its contract fixes: an `enum` or `const` in
/// `schema` (a JSON Schema 2020-12 document with `$defs`, as [`mock_server::spec`] converts
/// them), or our `x-drift: value` marker. Everything else is compared by shape only, so a progress
/// of 75 where the snapshot has 0, or a new id, is not drift while a new state name is.
///
/// `oneOf`/`anyOf` branches count only where the instance matches them: the completed branch's
/// `progress: enum [100]` must not pin an active job's progress.
pub fn fixed_pointers(schema: &Value, instance: &Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
    walk_fixed(schema, &defs, instance, String::new(), &mut found, 0);
    found
}

fn walk_fixed(
    schema: &Value,
    defs: &Value,
    instance: &Value,
    pointer: String,
    found: &mut BTreeSet<String>,
    depth: usize,
) {
    // Schemas here are small and acyclic in practice; the bound only stops a hostile spec.
    if depth > 64 {
        return;
    }
    let Value::Object(map) = schema else {
        return;
    };
    if let Some(Value::String(target)) = map.get("$ref") {
        if let Some(resolved) = target
            .strip_prefix("#/$defs/")
            .and_then(|name| defs.get(name))
        {
            walk_fixed(resolved, defs, instance, pointer.clone(), found, depth + 1);
        }
    }
    let fixes_value = map.contains_key("enum")
        || map.contains_key("const")
        || map.get(mock_server::spec::DRIFT_KEYWORD) == Some(&Value::from("value"));
    if fixes_value {
        found.insert(pointer.clone());
    }
    if let Some(Value::Array(branches)) = map.get("allOf") {
        for branch in branches {
            walk_fixed(branch, defs, instance, pointer.clone(), found, depth + 1);
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(branches)) = map.get(key) {
            for branch in branches {
                let alone = serde_json::json!({ "$defs": defs, "allOf": [branch] });
                let matches = mock_server::spec::validate(&alone, instance)
                    .is_ok_and(|violations| violations.is_empty());
                if matches {
                    walk_fixed(branch, defs, instance, pointer.clone(), found, depth + 1);
                }
            }
        }
    }
    match instance {
        Value::Object(fields) => {
            let properties = map.get("properties");
            let additional = map.get("additionalProperties");
            for (name, value) in fields {
                let inner = format!("{pointer}/{}", escape(name));
                match properties.and_then(|properties| properties.get(name)) {
                    Some(property) => walk_fixed(property, defs, value, inner, found, depth + 1),
                    None => {
                        if let Some(additional) = additional {
                            walk_fixed(additional, defs, value, inner, found, depth + 1);
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = map.get("items") {
                for (idx, item) in items.iter().enumerate() {
                    let inner = format!("{pointer}/{idx}");
                    walk_fixed(item_schema, defs, item, inner, found, depth + 1);
                }
            }
        }
        _ => {}
    }
}

/// Every difference from `expected` (the snapshot) to `actual`, both already normalised: field
/// names, JSON types and nesting always; a value only where `compares_value(pointer)` says the
/// contract fixes it (see [`fixed_pointers`]).
pub fn diff(
    expected: &Value,
    actual: &Value,
    compares_value: &dyn Fn(&str) -> bool,
) -> Vec<Difference> {
    let mut found = Vec::new();
    diff_into(expected, actual, String::new(), compares_value, &mut found);
    found
}

fn diff_into(
    expected: &Value,
    actual: &Value,
    pointer: String,
    compares_value: &dyn Fn(&str) -> bool,
    found: &mut Vec<Difference>,
) {
    match (expected, actual) {
        (Value::Object(want), Value::Object(got)) => {
            for (name, value) in want {
                let inner = format!("{pointer}/{}", escape(name));
                match got.get(name) {
                    Some(other) => diff_into(value, other, inner, compares_value, found),
                    None => found.push(Difference {
                        pointer: inner,
                        change: format!("field removed (was {})", kind(value)),
                    }),
                }
            }
            for (name, value) in got {
                if !want.contains_key(name) {
                    found.push(Difference {
                        pointer: format!("{pointer}/{}", escape(name)),
                        change: format!("field added ({})", kind(value)),
                    });
                }
            }
        }
        (Value::Array(want), Value::Array(got)) => {
            // How many items a list holds (variants, locations) is a value, not a shape: items
            // are compared with their counterpart, or with the snapshot's last item's shape.
            if want.is_empty() != got.is_empty() {
                found.push(Difference {
                    pointer,
                    change: format!("{} items, the snapshot has {}", got.len(), want.len()),
                });
                return;
            }
            for (idx, other) in got.iter().enumerate() {
                let inner = format!("{pointer}/{idx}");
                match want.get(idx) {
                    Some(value) => diff_into(value, other, inner, compares_value, found),
                    None => {
                        if let Some(last) = want.last() {
                            diff_into(last, other, inner, &|_| false, found);
                        }
                    }
                }
            }
        }
        _ if kind(expected) != kind(actual) => found.push(Difference {
            pointer,
            change: format!("type changed from {} to {}", kind(expected), kind(actual)),
        }),
        _ if expected != actual && compares_value(&pointer) => found.push(Difference {
            pointer,
            change: format!("value changed from {expected} to {actual}"),
        }),
        _ => {}
    }
}

fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_i64() || number.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_times_and_signatures_are_redacted_but_types_and_names_kept() {
        let body = json!({
            "data": {"jobId": "17", "state": "completed", "progress": 100,
                     "timestamp": "2026-02-04T18:35:01.526Z"},
            "media": {"id": 1234567890, "sourceUrl": "https://of2transcoder.s3.amazonaws.com/upload/9f1c2e44-aaaa/123456789012/photo.jpg?X-Amz-Expires=604800&X-Amz-Signature=ab12"}
        });
        assert_eq!(
            normalize(&body),
            json!({
                "data": {"jobId": "[id]", "state": "completed", "progress": 100, "timestamp": "[time]"},
                "media": {"id": 0, "sourceUrl": "[origin]/upload/[token]/[token]/photo.jpg?X-Amz-Expires=[signed]&X-Amz-Signature=[signed]"}
            })
        );
    }

    #[test]
    fn diff_names_added_removed_and_retyped_fields() {
        let snapshot = json!({"data": {"jobId": "[id]", "state": "waiting", "progress": 0}});
        let live = json!({"data": {"jobId": 0, "state": "queued", "eta": 3}});
        let found: Vec<String> = diff(&snapshot, &live, &|pointer| pointer == "/data/state")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            [
                "/data/jobId: type changed from string to integer",
                "/data/progress: field removed (was integer)",
                "/data/state: value changed from \"waiting\" to \"queued\"",
                "/data/eta: field added (integer)",
            ]
        );
    }

    #[test]
    fn snap_files_are_read_past_their_header() {
        let text = "---\nsource: x.rs\nexpression: body\n---\n{\n  \"a\": 1\n}\n";
        assert_eq!(read_snap(text), Some(json!({"a": 1})));
    }
}
