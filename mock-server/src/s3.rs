//! OnlyFans' `sourceUrl`: an S3 presigned GET (Signature Version 4 in the query string), as the
//! provider's examples show it (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
//! `X-Amz-Expires=604800`, `X-Amz-SignedHeaders=host`, `X-Amz-Signature`), served by the mock's
//! CDN under a path-style bucket and checked as S3 checks one: the signature first (a changed
//! parameter, path or host is `SignatureDoesNotMatch`), then the expiry (`AccessDenied`, "Request
//! has expired"), on the mock's clock.
//!
//! The signing itself is rusty-s3's (`rusty_s3::signing::sign`): a URL is verified by signing the
//! same request again with the parameters it claims and comparing the signatures. The credentials
//! are derived from the server's signing key, so links survive a `--state-dir` restart.

use std::time::{Duration, SystemTime};

use hmac::Mac as _;

use crate::signing::SigningKey;

/// The bucket the provider's source uploads live in.
pub(crate) const BUCKET: &str = "of2transcoder";

/// Where the path-style bucket is served: `{origin}/cdn/onlyfans/s3/{BUCKET}/{key}`.
const ENDPOINT_PATH: &str = "/cdn/onlyfans/s3/";

/// The region the credential scope names.
const REGION: &str = "us-east-1";

/// The longest expiry S3 accepts on a presigned URL (7 days), which is also the provider's.
const MAX_EXPIRES: u64 = 604_800;

/// The one extra signed parameter the provider's URLs carry.
const CONTENT_SHA256: (&str, &str) = ("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD");

/// The query parameter the mock adds for sessions (see `http::SESSION_PARAM`); not signed, as
/// the mock appends it after signing so a client following the URL reaches the session's mock.
const UNSIGNED_PARAMS: &[&str] = &[crate::http::SESSION_PARAM];

/// Why a presigned URL was refused: S3's error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Denied {
    /// A required parameter is missing or malformed.
    Malformed,
    /// The signature does not match what the parameters sign.
    SignatureDoesNotMatch,
    /// Signed correctly, but past `X-Amz-Date + X-Amz-Expires`.
    Expired {
        /// When it expired, Unix seconds.
        expires_at: u64,
    },
}

impl Denied {
    /// S3's `<Code>`.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::Malformed => "AuthorizationQueryParametersError",
            Self::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            Self::Expired { .. } => "AccessDenied",
        }
    }

    /// S3's `<Message>`.
    pub(crate) fn message(&self) -> &'static str {
        match self {
            Self::Malformed => {
                "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
            }
            Self::SignatureDoesNotMatch => {
                "The request signature we calculated does not match the signature you provided. Check your key and signing method."
            }
            Self::Expired { .. } => "Request has expired",
        }
    }

    /// What `X-Mock-Denied-Reason` says, as for CloudFront links.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::SignatureDoesNotMatch => "bad-signature",
            Self::Expired { .. } => "expired",
        }
    }
}

/// The access key id, secret and session token the mock signs with, derived from `key`.
struct Credentials {
    key_id: String,
    secret: String,
    token: String,
}

impl Credentials {
    fn of(key: &SigningKey) -> Self {
        let derive = |label: &str| {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.secret())
                .expect("HMAC takes any key length");
            mac.update(b"mock-server s3 ");
            mac.update(label.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        };
        Self {
            key_id: format!("AKIA{}", derive("key id")[..16].to_ascii_uppercase()),
            secret: derive("secret"),
            token: derive("session token"),
        }
    }
}

/// Whether `path` (a request path) is under the S3 endpoint.
pub(crate) fn is_s3_path(path: &str) -> bool {
    path.starts_with(ENDPOINT_PATH)
}

/// The path of `object` (already percent-encoded) in the bucket.
pub(crate) fn object_path(object: &str) -> String {
    format!("{ENDPOINT_PATH}{BUCKET}/{object}")
}

fn timestamp(at: SystemTime) -> jiff::Timestamp {
    let secs = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    jiff::Timestamp::from_second(i64::try_from(secs).unwrap_or(i64::MAX))
        .unwrap_or(jiff::Timestamp::MAX)
}

/// Signs a GET of `origin` + `path` made at `signed_at`, valid for `expires_secs`.
fn sign(
    origin: &str,
    path: &str,
    signed_at: jiff::Timestamp,
    expires_secs: u64,
    key: &SigningKey,
) -> Option<url::Url> {
    let url = url::Url::parse(&format!("{origin}{path}")).ok()?;
    url.host_str()?;
    let credentials = Credentials::of(key);
    Some(rusty_s3::signing::sign(
        &signed_at,
        rusty_s3::Method::Get,
        url,
        &credentials.key_id,
        &credentials.secret,
        Some(&credentials.token),
        REGION,
        expires_secs,
        std::iter::once(CONTENT_SHA256),
        std::iter::empty(),
    ))
}

/// A presigned URL for `path` on `origin` that stops working `ttl` after `from`: signed at
/// `from + ttl - X-Amz-Expires`, with `X-Amz-Expires` the ttl (at least 1 s, at most 7 days, as
/// S3 allows), so a scenario's zero ttl gives a link expired on arrival.
pub(crate) fn presign(
    origin: &str,
    path: &str,
    from: SystemTime,
    ttl: Duration,
    key: &SigningKey,
) -> Option<String> {
    let expires_secs = ttl.as_secs().clamp(1, MAX_EXPIRES);
    let ends = crate::clock::saturating_add(from, ttl);
    let signed_at = ends
        .checked_sub(Duration::from_secs(expires_secs))
        .unwrap_or(std::time::UNIX_EPOCH);
    sign(origin, path, timestamp(signed_at), expires_secs, key).map(String::from)
}

/// `X-Amz-Date` (`20250521T151119Z`) as a timestamp.
fn parse_amz_date(text: &str) -> Option<jiff::Timestamp> {
    jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", text)
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|zoned| zoned.timestamp())
}

/// The expiry a presigned query claims (`X-Amz-Date` + `X-Amz-Expires`), Unix seconds.
pub(crate) fn claimed_expiry(query: &str) -> Option<u64> {
    let (date, expires) = amz_params(query);
    let signed_at = parse_amz_date(&date?)?.as_second();
    u64::try_from(signed_at)
        .ok()?
        .checked_add(expires?.parse().ok()?)
}

fn amz_params(query: &str) -> (Option<String>, Option<String>) {
    let (mut date, mut expires) = (None, None);
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*name {
            "X-Amz-Date" => date = Some(value.into_owned()),
            "X-Amz-Expires" => expires = Some(value.into_owned()),
            _ => {}
        }
    }
    (date, expires)
}

/// Checks a presigned GET of `path` with `query`, as it reached `origin`, at `now` (Unix seconds).
pub(crate) fn verify(
    origin: &str,
    path: &str,
    query: &str,
    now: u64,
    key: &SigningKey,
) -> Result<(), Denied> {
    let mut signature = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if name == "X-Amz-Signature" {
            signature = Some(value.into_owned());
        }
    }
    let signature = signature.ok_or(Denied::Malformed)?;
    let (date, expires) = amz_params(query);
    let signed_at = parse_amz_date(&date.ok_or(Denied::Malformed)?).ok_or(Denied::Malformed)?;
    let expires_secs: u64 = expires
        .ok_or(Denied::Malformed)?
        .parse()
        .map_err(|_| Denied::Malformed)?;
    if !(1..=MAX_EXPIRES).contains(&expires_secs) {
        return Err(Denied::Malformed);
    }
    let expected = sign(origin, path, signed_at, expires_secs, key).ok_or(Denied::Malformed)?;
    // Every signed parameter must be as the mock would have written it: signing again and
    // comparing whole queries (but the unsigned session parameter) catches a changed credential,
    // token, algorithm or signed-headers list as well as a changed signature.
    let signed: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| !UNSIGNED_PARAMS.contains(&&**name))
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    let mut wanted: Vec<(String, String)> = expected
        .query_pairs()
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    let mut given = signed;
    given.sort();
    wanted.sort();
    let matches = given.len() == wanted.len()
        && given.iter().zip(&wanted).all(|(a, b)| {
            a.0 == b.0
                && (a.0 != "X-Amz-Signature" || constant_time_eq(a.1.as_bytes(), b.1.as_bytes()))
                && (a.0 == "X-Amz-Signature" || a.1 == b.1)
        });
    if !matches || signature.is_empty() {
        return Err(Denied::SignatureDoesNotMatch);
    }
    let expires_at = u64::try_from(signed_at.as_second())
        .unwrap_or(0)
        .saturating_add(expires_secs);
    if now >= expires_at {
        return Err(Denied::Expired { expires_at });
    }
    Ok(())
}

/// Equal bytes, compared in time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::new([7; 32], "KTEST")
    }

    const ORIGIN: &str = "http://127.0.0.1:8765";

    fn at(secs: u64) -> SystemTime {
        std::time::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn a_presigned_url_has_the_providers_parameters_and_verifies_until_it_expires() {
        let path = object_path("upload/9f1c2e44-aaaa/000000000001/photo.jpg");
        let url = presign(
            ORIGIN,
            &path,
            at(1_750_000_000),
            Duration::from_secs(MAX_EXPIRES),
            &key(),
        )
        .unwrap();
        let (base, query) = url.split_once('?').unwrap();
        assert_eq!(base, format!("{ORIGIN}{path}"));
        for param in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Content-Sha256=UNSIGNED-PAYLOAD",
            "X-Amz-Expires=604800",
            "X-Amz-SignedHeaders=host",
            "X-Amz-Date=20250615T150640Z",
        ] {
            assert!(query.contains(param), "{param} in {query}");
        }
        assert!(query.contains("X-Amz-Credential=AKIA"), "{query}");
        assert!(query.contains("X-Amz-Security-Token="), "{query}");
        assert_eq!(claimed_expiry(query), Some(1_750_000_000 + MAX_EXPIRES));
        assert_eq!(verify(ORIGIN, &path, query, 1_750_000_000, &key()), Ok(()));
        let with_session = format!("{query}&mock_session=qa");
        assert_eq!(
            verify(ORIGIN, &path, &with_session, 1_750_000_000, &key()),
            Ok(())
        );
        assert_eq!(
            verify(ORIGIN, &path, query, 1_750_000_000 + MAX_EXPIRES, &key()),
            Err(Denied::Expired {
                expires_at: 1_750_000_000 + MAX_EXPIRES
            })
        );
    }

    #[test]
    fn any_change_is_a_signature_mismatch_and_a_missing_parameter_malformed() {
        let path = object_path("upload/u/000000000001/photo.jpg");
        let url = presign(
            ORIGIN,
            &path,
            at(1_750_000_000),
            Duration::from_secs(3600),
            &key(),
        )
        .unwrap();
        let query = url.split_once('?').unwrap().1;
        let now = 1_750_000_000;
        let other_path = object_path("upload/u/000000000002/photo.jpg");
        assert_eq!(
            verify(ORIGIN, &other_path, query, now, &key()),
            Err(Denied::SignatureDoesNotMatch)
        );
        assert_eq!(
            verify("http://localhost:8765", &path, query, now, &key()),
            Err(Denied::SignatureDoesNotMatch)
        );
        let longer = query.replace("X-Amz-Expires=3600", "X-Amz-Expires=7200");
        assert_eq!(
            verify(ORIGIN, &path, &longer, now, &key()),
            Err(Denied::SignatureDoesNotMatch)
        );
        let other_key = SigningKey::new([8; 32], "KTEST");
        assert_eq!(
            verify(ORIGIN, &path, query, now, &other_key),
            Err(Denied::SignatureDoesNotMatch)
        );
        let unsigned: String = query
            .split('&')
            .filter(|pair| !pair.starts_with("X-Amz-Signature="))
            .collect::<Vec<_>>()
            .join("&");
        assert_eq!(
            verify(ORIGIN, &path, &unsigned, now, &key()),
            Err(Denied::Malformed)
        );
        let extra = format!("{query}&response-content-type=text/html");
        assert_eq!(
            verify(ORIGIN, &path, &extra, now, &key()),
            Err(Denied::SignatureDoesNotMatch)
        );
    }

    #[test]
    fn a_zero_ttl_gives_a_link_expired_on_arrival() {
        let path = object_path("upload/u/000000000001/photo.jpg");
        let url = presign(ORIGIN, &path, at(1_750_000_000), Duration::ZERO, &key()).unwrap();
        let query = url.split_once('?').unwrap().1;
        assert_eq!(
            verify(ORIGIN, &path, query, 1_750_000_000, &key()),
            Err(Denied::Expired {
                expires_at: 1_750_000_000
            })
        );
    }
}
