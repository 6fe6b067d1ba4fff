//! Drift: where our specs and the providers part ways, in a form a person can act on.
//!
//! Two sources. The providers' published OpenAPI (`specs/upstream/`, kept verbatim) is compared
//! with ours field by field: operations, status codes, field paths, types, enums and
//! required-ness, and every example the provider publishes is validated against our schema.
//! Live answers are compared with the committed snapshots, after the same normalisation, so a
//! renamed field, a changed type or a new state name is named with its JSON pointer.

use std::collections::{BTreeMap, BTreeSet};

use mock_server::spec::{Direction, Document, Spec};
use openapiv3::{ReferenceOr, Schema, SchemaKind, Type};
use serde_json::Value;

use crate::snapshot::{Difference, diff, read_snap};

/// How much a difference matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Our spec is stricter where the provider's says nothing (an enum, a required field): by
    /// design, as long as live answers keep passing.
    Stricter,
    /// Ours documents something the provider's does not mention.
    OursOnly,
    /// The two disagree, or the provider documents something we do not: fix ours or accept it.
    Actionable,
}

/// One difference between the provider's spec and ours.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SpecDrift {
    /// How much it matters.
    pub severity: Severity,
    /// `GET /api/{account}/media/uploads/{upload}/status 200`.
    pub operation: String,
    /// The field path (`media.files.full.url`) or `-` for the operation itself.
    pub field: String,
    /// What differs, in words.
    pub change: String,
}

impl SpecDrift {
    /// The line a baseline file lists to accept this difference.
    pub fn key(&self) -> String {
        format!("{} {} {}", self.operation, self.field, self.change)
    }
}

/// What one field looks like across a schema's branches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Field {
    types: BTreeSet<String>,
    enumeration: BTreeSet<String>,
    required: bool,
}

/// Compares `upstream` (the provider's) with `ours` on every operation the provider documents.
pub fn compare_specs(upstream: &Spec, ours: &Spec) -> Vec<SpecDrift> {
    let mut found = Vec::new();
    for (template, item) in upstream.api().paths.iter() {
        let ReferenceOr::Item(item) = item else {
            continue;
        };
        for (method, operation) in item.iter() {
            let method = method.to_ascii_uppercase();
            let concrete = template.replace('{', "x").replace('}', "");
            let name = format!("{method} {template}");
            let Ok((_, our_operation)) = ours.operation(&method, &concrete) else {
                found.push(SpecDrift {
                    severity: Severity::Actionable,
                    operation: name,
                    field: "-".to_owned(),
                    change: "operation missing from ours".to_owned(),
                });
                continue;
            };
            let codes = |operation: &openapiv3::Operation| -> BTreeSet<String> {
                operation
                    .responses
                    .responses
                    .keys()
                    .map(ToString::to_string)
                    .collect()
            };
            let (theirs, mine) = (codes(operation), codes(our_operation));
            for code in theirs.difference(&mine) {
                found.push(SpecDrift {
                    severity: Severity::Actionable,
                    operation: name.clone(),
                    field: "-".to_owned(),
                    change: format!("status {code} missing from ours"),
                });
            }
            for code in mine.difference(&theirs) {
                found.push(SpecDrift {
                    severity: Severity::OursOnly,
                    operation: name.clone(),
                    field: "-".to_owned(),
                    change: format!("status {code} only in ours"),
                });
            }
            for code in theirs.intersection(&mine) {
                let Ok(status) = code.parse::<u16>() else {
                    continue;
                };
                let operation_name = format!("{name} {code}");
                if upstream.response(&method, &concrete, status).is_err() {
                    continue;
                }
                let schema_of = |spec: &Spec, method: &str| -> Option<ReferenceOr<Schema>> {
                    let (_, operation) = spec.operation(method, &concrete).ok()?;
                    let response = operation
                        .responses
                        .responses
                        .iter()
                        .find(|(key, _)| key.to_string() == *code)?
                        .1;
                    let response = match response {
                        ReferenceOr::Item(response) => response,
                        ReferenceOr::Reference { .. } => return None,
                    };
                    response.content.get("application/json")?.schema.clone()
                };
                let (Some(their_schema), Some(our_schema)) =
                    (schema_of(upstream, &method), schema_of(ours, &method))
                else {
                    continue;
                };
                let mut theirs = BTreeMap::new();
                let mut mine = BTreeMap::new();
                flatten(upstream, &their_schema, "", true, &mut theirs, 0);
                flatten(ours, &our_schema, "", true, &mut mine, 0);
                compare_fields(&operation_name, &theirs, &mine, &mut found);
                check_examples(
                    upstream,
                    ours,
                    &their_schema,
                    &our_schema,
                    &operation_name,
                    &mut found,
                );
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Every example the provider publishes for a response must validate against our schema.
fn check_examples(
    upstream: &Spec,
    ours: &Spec,
    their_schema: &ReferenceOr<Schema>,
    our_schema: &ReferenceOr<Schema>,
    operation: &str,
    found: &mut Vec<SpecDrift>,
) {
    let mut examples = Vec::new();
    collect_examples(upstream, their_schema, &mut examples, 0);
    let schema = ours.json_schema(our_schema, Direction::Response);
    for (idx, example) in examples.iter().enumerate() {
        let Ok(violations) = mock_server::spec::validate(&schema, example) else {
            continue;
        };
        for violation in violations {
            found.push(SpecDrift {
                severity: Severity::Actionable,
                operation: operation.to_owned(),
                field: format!("example {}", idx + 1),
                change: format!("the provider's example breaks ours: {violation}"),
            });
        }
    }
}

fn collect_examples(spec: &Spec, schema: &ReferenceOr<Schema>, out: &mut Vec<Value>, depth: u8) {
    let Some(schema) = resolve(spec, schema) else {
        return;
    };
    if depth > 2 {
        return;
    }
    if let Some(example) = &schema.schema_data.example {
        out.push(example.clone());
    }
    if let SchemaKind::OneOf { one_of: list }
    | SchemaKind::AnyOf { any_of: list }
    | SchemaKind::AllOf { all_of: list } = &schema.schema_kind
    {
        for branch in list {
            collect_examples(spec, branch, out, depth + 1);
        }
    }
}

fn resolve<'a>(spec: &'a Spec, schema: &'a ReferenceOr<Schema>) -> Option<&'a Schema> {
    match schema {
        ReferenceOr::Item(schema) => Some(schema),
        ReferenceOr::Reference { reference } => {
            let name = reference.strip_prefix("#/components/schemas/")?;
            match spec.api().components.as_ref()?.schemas.get(name)? {
                ReferenceOr::Item(schema) => Some(schema),
                ReferenceOr::Reference { .. } => None,
            }
        }
    }
}

/// Field path → what it looks like, merging the branches of `oneOf`/`anyOf`/`allOf`.
fn flatten(
    spec: &Spec,
    schema: &ReferenceOr<Schema>,
    path: &str,
    required: bool,
    out: &mut BTreeMap<String, Field>,
    depth: u8,
) {
    let Some(schema) = resolve(spec, schema) else {
        return;
    };
    if depth > 12 {
        return;
    }
    let record = |out: &mut BTreeMap<String, Field>, kind: &str, enumeration: Vec<String>| {
        if path.is_empty() {
            return;
        }
        let field = out.entry(path.to_owned()).or_default();
        field.types.insert(kind.to_owned());
        field.enumeration.extend(enumeration);
        field.required |= required;
    };
    let nullable = schema.schema_data.nullable;
    match &schema.schema_kind {
        SchemaKind::Type(Type::String(string)) => {
            let values = string.enumeration.iter().flatten().cloned().collect();
            record(out, "string", values);
        }
        SchemaKind::Type(Type::Integer(integer)) => {
            let values = integer
                .enumeration
                .iter()
                .flatten()
                .map(ToString::to_string)
                .collect();
            record(out, "integer", values);
        }
        SchemaKind::Type(Type::Number(_)) => record(out, "number", Vec::new()),
        SchemaKind::Type(Type::Boolean(_)) => record(out, "boolean", Vec::new()),
        SchemaKind::Type(Type::Array(array)) => {
            record(out, "array", Vec::new());
            if let Some(items) = &array.items {
                let items = match items {
                    ReferenceOr::Item(item) => ReferenceOr::Item((**item).clone()),
                    ReferenceOr::Reference { reference } => ReferenceOr::Reference {
                        reference: reference.clone(),
                    },
                };
                flatten(spec, &items, &format!("{path}[]"), false, out, depth + 1);
            }
        }
        SchemaKind::Type(Type::Object(object)) => {
            record(out, "object", Vec::new());
            for (name, property) in &object.properties {
                let property = match property {
                    ReferenceOr::Item(item) => ReferenceOr::Item((**item).clone()),
                    ReferenceOr::Reference { reference } => ReferenceOr::Reference {
                        reference: reference.clone(),
                    },
                };
                let child = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                flatten(
                    spec,
                    &property,
                    &child,
                    object.required.contains(name),
                    out,
                    depth + 1,
                );
            }
        }
        SchemaKind::OneOf { one_of: list }
        | SchemaKind::AnyOf { any_of: list }
        | SchemaKind::AllOf { all_of: list } => {
            for branch in list {
                flatten(spec, branch, path, required, out, depth + 1);
            }
        }
        SchemaKind::Not { .. } => {}
        SchemaKind::Any(any) => {
            if let Some(kind) = &any.typ {
                record(out, kind, Vec::new());
            }
        }
    }
    if nullable && !path.is_empty() {
        out.entry(path.to_owned())
            .or_default()
            .types
            .insert("null".to_owned());
    }
}

fn compare_fields(
    operation: &str,
    theirs: &BTreeMap<String, Field>,
    mine: &BTreeMap<String, Field>,
    found: &mut Vec<SpecDrift>,
) {
    let mut push = |severity, field: &str, change: String| {
        found.push(SpecDrift {
            severity,
            operation: operation.to_owned(),
            field: field.to_owned(),
            change,
        });
    };
    for (path, their_field) in theirs {
        let Some(my_field) = mine.get(path) else {
            push(
                Severity::Actionable,
                path,
                "field missing from ours".to_owned(),
            );
            continue;
        };
        let their_types: BTreeSet<&String> = their_field
            .types
            .iter()
            .filter(|kind| *kind != "null")
            .collect();
        let my_types: BTreeSet<&String> = my_field
            .types
            .iter()
            .filter(|kind| *kind != "null")
            .collect();
        if their_types != my_types {
            push(
                Severity::Actionable,
                path,
                format!("type {their_types:?} upstream, {my_types:?} ours"),
            );
        }
        if their_field.types.contains("null") != my_field.types.contains("null") {
            push(
                Severity::Actionable,
                path,
                format!(
                    "nullable {} upstream, {} ours",
                    their_field.types.contains("null"),
                    my_field.types.contains("null")
                ),
            );
        }
        match (
            their_field.enumeration.is_empty(),
            my_field.enumeration.is_empty(),
        ) {
            (true, false) => push(
                Severity::Stricter,
                path,
                format!("enum {:?} only in ours", my_field.enumeration),
            ),
            (false, _) if their_field.enumeration != my_field.enumeration => push(
                Severity::Actionable,
                path,
                format!(
                    "enum {:?} upstream, {:?} ours",
                    their_field.enumeration, my_field.enumeration
                ),
            ),
            _ => {}
        }
        match (their_field.required, my_field.required) {
            (false, true) => push(Severity::Stricter, path, "required only in ours".to_owned()),
            (true, false) => push(
                Severity::Actionable,
                path,
                "required upstream, optional in ours".to_owned(),
            ),
            _ => {}
        }
    }
    for path in mine.keys().filter(|path| !theirs.contains_key(*path)) {
        push(Severity::OursOnly, path, "field only in ours".to_owned());
    }
}

/// The provider's spec and ours for each provider that publishes one (only OnlyFans does).
pub fn spec_drift() -> Result<Vec<SpecDrift>, mock_server::spec::SpecError> {
    let upstream = Spec::load(Document::OnlyFansUpstream)?;
    let ours = Spec::load(Document::OnlyFans)?;
    Ok(compare_specs(&upstream, &ours))
}

/// Keys of accepted differences, one per line (`#` comments allowed).
pub fn read_baseline(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// One response kind's comparison with its snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotDrift {
    /// The response kind, e.g. `status_completed`.
    pub kind: String,
    /// What differs; empty when it matches.
    pub differences: Vec<Difference>,
    /// Whether a snapshot exists for this kind.
    pub has_snapshot: bool,
}

/// Compares a run's normalised samples with the snapshots in `dir` (insta's
/// `it__snapshots__{provider}_{kind}.snap` files), or with the snapshots embedded in the binary
/// when `dir` is `None`: by shape everywhere, by value where `report.fixed` says the contract
/// fixes it.
pub fn compare_snapshots(
    report: &crate::Report,
    dir: Option<&std::path::Path>,
) -> Vec<SnapshotDrift> {
    let provider = report.provider;
    let no_fixed = BTreeSet::new();
    report
        .samples
        .iter()
        .map(|(kind, sample)| {
            let file_name = format!("it__snapshots__{provider}_{kind}.snap");
            let text = match dir {
                Some(dir) => std::fs::read_to_string(dir.join(&file_name)).ok(),
                None => embedded_snapshot(&file_name).map(str::to_owned),
            };
            let fixed = report.fixed.get(kind).unwrap_or(&no_fixed);
            match text.as_deref().and_then(read_snap) {
                Some(expected) => SnapshotDrift {
                    kind: kind.clone(),
                    differences: diff(&expected, sample, &|pointer| fixed.contains(pointer)),
                    has_snapshot: true,
                },
                None => SnapshotDrift {
                    kind: kind.clone(),
                    differences: Vec::new(),
                    has_snapshot: false,
                },
            }
        })
        .collect()
}

/// The committed snapshots, embedded so a copied binary compares with the same ones.
fn embedded_snapshot(file_name: &str) -> Option<&'static str> {
    macro_rules! snapshots {
        ($($name:literal),* $(,)?) => {
            &[$(($name, include_str!(concat!("../tests/it/snapshots/", $name)))),*]
        };
    }
    const SNAPSHOTS: &[(&str, &str)] = snapshots!(
        "it__snapshots__fansly_error_400.snap",
        "it__snapshots__fansly_error_401.snap",
        "it__snapshots__fansly_error_404.snap",
        "it__snapshots__fansly_status_active.snap",
        "it__snapshots__fansly_status_completed.snap",
        "it__snapshots__fansly_status_failed.snap",
        "it__snapshots__fansly_status_waiting.snap",
        "it__snapshots__fansly_upload_accepted.snap",
        "it__snapshots__onlyfans_error_401.snap",
        "it__snapshots__onlyfans_error_404.snap",
        "it__snapshots__onlyfans_error_422.snap",
        "it__snapshots__onlyfans_status_completed_cdn.snap",
        "it__snapshots__onlyfans_status_failed.snap",
        "it__snapshots__onlyfans_status_pending.snap",
        "it__snapshots__onlyfans_status_processing.snap",
        "it__snapshots__onlyfans_upload_async_accepted.snap",
        "it__snapshots__onlyfans_upload_sync_cdn.snap",
        "it__snapshots__onlyfans_upload_sync_vault.snap",
    );
    SNAPSHOTS
        .iter()
        .find(|(name, _)| *name == file_name)
        .map(|(_, text)| *text)
}
