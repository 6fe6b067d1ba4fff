//! The OpenAPI documents in `specs/`, embedded, and a validator for responses against them.
//!
//! The specs are the contract; the mock's own tests and the conformance suite both check every
//! response against them through this module, so a change to a `wire` type that breaks the
//! contract fails a test rather than a client.
//!
//! Documents are parsed with `openapiv3`, so a malformed spec fails loudly instead of validating
//! nothing, and each OpenAPI 3.0 schema is converted to JSON Schema 2020-12 before compiling:
//! `nullable` becomes a `null` type (or a `null` branch), `readOnly` properties are forbidden and
//! not required in requests, `writeOnly` ones likewise in responses, boolean `exclusiveMinimum`
//! becomes the numeric form, and siblings of a `$ref` are dropped, as OpenAPI 3.0 says they are.
//! Each violation names the JSON pointer, what the schema expected and what the body had.

use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use openapiv3::{
    AdditionalProperties, OpenAPI, Operation, ParameterSchemaOrContent, ReferenceOr, Response,
    Schema, SchemaKind, StatusCode, Type, VariantOrUnknownOrEmpty,
};
use serde_json::{Map, Value};

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

/// One way a body breaks its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where in the body, as a JSON pointer (`""` is the whole body).
    pub pointer: String,
    /// What the schema wants there, e.g. `type "integer"` or `required property "jobId"`.
    pub expected: String,
    /// What the body had there, as compact JSON (shortened), or `missing`.
    pub actual: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(
            f,
            "{pointer}: expected {}, got {}",
            self.expected, self.actual
        )
    }
}

/// Which way a body travels: `readOnly` and `writeOnly` mean opposite things in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to server: `readOnly` properties must not be sent.
    Request,
    /// Server to client: `writeOnly` properties must not come back.
    Response,
}

/// Why a response does not match its spec.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The YAML does not parse as OpenAPI 3.0.
    #[error("{document:?}: invalid OpenAPI document: {message}")]
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
    #[error("{method} {template} {status}: {}", join(violations))]
    Invalid {
        /// The method.
        method: String,
        /// The matched template.
        template: String,
        /// The status.
        status: u16,
        /// Every violation found, in the validator's order.
        violations: Vec<Violation>,
    },
}

fn join(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(Violation::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A parsed OpenAPI document.
#[derive(Debug, Clone)]
pub struct Spec {
    document: Document,
    root: Value,
    api: OpenAPI,
}

/// One documented response header.
#[derive(Debug, Clone)]
pub struct HeaderDoc<'a> {
    /// Its name as the spec spells it.
    pub name: &'a str,
    /// Whether every such response must carry it.
    pub required: bool,
    /// The JSON Schema its value must meet (header values are strings; a check parses numbers).
    pub schema: Option<Value>,
}

/// One documented response of one operation: what a check compares a real answer with.
#[derive(Debug, Clone)]
pub struct DocumentedResponse<'a> {
    spec: &'a Spec,
    /// The path template the request matched.
    pub template: &'a str,
    /// The status key it was found under (`"404"`, `"4XX"` or `"default"`).
    pub key: String,
    response: &'a Response,
}

impl Spec {
    /// Parses an embedded document.
    pub fn load(document: Document) -> Result<Self, SpecError> {
        Self::parse(document, document.text())
    }

    /// Parses `text` as `document` (the drift check feeds it other versions of the same file).
    pub fn parse(document: Document, text: &str) -> Result<Self, SpecError> {
        let yaml_error = |message: String| SpecError::Yaml { document, message };
        let root: Value =
            serde_norway::from_str(text).map_err(|err| yaml_error(err.to_string()))?;
        let api: OpenAPI =
            serde_json::from_value(root.clone()).map_err(|err| yaml_error(err.to_string()))?;
        Ok(Self {
            document,
            root,
            api,
        })
    }

    /// The document as JSON.
    pub fn root(&self) -> &Value {
        &self.root
    }

    /// The document as typed OpenAPI.
    pub fn api(&self) -> &OpenAPI {
        &self.api
    }

    /// Which document this is.
    pub fn document(&self) -> Document {
        self.document
    }

    /// The path template that `path` (no query) matches, e.g. `/api/fansly/media/upload/{jobId}/status`.
    pub fn match_path(&self, path: &str) -> Option<&str> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        self.api
            .paths
            .paths
            .keys()
            .map(String::as_str)
            .find(|template| {
                let template_segments: Vec<&str> =
                    template.trim_start_matches('/').split('/').collect();
                template_segments.len() == segments.len()
                    && template_segments.iter().zip(&segments).all(|(want, got)| {
                        (want.starts_with('{') && want.ends_with('}') && !got.is_empty())
                            || want == got
                    })
            })
    }

    /// The operation for (method, path), with its template.
    pub fn operation(&self, method: &str, path: &str) -> Result<(&str, &Operation), SpecError> {
        let unknown = || SpecError::UnknownOperation {
            method: method.to_owned(),
            path: path.to_owned(),
        };
        let template = self.match_path(path).ok_or_else(unknown)?;
        let Some(ReferenceOr::Item(item)) = self.api.paths.paths.get(template) else {
            return Err(unknown());
        };
        let operation = item
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(method))
            .map(|(_, operation)| operation)
            .ok_or_else(unknown)?;
        Ok((template, operation))
    }

    /// The response documented for (method, path, status): the exact code, then its range
    /// (`4XX`), then `default`. A 405 answers a method the path does not have, so it is looked up
    /// on the path's other operations.
    pub fn response(
        &self,
        method: &str,
        path: &str,
        status: u16,
    ) -> Result<DocumentedResponse<'_>, SpecError> {
        let (template, operations): (&str, Vec<&Operation>) = match self.operation(method, path) {
            Ok((template, operation)) => (template, vec![operation]),
            Err(err) => {
                let template = self.match_path(path).ok_or(err.clone())?;
                let Some(ReferenceOr::Item(item)) = self.api.paths.paths.get(template) else {
                    return Err(err);
                };
                if status != 405 {
                    return Err(err);
                }
                (
                    template,
                    item.iter().map(|(_, operation)| operation).collect(),
                )
            }
        };
        for operation in operations {
            let responses = &operation.responses;
            let found = responses
                .responses
                .iter()
                .find(|(code, _)| **code == StatusCode::Code(status))
                .or_else(|| {
                    responses
                        .responses
                        .iter()
                        .find(|(code, _)| **code == StatusCode::Range(status / 100))
                })
                .map(|(code, response)| (code.to_string(), response))
                .or_else(|| {
                    responses
                        .default
                        .as_ref()
                        .map(|response| ("default".to_owned(), response))
                });
            if let Some((key, response)) = found {
                let response =
                    self.resolve_response(response)
                        .ok_or_else(|| SpecError::BadSchema {
                            method: method.to_owned(),
                            template: template.to_owned(),
                            status,
                            message: "unresolvable response $ref".to_owned(),
                        })?;
                return Ok(DocumentedResponse {
                    spec: self,
                    template,
                    key,
                    response,
                });
            }
        }
        Err(SpecError::UndocumentedStatus {
            method: method.to_owned(),
            template: template.to_owned(),
            status,
        })
    }

    /// The JSON Schema (2020-12, components under `$defs`) of a documented response body.
    pub fn response_schema(
        &self,
        method: &str,
        path: &str,
        status: u16,
    ) -> Result<Value, SpecError> {
        Ok(self
            .response(method, path, status)?
            .schema("application/json")
            .unwrap_or(Value::Bool(true)))
    }

    /// Checks a response body against the documented schema for (method, path, status).
    pub fn validate_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &Value,
    ) -> Result<(), SpecError> {
        let documented = self.response(method, path, status)?;
        let schema = documented
            .schema("application/json")
            .unwrap_or(Value::Bool(true));
        let template = documented.template.to_owned();
        let violations = validate(&schema, body).map_err(|message| SpecError::BadSchema {
            method: method.to_owned(),
            template: template.clone(),
            status,
            message,
        })?;
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

    /// `schema` as a self-contained JSON Schema for bodies travelling in `direction`.
    pub fn json_schema(&self, schema: &ReferenceOr<Schema>, direction: Direction) -> Value {
        let converter = Converter {
            api: &self.api,
            direction,
        };
        let mut root = match converter.reference_or(schema) {
            Value::Object(map) => map,
            other => {
                let mut map = Map::new();
                map.insert("allOf".to_owned(), Value::Array(vec![other]));
                map
            }
        };
        let defs: Map<String, Value> = self
            .api
            .components
            .iter()
            .flat_map(|components| &components.schemas)
            .map(|(name, schema)| (name.clone(), converter.reference_or(schema)))
            .collect();
        root.insert(
            "$schema".to_owned(),
            Value::from("https://json-schema.org/draft/2020-12/schema"),
        );
        root.insert("$defs".to_owned(), Value::Object(defs));
        Value::Object(root)
    }

    fn resolve_response<'a>(&'a self, response: &'a ReferenceOr<Response>) -> Option<&'a Response> {
        match response {
            ReferenceOr::Item(response) => Some(response),
            ReferenceOr::Reference { reference } => {
                let name = reference.strip_prefix("#/components/responses/")?;
                match self.api.components.as_ref()?.responses.get(name)? {
                    ReferenceOr::Item(response) => Some(response),
                    ReferenceOr::Reference { .. } => None,
                }
            }
        }
    }

    fn resolve_schema<'a>(&'a self, schema: &'a ReferenceOr<Schema>) -> Option<&'a Schema> {
        resolve_schema(&self.api, schema)
    }
}

impl DocumentedResponse<'_> {
    /// The documented headers: name, whether required, and the JSON Schema of the value.
    pub fn headers(&self) -> Vec<HeaderDoc<'_>> {
        self.response
            .headers
            .iter()
            .filter_map(|(name, header)| {
                let header = match header {
                    ReferenceOr::Item(header) => header,
                    ReferenceOr::Reference { reference } => {
                        let name = reference.strip_prefix("#/components/headers/")?;
                        match self.spec.api.components.as_ref()?.headers.get(name)? {
                            ReferenceOr::Item(header) => header,
                            ReferenceOr::Reference { .. } => return None,
                        }
                    }
                };
                let schema = match &header.format {
                    ParameterSchemaOrContent::Schema(schema) => {
                        Some(self.spec.json_schema(schema, Direction::Response))
                    }
                    ParameterSchemaOrContent::Content(_) => None,
                };
                Some(HeaderDoc {
                    name,
                    required: header.required,
                    schema,
                })
            })
            .collect()
    }

    /// The documented content types (`application/json`, `application/xml`, ...).
    pub fn content_types(&self) -> Vec<&str> {
        self.response.content.keys().map(String::as_str).collect()
    }

    /// The JSON Schema of the body for `content_type`, if one is documented.
    pub fn schema(&self, content_type: &str) -> Option<Value> {
        let schema = self.response.content.get(content_type)?.schema.as_ref()?;
        Some(self.spec.json_schema(schema, Direction::Response))
    }

    /// Whether the documented schema itself is typed (not the empty schema): used by drift checks.
    pub fn has_schema(&self, content_type: &str) -> bool {
        self.response
            .content
            .get(content_type)
            .and_then(|media| media.schema.as_ref())
            .and_then(|schema| self.spec.resolve_schema(schema))
            .is_some()
    }
}

/// Looks a schema up in `#/components/schemas` (one level: the specs never chain `$ref`s).
pub(crate) fn resolve_schema<'a>(
    api: &'a OpenAPI,
    schema: &'a ReferenceOr<Schema>,
) -> Option<&'a Schema> {
    match schema {
        ReferenceOr::Item(schema) => Some(schema),
        ReferenceOr::Reference { reference } => {
            let name = reference.strip_prefix("#/components/schemas/")?;
            match api.components.as_ref()?.schemas.get(name)? {
                ReferenceOr::Item(schema) => Some(schema),
                ReferenceOr::Reference { .. } => None,
            }
        }
    }
}

/// Compiles `schema` and lists what `body` breaks; `Err` if the schema does not compile.
pub fn validate(schema: &Value, body: &Value) -> Result<Vec<Violation>, String> {
    let validator = jsonschema::draft202012::new(schema).map_err(|err| err.to_string())?;
    let mut found = Vec::new();
    for err in validator.iter_errors(body) {
        explain(&err, &mut found, 0);
    }
    Ok(found)
}

/// One violation per error; a `oneOf`/`anyOf` that no branch matched is explained by its
/// best-matching branch (one whose `enum`/`const` discriminators held, with the fewest errors),
/// so a failed status body names `/error`, not just "no branch matched".
fn explain(err: &ValidationError<'_>, found: &mut Vec<Violation>, depth: u8) {
    let context = match err.kind() {
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            Some(context)
        }
        _ => None,
    };
    if let Some(branch) = context
        .filter(|_| depth < 4)
        .and_then(|context| best_branch(context))
    {
        for inner in branch {
            explain(inner, found, depth + 1);
        }
        return;
    }
    found.push(Violation {
        pointer: err.instance_path().to_string(),
        expected: expected_of(err.kind()),
        actual: match err.kind() {
            ValidationErrorKind::Required { .. } => "missing".to_owned(),
            _ => shorten(&err.instance().to_string()),
        },
    });
}

fn best_branch<'e>(
    context: &'e [Vec<ValidationError<'static>>],
) -> Option<&'e Vec<ValidationError<'static>>> {
    let is_discriminator = |err: &ValidationError<'_>| {
        matches!(
            err.kind(),
            ValidationErrorKind::Enum { .. } | ValidationErrorKind::Constant { .. }
        )
    };
    context
        .iter()
        .filter(|branch| !branch.is_empty())
        .min_by_key(|branch| (branch.iter().any(is_discriminator), branch.len()))
}

fn expected_of(kind: &ValidationErrorKind) -> String {
    match kind {
        ValidationErrorKind::Type { kind } => match kind {
            TypeKind::Single(kind) => format!("type \"{kind}\""),
            TypeKind::Multiple(kinds) => format!(
                "one of types {}",
                kinds
                    .iter()
                    .map(|kind| format!("\"{kind}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        ValidationErrorKind::Required { property } => format!("required property {property}"),
        ValidationErrorKind::Enum { options } => {
            format!("one of {}", shorten(&options.to_string()))
        }
        ValidationErrorKind::Constant { expected_value } => expected_value.to_string(),
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            format!("no properties {unexpected:?}")
        }
        ValidationErrorKind::OneOfNotValid { .. } => {
            "exactly one oneOf branch to match, none did".to_owned()
        }
        ValidationErrorKind::OneOfMultipleValid { .. } => {
            "exactly one oneOf branch to match, several did".to_owned()
        }
        ValidationErrorKind::AnyOf { .. } => "an anyOf branch to match".to_owned(),
        ValidationErrorKind::FalseSchema => {
            "nothing here (readOnly/writeOnly or forbidden)".to_owned()
        }
        ValidationErrorKind::Minimum { limit } => format!("minimum {limit}"),
        ValidationErrorKind::Maximum { limit } => format!("maximum {limit}"),
        ValidationErrorKind::ExclusiveMinimum { limit } => format!("more than {limit}"),
        ValidationErrorKind::ExclusiveMaximum { limit } => format!("less than {limit}"),
        ValidationErrorKind::MinLength { limit } => format!("at least {limit} characters"),
        ValidationErrorKind::MaxLength { limit } => format!("at most {limit} characters"),
        ValidationErrorKind::MinItems { limit } => format!("at least {limit} items"),
        ValidationErrorKind::MaxItems { limit } => format!("at most {limit} items"),
        ValidationErrorKind::Pattern { pattern } => format!("a match for /{pattern}/"),
        ValidationErrorKind::Format { format } => format!("format \"{format}\""),
        other => other.keyword().to_owned(),
    }
}

fn shorten(text: &str) -> String {
    const LIMIT: usize = 120;
    if text.len() <= LIMIT {
        return text.to_owned();
    }
    let mut end = LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The schema keyword (`x-drift: value`) that makes drift compare a field's value, not only its
/// type: for texts the contract fixes without an `enum`, such as error messages.
pub const DRIFT_KEYWORD: &str = "x-drift";

/// OpenAPI 3.0 schema → JSON Schema 2020-12, walking `openapiv3`'s typed model.
struct Converter<'a> {
    api: &'a OpenAPI,
    direction: Direction,
}

impl Converter<'_> {
    fn reference_or(&self, schema: &ReferenceOr<Schema>) -> Value {
        match schema {
            ReferenceOr::Reference { reference } => ref_value(reference),
            ReferenceOr::Item(schema) => self.schema(schema),
        }
    }

    fn boxed(&self, schema: &ReferenceOr<Box<Schema>>) -> Value {
        match schema {
            ReferenceOr::Reference { reference } => ref_value(reference),
            ReferenceOr::Item(schema) => self.schema(schema),
        }
    }

    /// Whether a property must not appear in this direction.
    fn is_forbidden(&self, schema: &ReferenceOr<Box<Schema>>) -> bool {
        let data = match schema {
            ReferenceOr::Item(schema) => Some(&schema.schema_data),
            ReferenceOr::Reference { reference } => reference
                .strip_prefix("#/components/schemas/")
                .and_then(|name| self.api.components.as_ref()?.schemas.get(name))
                .and_then(|schema| match schema {
                    ReferenceOr::Item(schema) => Some(&schema.schema_data),
                    ReferenceOr::Reference { .. } => None,
                }),
        };
        data.is_some_and(|data| match self.direction {
            Direction::Request => data.read_only,
            Direction::Response => data.write_only,
        })
    }

    fn schema(&self, schema: &Schema) -> Value {
        let mut out = Map::new();
        let mut put = |key: &str, value: Value| {
            out.insert(key.to_owned(), value);
        };
        match &schema.schema_kind {
            SchemaKind::Type(Type::String(string)) => {
                put("type", "string".into());
                if let VariantOrUnknownOrEmpty::Unknown(format) = &string.format {
                    put("format", format.clone().into());
                }
                if let Some(pattern) = &string.pattern {
                    put("pattern", pattern.clone().into());
                }
                if !string.enumeration.is_empty() {
                    put("enum", serde_json::json!(string.enumeration));
                }
                if let Some(min) = string.min_length {
                    put("minLength", min.into());
                }
                if let Some(max) = string.max_length {
                    put("maxLength", max.into());
                }
            }
            SchemaKind::Type(Type::Number(number)) => {
                put("type", "number".into());
                bounds(
                    &mut put,
                    number.minimum,
                    number.exclusive_minimum,
                    "Minimum",
                );
                bounds(
                    &mut put,
                    number.maximum,
                    number.exclusive_maximum,
                    "Maximum",
                );
                if let Some(multiple) = number.multiple_of {
                    put("multipleOf", multiple.into());
                }
                if !number.enumeration.is_empty() {
                    put("enum", serde_json::json!(number.enumeration));
                }
            }
            SchemaKind::Type(Type::Integer(integer)) => {
                put("type", "integer".into());
                bounds(
                    &mut put,
                    integer.minimum,
                    integer.exclusive_minimum,
                    "Minimum",
                );
                bounds(
                    &mut put,
                    integer.maximum,
                    integer.exclusive_maximum,
                    "Maximum",
                );
                if let Some(multiple) = integer.multiple_of {
                    put("multipleOf", multiple.into());
                }
                if !integer.enumeration.is_empty() {
                    put("enum", serde_json::json!(integer.enumeration));
                }
            }
            SchemaKind::Type(Type::Boolean(boolean)) => {
                put("type", "boolean".into());
                if !boolean.enumeration.is_empty() {
                    put("enum", serde_json::json!(boolean.enumeration));
                }
            }
            SchemaKind::Type(Type::Object(object)) => {
                put("type", "object".into());
                self.object(
                    &mut put,
                    &object.properties,
                    &object.required,
                    object.additional_properties.as_ref(),
                );
                if let Some(min) = object.min_properties {
                    put("minProperties", min.into());
                }
                if let Some(max) = object.max_properties {
                    put("maxProperties", max.into());
                }
            }
            SchemaKind::Type(Type::Array(array)) => {
                put("type", "array".into());
                if let Some(items) = &array.items {
                    put("items", self.boxed(items));
                }
                if let Some(min) = array.min_items {
                    put("minItems", min.into());
                }
                if let Some(max) = array.max_items {
                    put("maxItems", max.into());
                }
                if array.unique_items {
                    put("uniqueItems", true.into());
                }
            }
            SchemaKind::OneOf { one_of } => put("oneOf", self.list(one_of)),
            SchemaKind::AllOf { all_of } => put("allOf", self.list(all_of)),
            SchemaKind::AnyOf { any_of } => put("anyOf", self.list(any_of)),
            SchemaKind::Not { not } => put("not", self.reference_or(not)),
            SchemaKind::Any(any) => {
                if let Some(kind) = &any.typ {
                    put("type", kind.clone().into());
                }
                if let Some(pattern) = &any.pattern {
                    put("pattern", pattern.clone().into());
                }
                bounds(
                    &mut put,
                    any.minimum,
                    any.exclusive_minimum.unwrap_or(false),
                    "Minimum",
                );
                bounds(
                    &mut put,
                    any.maximum,
                    any.exclusive_maximum.unwrap_or(false),
                    "Maximum",
                );
                if !any.properties.is_empty()
                    || !any.required.is_empty()
                    || any.additional_properties.is_some()
                {
                    self.object(
                        &mut put,
                        &any.properties,
                        &any.required,
                        any.additional_properties.as_ref(),
                    );
                }
                if let Some(items) = &any.items {
                    put("items", self.boxed(items));
                }
                if !any.enumeration.is_empty() {
                    put("enum", Value::Array(any.enumeration.clone()));
                }
                if let Some(format) = &any.format {
                    put("format", format.clone().into());
                }
                for (key, list) in [
                    ("oneOf", &any.one_of),
                    ("allOf", &any.all_of),
                    ("anyOf", &any.any_of),
                ] {
                    if !list.is_empty() {
                        put(key, self.list(list));
                    }
                }
                if let Some(not) = &any.not {
                    put("not", self.reference_or(not));
                }
                for (key, value) in [
                    ("minLength", any.min_length),
                    ("maxLength", any.max_length),
                    ("minItems", any.min_items),
                    ("maxItems", any.max_items),
                    ("minProperties", any.min_properties),
                    ("maxProperties", any.max_properties),
                ] {
                    if let Some(value) = value {
                        put(key, value.into());
                    }
                }
            }
        }
        // Our own marker for drift: `x-drift: value` says the value itself is contract, so a
        // changed value is drift even where no `enum` pins it (error texts). JSON Schema ignores
        // unknown keywords, so validation is unchanged.
        if let Some(marker) = schema.schema_data.extensions.get(DRIFT_KEYWORD) {
            out.insert(DRIFT_KEYWORD.to_owned(), marker.clone());
        }
        if schema.schema_data.nullable {
            nullable(&mut out);
        }
        Value::Object(out)
    }

    fn list(&self, schemas: &[ReferenceOr<Schema>]) -> Value {
        Value::Array(
            schemas
                .iter()
                .map(|schema| self.reference_or(schema))
                .collect(),
        )
    }

    fn object(
        &self,
        put: &mut impl FnMut(&str, Value),
        properties: &indexmap::IndexMap<String, ReferenceOr<Box<Schema>>>,
        required: &[String],
        additional: Option<&AdditionalProperties>,
    ) {
        let mut forbidden = Vec::new();
        let converted: Map<String, Value> = properties
            .iter()
            .map(|(name, schema)| {
                if self.is_forbidden(schema) {
                    forbidden.push(name.as_str());
                    (name.clone(), Value::Bool(false))
                } else {
                    (name.clone(), self.boxed(schema))
                }
            })
            .collect();
        put("properties", Value::Object(converted));
        let required: Vec<Value> = required
            .iter()
            .filter(|name| !forbidden.contains(&name.as_str()))
            .map(|name| Value::from(name.clone()))
            .collect();
        if !required.is_empty() {
            put("required", Value::Array(required));
        }
        match additional {
            Some(AdditionalProperties::Any(allowed)) => {
                put("additionalProperties", (*allowed).into())
            }
            Some(AdditionalProperties::Schema(schema)) => {
                put("additionalProperties", self.reference_or(schema));
            }
            None => {}
        }
    }
}

fn ref_value(reference: &str) -> Value {
    let target = reference
        .strip_prefix("#/components/schemas/")
        .map_or_else(|| reference.to_owned(), |name| format!("#/$defs/{name}"));
    serde_json::json!({ "$ref": target })
}

/// OpenAPI 3.0's inclusive bound plus boolean `exclusive*` → JSON Schema's two keywords.
fn bounds<N: Into<Value>>(
    put: &mut impl FnMut(&str, Value),
    limit: Option<N>,
    exclusive: bool,
    which: &str,
) {
    if let Some(limit) = limit {
        if exclusive {
            put(&format!("exclusive{which}"), limit.into());
        } else {
            put(&which.to_ascii_lowercase(), limit.into());
        }
    }
}

/// `nullable: true`: a `null` type beside the declared one (and `null` in `enum`), or a `null`
/// branch when the schema has no single type (compositions).
fn nullable(out: &mut Map<String, Value>) {
    if let Some(Value::Array(options)) = out.get_mut("enum") {
        if !options.contains(&Value::Null) {
            options.push(Value::Null);
        }
    }
    match out.get("type").cloned() {
        Some(Value::String(kind)) => {
            out.insert("type".to_owned(), serde_json::json!([kind, "null"]));
        }
        _ => {
            let inner = std::mem::take(out);
            out.insert(
                "anyOf".to_owned(),
                serde_json::json!([Value::Object(inner), { "type": "null" }]),
            );
        }
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

    /// A dangling `$ref` (a request body's schema, a link) parses but makes tools that follow it,
    /// Schemathesis among them, skip what it names.
    #[test]
    fn every_local_reference_resolves() {
        fn walk(node: &Value, root: &Value, document: Document) {
            match node {
                Value::Object(map) => {
                    if let Some(Value::String(reference)) = map.get("$ref") {
                        let pointer = reference.strip_prefix('#').unwrap_or_default();
                        assert!(
                            root.pointer(pointer).is_some(),
                            "{document:?}: $ref {reference} names nothing"
                        );
                    }
                    map.values().for_each(|value| walk(value, root, document));
                }
                Value::Array(items) => items.iter().for_each(|item| walk(item, root, document)),
                _ => {}
            }
        }
        for document in Document::ALL {
            let spec = Spec::load(document).unwrap();
            walk(spec.root(), spec.root(), document);
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
        let SpecError::Invalid { violations, .. } = err else {
            panic!("{err}");
        };
        assert_eq!(
            violations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [r#"/: expected required property "error", got missing"#],
            "the branch whose status matched explains the failure"
        );
    }

    /// A document written to exercise the OpenAPI 3.0 → JSON Schema conversion.
    const CONVERSION: &str = r##"
openapi: 3.0.3
info: { title: t, version: "1" }
paths:
  /thing:
    get:
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: { $ref: "#/components/schemas/Thing" }
        4XX:
          description: any client error
components:
  schemas:
    Thing:
      type: object
      required: [id, secret, name, size]
      properties:
        id: { type: string, readOnly: true }
        secret: { type: string, writeOnly: true }
        name: { type: string, nullable: true }
        kind: { type: string, enum: [a, b], nullable: true }
        size: { type: integer, minimum: 0, exclusiveMinimum: true }
        owner: { $ref: "#/components/schemas/Owner", nullable: true }
    Owner:
      type: object
      required: [id]
      properties: { id: { type: integer } }
"##;

    fn conversion_spec() -> Spec {
        Spec::parse(Document::Fansly, CONVERSION).unwrap()
    }

    fn violations(body: Value) -> Vec<Violation> {
        match conversion_spec().validate_response("GET", "/thing", 200, &body) {
            Ok(()) => Vec::new(),
            Err(SpecError::Invalid { violations, .. }) => violations,
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn nullable_admits_null_in_type_and_enum() {
        assert!(violations(json!({"id": "1", "name": null, "kind": null, "size": 1})).is_empty());
        let found = violations(json!({"id": "1", "name": 5, "size": 1}));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].pointer, "/name");
        assert!(
            found[0].expected.contains("\"null\""),
            "{}",
            found[0].expected
        );
        assert_eq!(found[0].actual, "5");
    }

    #[test]
    fn write_only_is_neither_required_nor_allowed_in_a_response() {
        let found = violations(json!({"id": "1", "name": "n", "size": 1, "secret": "s"}));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].pointer, "/secret");
    }

    #[test]
    fn read_only_is_not_required_in_a_request() {
        let spec = conversion_spec();
        let thing = &spec.api().components.as_ref().unwrap().schemas["Thing"];
        let schema = spec.json_schema(thing, Direction::Request);
        let found = validate(&schema, &json!({"secret": "s", "name": "n", "size": 1})).unwrap();
        assert!(found.is_empty(), "{found:?}");
        let found = validate(
            &schema,
            &json!({"id": "1", "secret": "s", "name": "n", "size": 1}),
        )
        .unwrap();
        assert_eq!(found[0].pointer, "/id");
    }

    #[test]
    fn boolean_exclusive_minimum_becomes_numeric() {
        let found = violations(json!({"id": "1", "name": "n", "size": 0}));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].expected, "more than 0");
    }

    #[test]
    fn siblings_of_a_ref_are_ignored_as_openapi_3_0_says() {
        let found = violations(json!({"id": "1", "name": "n", "size": 1, "owner": null}));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].pointer, "/owner");
        assert_eq!(found[0].expected, r#"type "object""#);
    }

    #[test]
    fn missing_required_property_is_named_with_expected_and_actual() {
        let found = violations(json!({"id": "1", "name": "n"}));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].to_string(),
            r#"/: expected required property "size", got missing"#
        );
    }

    #[test]
    fn status_ranges_are_found_and_others_are_undocumented() {
        let spec = conversion_spec();
        let documented = spec.response("GET", "/thing", 418).unwrap();
        assert_eq!(documented.key, "4XX");
        assert!(documented.content_types().is_empty());
        assert!(matches!(
            spec.response("GET", "/thing", 500),
            Err(SpecError::UndocumentedStatus { status: 500, .. })
        ));
    }

    #[test]
    fn a_document_that_is_not_openapi_is_refused() {
        let err = Spec::parse(Document::Fansly, "openapi: 3.0.3\npaths: 7\n").unwrap_err();
        assert!(matches!(err, SpecError::Yaml { .. }), "{err}");
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
