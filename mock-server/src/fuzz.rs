//! Fuzz targets as properties: the parsers and verifiers that take outside input never panic,
//! whatever they are fed. Cargo-fuzz needs a nightly toolchain this project does not have, so
//! these run on stable through proptest; a long run is one command (README, "Fuzzing"):
//! `PROPTEST_CASES=200000 cargo test --release -p mock-server fuzz_`.
//!
//! Each target mixes random input with mutations of a valid document, so the cases reach past
//! the first syntax check.

use std::path::Path;

use proptest::prelude::*;

use crate::fixture::Fixtures;
use crate::scenario::{BUILT_IN, Rules, Scenario};
use crate::signing::{self, Form, SigningKey};
use crate::upload::{self, Limits};

/// `text` with a few bytes replaced, inserted or removed, kept as (lossy) UTF-8.
fn mutated(text: &'static str) -> impl Strategy<Value = String> {
    proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8).prop_map(move |edits| {
        let mut bytes = text.as_bytes().to_vec();
        for (at, byte, kind) in edits {
            let at = at % (bytes.len() + 1);
            match kind {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => {}
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn yaml_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,200}",
        "[a-z_:{}\\[\\] \\n,0-9.\"-]{0,300}",
        proptest::sample::select(BUILT_IN.iter().map(|(_, text)| *text).collect::<Vec<_>>())
            .prop_flat_map(mutated),
        mutated(include_str!("../../fixtures/defaults.yaml")),
    ]
}

proptest! {
    #[test]
    fn fuzz_scenario_parser_never_panics(text in yaml_like()) {
        let _ = Scenario::parse("fuzz", &text, Path::new("fuzz.yaml"));
    }

    #[test]
    fn fuzz_fixture_parser_never_panics(text in yaml_like()) {
        let _ = Fixtures::parse(&text, Path::new("defaults.yaml"));
    }

    #[test]
    fn fuzz_rules_parser_never_panics(text in yaml_like()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.yaml");
        std::fs::write(&path, &text).unwrap();
        let _ = Rules::from_file(&path);
    }

    #[test]
    fn fuzz_signed_url_verifier_never_panics_or_accepts_a_forgery(
        path in "/cdn/[a-z/.0-9]{0,40}",
        query in prop_oneof![
            "\\PC{0,200}",
            "(Expires|Policy|Signature|Key-Pair-Id)=[A-Za-z0-9~_%=-]{0,80}(&(Expires|Policy|Signature|Key-Pair-Id)=[A-Za-z0-9~_%=-]{0,80}){0,4}",
        ],
        now in any::<u64>(),
    ) {
        let key = SigningKey::new([9; 32], "KFUZZ");
        let _ = signing::claimed_expiry(&query);
        // Random text never carries a valid signature by chance.
        prop_assert!(signing::verify(&path, &query, now, &key).is_err());
    }

    #[test]
    fn fuzz_signed_url_verifier_refuses_every_mutation_of_a_real_link(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        custom in any::<bool>(),
    ) {
        let key = SigningKey::new([9; 32], "KFUZZ");
        let form = if custom { Form::Custom } else { Form::Canned };
        let query = signing::sign("/cdn/fansly/1.jpg", 2_000_000_000, &key, form);
        let mut bytes = query.clone().into_bytes();
        for (at, byte) in edits {
            let at = at % bytes.len();
            bytes[at] = byte;
        }
        let mutated = String::from_utf8_lossy(&bytes).into_owned();
        let verdict = signing::verify("/cdn/fansly/1.jpg", &mutated, 1_000_000_000, &key);
        // A mutation may change nothing the signature covers (a byte replaced by itself).
        prop_assert!(verdict.is_err() || mutated == query || equivalent(&mutated, &query));
    }

    #[test]
    fn fuzz_multipart_front_never_panics_and_keeps_file_bytes_intact(
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..2048),
            (proptest::collection::vec(any::<u8>(), 0..512), 0usize..600)
                .prop_map(|(file, cut)| {
                    let mut body = form_with(&file);
                    body.truncate(cut.min(body.len()));
                    body
                }),
            proptest::collection::vec(any::<u8>(), 0..512).prop_map(|file| form_with(&file)),
        ],
        chunk in 1usize..64,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_file_bytes: 1 << 20,
            max_field_bytes: 1 << 16,
            max_parts: 64,
            body_timeout: std::time::Duration::from_secs(5),
            keep_files: false,
            quota: upload::Quota::new(u64::MAX),
        };
        let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = body
            .chunks(chunk)
            .map(|piece| Ok(bytes::Bytes::copy_from_slice(piece)))
            .collect();
        let stream = futures_util::stream::iter(chunks);
        let result = runtime.block_on(upload::read_form(
            stream,
            "FuzzBoundary".to_owned(),
            "file",
            limits,
            upload::Sink::Disk(dir.path()),
        ));
        if let (Ok(form), Some(file)) = (&result, expected_file(&body)) {
            let stored = form.file.as_ref().map(|received| std::fs::read(&received.path).unwrap());
            prop_assert_eq!(stored, Some(file));
        }
    }
}

/// Two query strings that differ only where percent-encoding makes them mean the same.
fn equivalent(one: &str, other: &str) -> bool {
    let decode = |query: &str| -> Vec<(String, String)> {
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    };
    decode(one) == decode(other)
}

fn form_with(file: &[u8]) -> Vec<u8> {
    let mut body = b"--FuzzBoundary\r\nContent-Disposition: form-data; name=\"async\"\r\n\r\ntrue\r\n--FuzzBoundary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.bin\"\r\n\r\n".to_vec();
    body.extend_from_slice(file);
    body.extend_from_slice(b"\r\n--FuzzBoundary--\r\n");
    body
}

/// The file bytes of a body built by `form_with`, if it is whole and unambiguous.
fn expected_file(body: &[u8]) -> Option<Vec<u8>> {
    let head = form_with(&[]);
    let prefix = &head[..head.len() - b"\r\n--FuzzBoundary--\r\n".len()];
    let rest = body.strip_prefix(prefix)?;
    let file = rest.strip_suffix(b"\r\n--FuzzBoundary--\r\n")?;
    // A file that itself contains the delimiter ends the part early; multer is right to split it.
    let contains_delimiter = file
        .windows(16)
        .any(|window| window == b"\r\n--FuzzBoundary");
    (!contains_delimiter).then(|| file.to_vec())
}
