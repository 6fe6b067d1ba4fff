//! CloudFront-style signed links, with a keyed MAC in place of RSA.
//!
//! Both providers hand out CloudFront links: Fansly with a *custom* policy (`Policy`, `Key-Pair-Id`,
//! `Signature`, expiry inside the base64 policy as `DateLessThan.AWS:EpochTime`), OnlyFans with a
//! *canned* one (`Expires`, `Signature`, `Key-Pair-Id`). We keep their query shapes and CloudFront's
//! URL-safe base64 alphabet exactly, so a client that parses the expiry out of a link works
//! unchanged; the signature is HMAC-SHA256 over the policy JSON instead of RSA-SHA1, because no
//! client can verify CloudFront's signature anyway and a MAC needs no key pair.
//!
//! The policy's `Resource` is the link's path, not its full URL, so a link works whichever host
//! name the client used to reach the mock (`localhost` or `127.0.0.1`).
//!
//! This module knows nothing of HTTP or providers: it maps (path, expiry, key) to a query string
//! and back.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Which CloudFront signing form a link uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `Expires`, `Signature`, `Key-Pair-Id` (OnlyFans).
    Canned,
    /// `Policy`, `Signature`, `Key-Pair-Id` (Fansly).
    Custom,
}

/// The secret behind every link a server signs.
///
/// Its `Debug` form hides the secret, so it can sit in a config struct that is logged.
#[derive(Clone)]
pub struct SigningKey {
    secret: [u8; 32],
    key_pair_id: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("secret", &"<redacted>")
            .field("key_pair_id", &self.key_pair_id)
            .finish()
    }
}

impl SigningKey {
    /// A key from a fixed secret, so links stay valid across restarts and runs are reproducible.
    pub fn new(secret: [u8; 32], key_pair_id: impl Into<String>) -> Self {
        Self {
            secret,
            key_pair_id: key_pair_id.into(),
        }
    }

    /// A fresh random key, so links signed by one run cannot be replayed against another.
    pub fn random(key_pair_id: impl Into<String>) -> Result<Self, getrandom::Error> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)?;
        Ok(Self::new(secret, key_pair_id))
    }

    /// The secret, for `--state-dir` to keep links valid across restarts.
    pub(crate) fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The public `Key-Pair-Id` carried in every link.
    pub fn key_pair_id(&self) -> &str {
        &self.key_pair_id
    }

    fn mac(&self, policy: &str) -> HmacSha256 {
        let mut mac =
            HmacSha256::new_from_slice(&self.secret).expect("HMAC accepts keys of any length");
        mac.update(policy.as_bytes());
        mac
    }
}

/// Why a link was refused. CloudFront answers all of these with 403.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The link carries no `Key-Pair-Id`.
    #[error("missing Key-Pair-Id")]
    MissingKeyPairId,
    /// The link names a key this server does not sign with.
    #[error("unknown Key-Pair-Id {0:?}")]
    UnknownKeyPairId(String),
    /// Neither `Policy` nor `Expires` is present.
    #[error("missing Policy or Expires")]
    MissingPolicy,
    /// The link carries no `Signature`.
    #[error("missing Signature")]
    MissingSignature,
    /// `Policy` is not base64 of a CloudFront policy, or `Expires` is not a number.
    #[error("malformed policy")]
    MalformedPolicy,
    /// The policy was signed for another path.
    #[error("policy resource {resource:?} does not cover {path:?}")]
    WrongResource {
        /// The resource in the policy.
        resource: String,
        /// The path requested.
        path: String,
    },
    /// The signature does not match the policy: the link was altered.
    #[error("signature does not match")]
    BadSignature,
    /// The link was genuine but its time is up.
    #[error("link expired at {expires_at}, now {now}")]
    Expired {
        /// Unix seconds the link was valid until (exclusive).
        expires_at: u64,
        /// Unix seconds at the check.
        now: u64,
    },
}

impl SignatureError {
    /// A short machine-readable reason, for logs and the mock's diagnostic header.
    pub fn reason(&self) -> &'static str {
        match self {
            SignatureError::MissingKeyPairId => "missing-key-pair-id",
            SignatureError::UnknownKeyPairId(_) => "unknown-key-pair-id",
            SignatureError::MissingPolicy => "missing-policy",
            SignatureError::MissingSignature => "missing-signature",
            SignatureError::MalformedPolicy => "malformed-policy",
            SignatureError::WrongResource { .. } => "wrong-resource",
            SignatureError::BadSignature => "bad-signature",
            SignatureError::Expired { .. } => "expired",
        }
    }
}

/// The policy CloudFront signs: one statement, one resource, one expiry.
fn policy_json(resource: &str, expires_at: u64) -> String {
    let resource = serde_json::Value::from(resource);
    format!(
        r#"{{"Statement":[{{"Resource":{resource},"Condition":{{"DateLessThan":{{"AWS:EpochTime":{expires_at}}}}}}}]}}"#
    )
}

/// CloudFront's URL-safe base64: `+` → `-`, `=` → `_`, `/` → `~`.
fn cloudfront_b64(bytes: &[u8]) -> String {
    STANDARD
        .encode(bytes)
        .chars()
        .map(|c| match c {
            '+' => '-',
            '=' => '_',
            '/' => '~',
            other => other,
        })
        .collect()
}

/// Decodes CloudFront's base64; the standard alphabet's `+`, `=` and `/` are refused, so one value
/// has one spelling (a `=` standing in for a `_` once verified: found by the fuzz target).
fn cloudfront_unb64(text: &str) -> Option<Vec<u8>> {
    if text.contains(['+', '=', '/']) {
        return None;
    }
    let standard: String = text
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '=',
            '~' => '/',
            other => other,
        })
        .collect();
    STANDARD.decode(standard).ok()
}

/// The query string (without `?`) that makes `path` valid until `expires_at` (Unix seconds, exclusive).
pub fn sign(path: &str, expires_at: u64, key: &SigningKey, form: Form) -> String {
    let policy = policy_json(path, expires_at);
    let signature = cloudfront_b64(&key.mac(&policy).finalize().into_bytes());
    let key_pair_id = &key.key_pair_id;
    match form {
        Form::Canned => {
            format!("Expires={expires_at}&Signature={signature}&Key-Pair-Id={key_pair_id}")
        }
        Form::Custom => {
            let policy = cloudfront_b64(policy.as_bytes());
            format!("Policy={policy}&Key-Pair-Id={key_pair_id}&Signature={signature}")
        }
    }
}

/// Checks that `query` signs `path` with `key` and has not expired at `now` (Unix seconds).
///
/// The signature is checked before the expiry, so an altered expiry reads as tampering, not expiry.
pub fn verify(path: &str, query: &str, now: u64, key: &SigningKey) -> Result<(), SignatureError> {
    let mut policy_param = None;
    let mut expires_param = None;
    let mut signature_param = None;
    let mut key_pair_param = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match &*name {
            "Policy" => &mut policy_param,
            "Expires" => &mut expires_param,
            "Signature" => &mut signature_param,
            "Key-Pair-Id" => &mut key_pair_param,
            _ => continue,
        };
        slot.get_or_insert(value.into_owned());
    }

    let key_pair_id = key_pair_param.ok_or(SignatureError::MissingKeyPairId)?;
    if key_pair_id != key.key_pair_id {
        return Err(SignatureError::UnknownKeyPairId(key_pair_id));
    }
    let (policy, expires_at) = match (policy_param, expires_param) {
        (Some(encoded), _) => custom_policy(&encoded, path)?,
        (None, Some(expires)) => {
            let expires_at = expires
                .parse::<u64>()
                .map_err(|_| SignatureError::MalformedPolicy)?;
            (policy_json(path, expires_at), expires_at)
        }
        (None, None) => return Err(SignatureError::MissingPolicy),
    };
    let signature = signature_param.ok_or(SignatureError::MissingSignature)?;
    let signature = cloudfront_unb64(&signature).ok_or(SignatureError::BadSignature)?;
    key.mac(&policy)
        .verify_slice(&signature)
        .map_err(|_| SignatureError::BadSignature)?;
    if now >= expires_at {
        return Err(SignatureError::Expired { expires_at, now });
    }
    Ok(())
}

/// Decodes a custom policy and returns it with its expiry, refusing one written for another path.
fn custom_policy(encoded: &str, path: &str) -> Result<(String, u64), SignatureError> {
    let bytes = cloudfront_unb64(encoded).ok_or(SignatureError::MalformedPolicy)?;
    let policy = String::from_utf8(bytes).map_err(|_| SignatureError::MalformedPolicy)?;
    let parsed: serde_json::Value =
        serde_json::from_str(&policy).map_err(|_| SignatureError::MalformedPolicy)?;
    let statement = &parsed["Statement"][0];
    let resource = statement["Resource"]
        .as_str()
        .ok_or(SignatureError::MalformedPolicy)?;
    let expires_at = statement["Condition"]["DateLessThan"]["AWS:EpochTime"]
        .as_u64()
        .ok_or(SignatureError::MalformedPolicy)?;
    if resource != path {
        return Err(SignatureError::WrongResource {
            resource: resource.to_owned(),
            path: path.to_owned(),
        });
    }
    Ok((policy, expires_at))
}

/// The expiry (Unix seconds) a signed query claims, without checking it; for tests and reports.
/// Knows CloudFront's (`Expires`, `Policy`) and S3's presigned form (`X-Amz-Date` +
/// `X-Amz-Expires`, OnlyFans' `sourceUrl`).
pub fn claimed_expiry(query: &str) -> Option<u64> {
    if let Some(expiry) = crate::s3::claimed_expiry(query) {
        return Some(expiry);
    }
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*name {
            "Expires" => return value.parse().ok(),
            "Policy" => {
                let bytes = cloudfront_unb64(&value)?;
                let parsed: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
                return parsed["Statement"][0]["Condition"]["DateLessThan"]["AWS:EpochTime"]
                    .as_u64();
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::new([7; 32], "KMOCK")
    }

    #[test]
    fn both_forms_verify_until_expiry() {
        for form in [Form::Canned, Form::Custom] {
            let query = sign("/cdn/a.jpg", 1_000, &key(), form);
            assert_eq!(verify("/cdn/a.jpg", &query, 999, &key()), Ok(()));
            assert_eq!(
                verify("/cdn/a.jpg", &query, 1_000, &key()),
                Err(SignatureError::Expired {
                    expires_at: 1_000,
                    now: 1_000
                })
            );
            assert_eq!(claimed_expiry(&query), Some(1_000));
        }
    }

    #[test]
    fn custom_policy_carries_the_cloudfront_epoch_time() {
        let query = sign("/x", 42, &key(), Form::Custom);
        let policy = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("Policy="))
            .unwrap();
        let json = String::from_utf8(cloudfront_unb64(policy).unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"Statement":[{"Resource":"/x","Condition":{"DateLessThan":{"AWS:EpochTime":42}}}]}"#
        );
        assert!(!policy.contains(['+', '/', '=']));
    }

    #[test]
    fn another_path_or_key_is_refused() {
        let query = sign("/a", 100, &key(), Form::Canned);
        assert_eq!(
            verify("/b", &query, 1, &key()),
            Err(SignatureError::BadSignature)
        );
        let other = SigningKey::new([8; 32], "KMOCK");
        assert_eq!(
            verify("/a", &query, 1, &other),
            Err(SignatureError::BadSignature)
        );
        let custom = sign("/a", 100, &key(), Form::Custom);
        assert!(matches!(
            verify("/b", &custom, 1, &key()),
            Err(SignatureError::WrongResource { .. })
        ));
    }

    #[test]
    fn standard_base64_characters_are_not_cloudfront_spellings() {
        // Found by `fuzz_signed_url_verifier_refuses_every_mutation_of_a_real_link`: a `_`
        // padding character replaced by `=` decoded to the same bytes and verified.
        for form in [Form::Canned, Form::Custom] {
            let query = sign("/cdn/fansly/1.jpg", 2_000, &key(), form);
            assert!(query.contains('_') || query.contains('~') || query.contains('-'));
            for (cloudfront, standard) in [('_', "="), ('~', "/"), ('-', "+")] {
                let Some(at) = query.rfind(cloudfront) else {
                    continue;
                };
                let mut respelled = query.clone();
                respelled.replace_range(at..at + 1, standard);
                assert!(
                    verify("/cdn/fansly/1.jpg", &respelled, 1_000, &key()).is_err(),
                    "{respelled}"
                );
            }
        }
    }

    #[test]
    fn a_pushed_back_expiry_reads_as_tampering() {
        let query = sign("/a", 100, &key(), Form::Canned).replace("Expires=100", "Expires=999");
        assert_eq!(
            verify("/a", &query, 500, &key()),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn unsigned_links_name_what_is_missing() {
        assert_eq!(
            verify("/a", "", 1, &key()),
            Err(SignatureError::MissingKeyPairId)
        );
        assert_eq!(
            verify("/a", "Key-Pair-Id=KMOCK", 1, &key()),
            Err(SignatureError::MissingPolicy)
        );
        assert_eq!(
            verify("/a", "Key-Pair-Id=KMOCK&Expires=5", 1, &key()),
            Err(SignatureError::MissingSignature)
        );
        assert_eq!(
            verify("/a", "Key-Pair-Id=OTHER&Expires=5", 1, &key()),
            Err(SignatureError::UnknownKeyPairId("OTHER".into()))
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn a_signed_link_verifies_exactly_until_it_expires(
            path in "/[a-z0-9/._-]{1,60}",
            expires_at in 0u64..4_000_000_000,
            now in 0u64..4_000_000_000,
            custom in proptest::bool::ANY,
        ) {
            let form = if custom { Form::Custom } else { Form::Canned };
            let query = sign(&path, expires_at, &key(), form);
            let verdict = verify(&path, &query, now, &key());
            if now < expires_at {
                proptest::prop_assert_eq!(verdict, Ok(()));
            } else {
                proptest::prop_assert_eq!(verdict, Err(SignatureError::Expired { expires_at, now }));
            }
        }

        #[test]
        fn any_flipped_byte_breaks_the_link(
            path in "/[a-z0-9/._-]{1,40}",
            custom in proptest::bool::ANY,
            idx_seed in proptest::num::usize::ANY,
            flip in 1u8..=255,
        ) {
            let form = if custom { Form::Custom } else { Form::Canned };
            let query = sign(&path, 2_000_000_000, &key(), form);
            let mut bytes = query.into_bytes();
            let idx = idx_seed % bytes.len();
            bytes[idx] ^= flip;
            let tampered = String::from_utf8_lossy(&bytes).into_owned();
            proptest::prop_assert!(verify(&path, &tampered, 1, &key()).is_err(), "{}", tampered);
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let shown = format!("{:?}", key());
        assert!(shown.contains("redacted"));
        assert!(!shown.contains('7'));
    }
}
