//! How gatehouse compiles and applies JSON Schemas (tool inputs and outputs, elicitation
//! answers): one set of options for every schema, and errors that name the failing field.

use jsonschema::{PatternOptions, Validator};
use serde_json::Value;

/// Compiles a schema the way every gatehouse schema is compiled: JSON Schema 2020-12 unless the
/// schema names another dialect, `$ref` resolution never leaves the document (no network, no
/// files), `format` is validated, and `pattern` uses a linear-time regex engine.
pub fn compile_schema(schema: &Value) -> Result<Validator, String> {
    if !schema.is_object() {
        return Err("schema must be a JSON object".into());
    }
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .offline()
        .should_validate_formats(true)
        .with_pattern_options(
            PatternOptions::regex()
                .size_limit(1 << 20)
                .dfa_size_limit(1 << 20),
        )
        .build(schema)
        .map_err(|e| format!("schema does not compile: {e}"))
}

/// The first validation error of `instance`, phrased to name the failing field. A valid
/// instance (nearly every call) is told by `is_valid`, which builds no error.
pub fn first_error(validator: &Validator, instance: &Value) -> Option<String> {
    if validator.is_valid(instance) {
        return None;
    }
    validator.iter_errors(instance).next().map(|e| {
        let path = e.instance_path().to_string();
        if path.is_empty() {
            e.to_string()
        } else {
            format!("{path}: {e}")
        }
    })
}
