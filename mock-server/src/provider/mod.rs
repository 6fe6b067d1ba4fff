//! The two providers' endpoints: each submodule holds the routes and handlers (`mod.rs`), the serde
//! types whose field names are the contract (`wire.rs`), and the error envelope (`error.rs`).
//!
//! Both follow one shape on purpose, so a newcomer who has read one has read both. There is no
//! trait over them: they share the job engine, the store and the signer, and differ in every byte
//! they put on the wire.

pub(crate) mod fansly;
pub(crate) mod onlyfans;

/// Which API a job or request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    /// apifansly's Fansly API.
    Fansly,
    /// OnlyFansAPI.
    OnlyFans,
}

impl Provider {
    /// The lowercase name used in CDN paths, the admin API and logs.
    pub fn slug(self) -> &'static str {
        match self {
            Provider::Fansly => "fansly",
            Provider::OnlyFans => "onlyfans",
        }
    }
}

/// Whether `presented` is an accepted API key: any non-empty key when none are configured.
pub(crate) fn is_key_accepted(accepted: &[String], presented: Option<&str>) -> bool {
    match presented {
        None | Some("") => false,
        Some(key) => accepted.is_empty() || accepted.iter().any(|accepted| accepted == key),
    }
}

/// A log-safe form of an API key: its first four characters.
pub(crate) fn redact_key(key: &str) -> String {
    let shown: String = key.chars().take(4).collect();
    format!("{shown}…")
}
