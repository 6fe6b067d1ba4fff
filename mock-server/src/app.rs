//! The handles every request handler needs, built once per server.

use std::path::PathBuf;

use crate::clock::Clock;
use crate::fixture::Fixtures;
use crate::signing::SigningKey;
use crate::store::Store;
use crate::upload::Limits;

/// Shared, read-mostly server state; the only mutable part is the [`Store`].
#[derive(Debug)]
pub(crate) struct App {
    /// The only source of time.
    pub(crate) clock: Clock,
    /// Provider constants and default lifecycles.
    pub(crate) fixtures: Fixtures,
    /// Signs and verifies CDN links.
    pub(crate) key: SigningKey,
    /// Jobs, media, rate windows, credits.
    pub(crate) store: Store,
    /// Where uploads are written.
    pub(crate) storage_dir: PathBuf,
    /// Upload size limits.
    pub(crate) limits: Limits,
    /// Accepted API keys; empty accepts any non-empty key.
    pub(crate) api_keys: Vec<String>,
    /// The origin put in links and `polling_url`; the request's `Host` when unset.
    pub(crate) public_url: Option<String>,
    /// The directory `file://` URLs may read from.
    pub(crate) media_root: Option<PathBuf>,
}
