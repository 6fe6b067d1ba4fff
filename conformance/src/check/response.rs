//! Checks every API answer meets, whatever was asked: the Schemathesis response checks.

use crate::check;
use mock_server::spec::Spec;

use crate::check::Findings;
use crate::target::Exchange;

/// Runs the five response checks on one answer.
pub(crate) fn all(spec: &Spec, findings: &mut Findings, exchange: &Exchange) {
    let line = exchange.line();
    findings.expect(check::NOT_A_SERVER_ERROR, exchange.status < 500, || {
        format!("{line}: server error")
    });
    let documented = match spec.response(&exchange.method, &exchange.path, exchange.status) {
        Ok(documented) => {
            findings.pass(check::STATUS_CODE_CONFORMANCE);
            documented
        }
        Err(err) => {
            findings.fail(check::STATUS_CODE_CONFORMANCE, format!("{line}: {err}"));
            return;
        }
    };

    let content_types = documented.content_types();
    let actual_type = exchange.content_type();
    match (&actual_type, content_types.is_empty()) {
        (_, true) => findings.expect(
            check::CONTENT_TYPE_CONFORMANCE,
            exchange.body.is_empty(),
            || format!("{line}: a body where the spec documents none"),
        ),
        (None, false) => findings.fail(
            check::CONTENT_TYPE_CONFORMANCE,
            format!(
                "{line}: no Content-Type; documented {}",
                content_types.join(", ")
            ),
        ),
        (Some(actual), false) => {
            if !content_types.contains(&actual.as_str()) {
                findings.fail(
                    check::CONTENT_TYPE_CONFORMANCE,
                    format!(
                        "{line}: Content-Type {actual}; documented {}",
                        content_types.join(", ")
                    ),
                );
            } else if actual == "application/json" && exchange.json.is_none() {
                findings.fail(
                    check::CONTENT_TYPE_CONFORMANCE,
                    format!(
                        "{line}: says application/json but the body does not parse ({} bytes)",
                        exchange.body.len()
                    ),
                );
            } else {
                findings.pass(check::CONTENT_TYPE_CONFORMANCE);
            }
        }
    }

    if let (Some(json), Some(schema)) = (&exchange.json, documented.schema("application/json")) {
        match mock_server::spec::validate(&schema, json) {
            Ok(violations) if violations.is_empty() => {
                findings.pass(check::RESPONSE_SCHEMA_CONFORMANCE);
            }
            Ok(violations) => {
                for violation in violations {
                    findings.fail(
                        check::RESPONSE_SCHEMA_CONFORMANCE,
                        format!("{line}: {violation}"),
                    );
                }
            }
            Err(message) => findings.fail(
                check::RESPONSE_SCHEMA_CONFORMANCE,
                format!("{line}: the documented schema does not compile: {message}"),
            ),
        }
    }

    let mut header_failures = Vec::new();
    for header in documented.headers() {
        let value = exchange
            .headers
            .get(header.name)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        match value {
            None if header.required => {
                header_failures.push(format!("{line}: required header {} missing", header.name));
            }
            None => {}
            Some(value) => {
                let typed = header_value(&value, header.schema.as_ref());
                if let Some(schema) = &header.schema {
                    if let Ok(violations) = mock_server::spec::validate(schema, &typed) {
                        if let Some(violation) = violations.first() {
                            header_failures.push(format!(
                                "{line}: header {}: expected {}, got {value:?}",
                                header.name, violation.expected
                            ));
                        }
                    }
                }
            }
        }
    }
    if header_failures.is_empty() {
        findings.pass(check::RESPONSE_HEADERS_CONFORMANCE);
    }
    for failure in header_failures {
        findings.fail(check::RESPONSE_HEADERS_CONFORMANCE, failure);
    }
}

/// A header's text as the JSON value its schema describes (headers carry numbers as text).
fn header_value(value: &str, schema: Option<&serde_json::Value>) -> serde_json::Value {
    let kind = schema.and_then(|schema| schema["type"].as_str());
    match kind {
        Some("integer") => value
            .trim()
            .parse::<i64>()
            .map_or_else(|_| value.into(), Into::into),
        Some("number") => value
            .trim()
            .parse::<f64>()
            .map_or_else(|_| value.into(), Into::into),
        _ => value.into(),
    }
}
