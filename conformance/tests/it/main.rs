//! Integration tests for the conformance crate: the checks against the in-process mock, each
//! check against a mock made to break it, properties, snapshots, drift and client grading.
#![allow(clippy::unwrap_used)]

mod cli;
mod client;
mod drift;
mod mock;
mod negative;
mod parity;
mod props;
mod receiver;
mod snapshots;
mod support;
mod verdicts;
