//! Integration tests: every behaviour over real HTTP against an in-process server.
#![allow(clippy::unwrap_used)] // allow-unwrap-in-tests does not cover tests/ yet (rust-clippy#13981).

mod admin;
mod bad_input;
mod browser;
mod cdn;
mod cli;
mod date;
mod events;
mod fansly;
mod hostile;
mod hostile_matrix;
mod journal;
mod onlyfans;
mod record;
mod scenarios;
mod sessions;
mod state;
mod support;
mod webhooks;
