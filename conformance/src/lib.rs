//! Lifecycle-aware conformance checks for the Fansly and OnlyFans upload and upload-status
//! endpoints, run against the in-process mock, a live API, or a client program under test.
//!
//! This crate is a placeholder until its own issue lands: the checks, reports and CLI are not
//! written yet. What it will build on already exists in `mock-server`: the embedded specs and
//! response validation (`mock_server::spec`), the signed-link verifier (`mock_server::signing`),
//! and the in-process server with a manual clock (`mock_server::MockServer`).

pub use mock_server::spec;
