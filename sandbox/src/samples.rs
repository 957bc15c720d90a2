//! The Blue Button samples in `fixtures/bb2-samples/`, read as templates: each user's resources
//! are a sample with the samples' patient id replaced by the user's own.

use serde_json::Value;

/// The patient id in the samples, replaced by each user's own.
pub(crate) const TEMPLATE_PATIENT: &str = "-20140000008325";

/// A sample, parsed (`null` if it does not parse).
pub(crate) fn template(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or(Value::Null)
}

/// Replaces `from` with `to` inside every string of a JSON tree.
pub(crate) fn replace_strings(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::String(s) if s.contains(from) => *s = s.replace(from, to),
        Value::Array(items) => items.iter_mut().for_each(|v| replace_strings(v, from, to)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_strings(v, from, to)),
        _ => {}
    }
}
