//! Signed CDN links: they serve the uploaded bytes, refuse tampering, and expire on time.

use mock_server::Provider;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::check;
use crate::run::{Runner, Sample};

/// Links to the original file and to derived ones (variants, thumbnails) in a media object.
pub(crate) fn links_of(provider: Provider, media: &Value) -> (Vec<String>, Vec<String>) {
    let mut originals = Vec::new();
    let mut derived = Vec::new();
    let strings = |value: &Value, into: &mut Vec<String>| {
        if let Some(url) = value.as_str() {
            into.push(url.to_owned());
        }
    };
    match provider {
        Provider::Fansly => {
            for account_media in media["accountMedia"].as_array().into_iter().flatten() {
                let inner = &account_media["media"];
                for location in inner["locations"].as_array().into_iter().flatten() {
                    strings(&location["location"], &mut originals);
                }
                for variant in inner["variants"].as_array().into_iter().flatten() {
                    for location in variant["locations"].as_array().into_iter().flatten() {
                        strings(&location["location"], &mut derived);
                    }
                }
            }
        }
        Provider::OnlyFans => {
            strings(&media["sourceUrl"], &mut originals);
            strings(&media["files"]["full"]["url"], &mut originals);
            for thumb in media["thumbs"].as_array().into_iter().flatten() {
                strings(&thumb["url"], &mut derived);
            }
            for name in ["thumb", "preview", "squarePreview"] {
                strings(&media["files"][name]["url"], &mut derived);
            }
        }
    }
    (originals, derived)
}

/// All three link checks over every completed upload of the run.
pub(crate) async fn links(runner: &mut Runner<'_>) {
    let completed = runner.completed.clone();
    if completed.is_empty() {
        for check in [
            check::CDN_SERVES_UPLOADED_BYTES,
            check::CDN_REJECTS_TAMPERING,
            check::CDN_LINKS_EXPIRE,
        ] {
            runner
                .findings
                .skip(check, "no upload completed, so no link to check");
        }
        return;
    }
    let mut first_original = None;
    for (sample, media) in &completed {
        let (originals, derived) = links_of(runner.target.provider, media);
        if originals.is_empty() {
            runner.findings.fail(
                check::CDN_SERVES_UPLOADED_BYTES,
                format!("{}: no link to the original", sample.file_name),
            );
        }
        for url in &originals {
            serves_bytes(runner, sample, url).await;
        }
        for url in &derived {
            serves_media(runner, url).await;
        }
        if first_original.is_none() {
            first_original = originals.first().cloned();
        }
    }
    let Some(link) = first_original else {
        return;
    };
    tampering(runner, &link).await;
    expiry(runner, &link).await;
}

async fn serves_bytes(runner: &mut Runner<'_>, sample: &Sample, url: &str) {
    let Some(exchange) = runner.cdn("fetch the original", url).await else {
        return;
    };
    let want = hex::encode(Sha256::digest(&sample.bytes));
    let got = hex::encode(Sha256::digest(&exchange.body));
    runner.findings.expect(
        check::CDN_SERVES_UPLOADED_BYTES,
        exchange.status == 200 && want == got,
        || {
            format!(
                "{}: {} bytes sha256 {}…, uploaded {} bytes sha256 {}…",
                exchange.line(),
                exchange.body.len(),
                &got[..12],
                sample.bytes.len(),
                &want[..12]
            )
        },
    );
}

async fn serves_media(runner: &mut Runner<'_>, url: &str) {
    let Some(exchange) = runner.cdn("fetch a derived file", url).await else {
        return;
    };
    runner.findings.expect(
        check::CDN_SERVES_UPLOADED_BYTES,
        exchange.status == 200 && !exchange.body.is_empty(),
        || format!("{}: expected 200 with a body", exchange.line()),
    );
}

/// A changed signature and a missing query must both be refused.
async fn tampering(runner: &mut Runner<'_>, link: &str) {
    let mut cases = Vec::new();
    if let Some(at) = link.find("Signature=") {
        let start = at + "Signature=".len();
        let mut bytes = link.as_bytes().to_vec();
        if let Some(byte) = bytes.get_mut(start) {
            *byte = if *byte == b'A' { b'B' } else { b'A' };
            cases.push((
                "signature changed",
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    } else {
        runner.findings.fail(
            check::CDN_REJECTS_TAMPERING,
            format!("{link}: no Signature parameter, so nothing guards it"),
        );
    }
    if let Some((bare, _)) = link.split_once('?') {
        cases.push(("query removed", bare.to_owned()));
    }
    for (what, url) in cases {
        let Some(exchange) = runner.cdn(what, &url).await else {
            continue;
        };
        runner
            .findings
            .expect(check::CDN_REJECTS_TAMPERING, exchange.status == 403, || {
                format!("{}: a link with its {what} was served", exchange.line())
            });
    }
}

/// On the mock: the link works one second before its expiry and is refused one second after.
async fn expiry(runner: &mut Runner<'_>, link: &str) {
    if !runner.target.admin {
        runner.findings.skip(
            check::CDN_LINKS_EXPIRE,
            "needs the mock's clock: a live link would take hours to expire",
        );
        return;
    }
    let query = link.split_once('?').map_or("", |(_, query)| query);
    let Some(expires_at) = mock_server::signing::claimed_expiry(query) else {
        runner.findings.fail(
            check::CDN_LINKS_EXPIRE,
            format!("{link}: no expiry in the signed query"),
        );
        return;
    };
    let Some(now) = runner.admin_now().await else {
        runner
            .findings
            .fail(check::CDN_LINKS_EXPIRE, "cannot read the mock's clock");
        return;
    };
    if expires_at <= now {
        runner.findings.fail(
            check::CDN_LINKS_EXPIRE,
            format!("{link}: expired at {expires_at}, before the check began at {now}"),
        );
        return;
    }
    let before = std::time::Duration::from_secs(expires_at - now - 1);
    runner.admin_advance(before).await;
    if let Some(exchange) = runner.cdn("fetch 1 s before expiry", link).await {
        runner
            .findings
            .expect(check::CDN_LINKS_EXPIRE, exchange.status == 200, || {
                format!("{}: refused before its expiry", exchange.line())
            });
    }
    runner
        .admin_advance(std::time::Duration::from_secs(2))
        .await;
    if let Some(exchange) = runner.cdn("fetch 1 s after expiry", link).await {
        runner
            .findings
            .expect(check::CDN_LINKS_EXPIRE, exchange.status == 403, || {
                format!("{}: served after its expiry", exchange.line())
            });
    }
}
