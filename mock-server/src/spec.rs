//! The OpenAPI documents in `specs/`, embedded, and a validator for responses against them.
//!
//! The specs are the contract; the mock's own tests and the conformance suite both check every
//! response body against them through this module, so a change to a `wire` type that breaks the
//! contract fails a test rather than a client.
//!
//! OpenAPI 3.0 schemas are almost JSON Schema; the difference that matters here is `nullable`,
//! which is rewritten into a `null` type before compiling. `$ref`s into `#/components/...` resolve
//! because each compiled schema carries the document's `components` beside it.

use serde_json::Value;

/// Which embedded document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    /// `specs/fansly.yaml`.
    Fansly,
    /// `specs/onlyfans.yaml`.
    OnlyFans,
    /// `specs/upstream/onlyfans-status.yaml`, the provider's own text, for drift comparison.
    OnlyFansUpstream,
    /// `specs/admin.yaml`, the mock's own control API.
    Admin,
}

impl Document {
    /// The YAML text, as in the repository at build time.
    pub fn text(self) -> &'static str {
        match self {
            Document::Fansly => include_str!("../../specs/fansly.yaml"),
            Document::OnlyFans => include_str!("../../specs/onlyfans.yaml"),
            Document::OnlyFansUpstream => {
                include_str!("../../specs/upstream/onlyfans-status.yaml")
            }
            Document::Admin => include_str!("../../specs/admin.yaml"),
        }
    }

    /// The file name the admin API serves it under.
    pub fn file_name(self) -> &'static str {
        match self {
            Document::Fansly => "fansly.yaml",
            Document::OnlyFans => "onlyfans.yaml",
            Document::OnlyFansUpstream => "upstream/onlyfans-status.yaml",
            Document::Admin => "admin.yaml",
        }
    }

    /// Every document, for listings.
    pub const ALL: [Document; 4] = [
        Document::Fansly,
        Document::OnlyFans,
        Document::OnlyFansUpstream,
        Document::Admin,
    ];
}

/// Why a response does not match its spec.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The YAML does not parse.
    #[error("{document:?}: invalid YAML: {message}")]
    Yaml {
        /// Which document.
        document: Document,
        /// The parser's message.
        message: String,
    },
    /// No path template in the document matches.
    #[error("no operation {method} {path} in the spec")]
    UnknownOperation {
        /// The method.
        method: String,
        /// The concrete path.
        path: String,
    },
    /// The operation does not document this status code.
    #[error("status {status} is not documented for {method} {template}")]
    UndocumentedStatus {
        /// The method.
        method: String,
        /// The matched template.
        template: String,
        /// The status.
        status: u16,
    },
    /// The documented schema does not compile.
    #[error("schema for {method} {template} {status} does not compile: {message}")]
    BadSchema {
        /// The method.
        method: String,
        /// The matched template.
        template: String,
        /// The status.
        status: u16,
        /// The compiler's message.
        message: String,
    },
    /// The body breaks the schema; each violation names its JSON pointer.
    #[error("{method} {template} {status}: {}", violations.join("; "))]
    Invalid {
        /// The method.
        method: String,
        /// The matched template.
        template: String,
        /// The status.
        status: u16,
        /// `"<pointer>: <what is wrong>"`, one per violation.
        violations: Vec<String>,
    },
}

/// A parsed OpenAPI document.
#[derive(Debug, Clone)]
pub struct Spec {
    document: Document,
    root: Value,
}

impl Spec {
    /// Parses an embedded document.
    pub fn load(document: Document) -> Result<Self, SpecError> {
        let root: Value =
            serde_norway::from_str(document.text()).map_err(|err| SpecError::Yaml {
                document,
                message: err.to_string(),
            })?;
        Ok(Self { document, root })
    }

    /// The document as JSON.
    pub fn root(&self) -> &Value {
        &self.root
    }

    /// Which document this is.
    pub fn document(&self) -> Document {
        self.document
    }

    /// The path template that `path` (no query) matches, e.g. `/api/fansly/media/upload/{jobId}/status`.
    pub fn match_path(&self, path: &str) -> Option<&str> {
        let paths = self.root.get("paths")?.as_object()?;
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        paths.keys().map(String::as_str).find(|template| {
            let template_segments: Vec<&str> =
                template.trim_start_matches('/').split('/').collect();
            template_segments.len() == segments.len()
                && template_segments.iter().zip(&segments).all(|(want, got)| {
                    (want.starts_with('{') && want.ends_with('}') && !got.is_empty()) || want == got
                })
        })
    }

    /// The JSON Schema (components attached, `nullable` rewritten) of a documented response.
    pub fn response_schema(
        &self,
        method: &str,
        path: &str,
        status: u16,
    ) -> Result<Value, SpecError> {
        let method_lower = method.to_ascii_lowercase();
        let template = self
            .match_path(path)
            .ok_or_else(|| SpecError::UnknownOperation {
                method: method.to_owned(),
                path: path.to_owned(),
            })?;
        let path_item = &self.root["paths"][template];
        // A 405 answers a method the path does not have, so its schema lives on the path's
        // other operations.
        let operation = path_item.get(&method_lower).or_else(|| {
            (status == 405)
                .then(|| {
                    path_item.as_object().and_then(|item| {
                        item.values()
                            .find(|operation| operation["responses"].get("405").is_some())
                    })
                })
                .flatten()
        });
        let operation = operation.ok_or_else(|| SpecError::UnknownOperation {
            method: method.to_owned(),
            path: path.to_owned(),
        })?;
        let mut response = operation["responses"]
            .get(status.to_string())
            .ok_or_else(|| SpecError::UndocumentedStatus {
                method: method.to_owned(),
                template: template.to_owned(),
                status,
            })?;
        if let Some(reference) = response.get("$ref").and_then(Value::as_str) {
            response = self.resolve(reference).unwrap_or(&Value::Null);
        }
        let schema = response["content"]["application/json"]["schema"].clone();
        let mut root = serde_json::json!({ "allOf": [schema] });
        root["components"] = self.root.get("components").cloned().unwrap_or(Value::Null);
        rewrite_nullable(&mut root);
        Ok(root)
    }

    /// Checks a response body against the documented schema for (method, path, status).
    pub fn validate_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &Value,
    ) -> Result<(), SpecError> {
        let schema = self.response_schema(method, path, status)?;
        let template = self.match_path(path).unwrap_or(path).to_owned();
        let validator = jsonschema::draft7::new(&schema).map_err(|err| SpecError::BadSchema {
            method: method.to_owned(),
            template: template.clone(),
            status,
            message: err.to_string(),
        })?;
        let violations: Vec<String> = validator
            .iter_errors(body)
            .map(|err| format!("{}: {err}", err.instance_path()))
            .collect();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(SpecError::Invalid {
                method: method.to_owned(),
                template,
                status,
                violations,
            })
        }
    }

    fn resolve(&self, reference: &str) -> Option<&Value> {
        self.root.pointer(reference.strip_prefix('#')?)
    }
}

/// OpenAPI 3.0's `nullable: true` becomes JSON Schema's `type: [T, "null"]` (and `null` in `enum`).
fn rewrite_nullable(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::String(kind)) = map.get("type").cloned() {
                    map.insert("type".into(), serde_json::json!([kind, "null"]));
                }
                if let Some(Value::Array(options)) = map.get_mut("enum") {
                    if !options.contains(&Value::Null) {
                        options.push(Value::Null);
                    }
                }
            }
            map.values_mut().for_each(rewrite_nullable);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_nullable),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_document_parses() {
        for document in Document::ALL {
            Spec::load(document).unwrap();
        }
    }

    #[test]
    fn fansly_error_envelope_validates_and_a_missing_field_is_named() {
        let spec = Spec::load(Document::Fansly).unwrap();
        let body = json!({"statusCode": 404, "message": "Job not found", "data": null,
                          "timestamp": "2026-02-04T18:35:01.526Z"});
        spec.validate_response("GET", "/api/fansly/media/upload/9/status", 404, &body)
            .unwrap();
        let mut broken = body.clone();
        broken.as_object_mut().unwrap().remove("timestamp");
        let err = spec
            .validate_response("GET", "/api/fansly/media/upload/9/status", 404, &broken)
            .unwrap_err();
        assert!(err.to_string().contains("timestamp"), "{err}");
    }

    #[test]
    fn onlyfans_status_branch_is_picked_by_status() {
        let spec = Spec::load(Document::OnlyFans).unwrap();
        let path = "/api/acct_1/media/uploads/ofapi_media_abc/status";
        spec.validate_response(
            "GET",
            path,
            200,
            &json!({"status": "processing", "prefixed_id": "ofapi_media_abc"}),
        )
        .unwrap();
        let err = spec
            .validate_response(
                "GET",
                path,
                200,
                &json!({"status": "failed", "prefixed_id": "ofapi_media_abc"}),
            )
            .unwrap_err();
        assert!(matches!(err, SpecError::Invalid { .. }), "{err}");
    }

    #[test]
    fn nullable_becomes_a_null_type() {
        let mut schema = json!({"type": "string", "nullable": true});
        rewrite_nullable(&mut schema);
        assert_eq!(schema, json!({"type": ["string", "null"]}));
    }

    #[test]
    fn undocumented_status_is_reported() {
        let spec = Spec::load(Document::Fansly).unwrap();
        let err = spec
            .validate_response("GET", "/api/fansly/media/upload/9/status", 418, &json!({}))
            .unwrap_err();
        assert!(matches!(
            err,
            SpecError::UndocumentedStatus { status: 418, .. }
        ));
    }
}
