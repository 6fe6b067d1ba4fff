//! The CDN the providers' signed links point at, served by the mock itself under `/cdn/`.
//!
//! A link is checked the way CloudFront checks it (key pair, signature, then expiry) and refused
//! with CloudFront's 403 and XML error body, so a client's handling of expired links can be tested
//! for real. The mock adds one header CloudFront does not send, `X-Mock-Denied-Reason`, so a
//! person can tell an expired link from a tampered one.
//!
//! Bytes are streamed from disk, never loaded whole; single `Range` requests are honoured.
//! Every link of an upload (original, variants, thumbnails, source) serves the exact uploaded
//! bytes: the mock does not transcode, it only reports the scaled dimensions a real CDN would.

use std::io::SeekFrom;

use futures_util::TryStreamExt as _;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::StreamBody;
use hyper::body::{Frame, Incoming};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use crate::app::App;
use crate::http::{Body, full};
use crate::signing;

/// What names the media behind a CDN path (segments after `/cdn/`).
#[derive(Debug, PartialEq, Eq)]
enum MediaKey<'p> {
    /// `fansly/{id}/{name}`: a media or variant id, derived from its upload's sequence number,
    /// then the file name Fansly writes.
    FanslyUpload(u64),
    /// `onlyfans/files/{a}/{ab}/{token}/{name}` (the 32-hex directory) or
    /// `onlyfans/upload/{token}/{digits}/{name}` (the source-upload id).
    Token(&'p str),
}

fn media_key<'p>(segments: &[&'p str]) -> Option<MediaKey<'p>> {
    match segments {
        ["fansly", id, _] => {
            crate::provider::fansly::seq_of_media_id(id).map(MediaKey::FanslyUpload)
        }
        ["onlyfans", "files", _, _, token, _] => Some(MediaKey::Token(token)),
        ["onlyfans", "s3", crate::s3::BUCKET, "upload", token, _, _] => {
            Some(MediaKey::Token(token))
        }
        _ => None,
    }
}

/// Answers `GET`/`HEAD /cdn/...`.
pub(crate) async fn serve(app: &App, req: &Request<Incoming>, segments: &[&str]) -> Response<Body> {
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or_default();
    let found = media_key(segments).and_then(|key| match key {
        MediaKey::FanslyUpload(seq) => app.store.media_of_job(crate::Provider::Fansly, seq),
        MediaKey::Token(token) => app.store.media(token),
    });
    // A link is judged by the clock of the session that owns the media.
    let now = match &found {
        Some((_, session)) => app.now(session),
        None => app.clock.now(),
    };
    if crate::s3::is_s3_path(path) {
        // `sourceUrl`: an S3 presigned URL, which signs the host it was made for too.
        let origin = crate::admin::origin_of(app, req);
        if let Err(denied) =
            crate::s3::verify(&origin, path, query, crate::clock::unix_secs(now), &app.key)
        {
            tracing::info!(%path, reason = denied.reason(), "s3 link refused");
            let mut response = xml_error(StatusCode::FORBIDDEN, denied.code(), denied.message());
            response.headers_mut().insert(
                "x-mock-denied-reason",
                HeaderValue::from_static(denied.reason()),
            );
            return response;
        }
    } else if let Err(err) = signing::verify(path, query, crate::clock::unix_secs(now), &app.key) {
        tracing::info!(%path, reason = err.reason(), "cdn link refused");
        let message = match err {
            signing::SignatureError::MissingKeyPairId
            | signing::SignatureError::MissingPolicy
            | signing::SignatureError::MissingSignature => {
                "Missing Key-Pair-Id query parameter or cookie value"
            }
            _ => "Access denied",
        };
        let mut response = xml_error(StatusCode::FORBIDDEN, "AccessDenied", message);
        response.headers_mut().insert(
            "x-mock-denied-reason",
            HeaderValue::from_static(err.reason()),
        );
        return response;
    }
    let Some((media, _)) = found else {
        return xml_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        );
    };

    let total = media.size;
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok())
        // RFC 9110 §14.2: a range unit the server does not understand (`items=0-10`) is
        // ignored, and the whole representation answered; only `bytes` ranges are ours.
        .filter(|value| {
            value
                .get(..6)
                .is_some_and(|unit| unit.eq_ignore_ascii_case("bytes="))
        })
        .map(|value| {
            http_range_header::parse_range_header(value).and_then(|ranges| ranges.validate(total))
        });
    let (status, start, len) = match range {
        None => (StatusCode::OK, 0, total),
        Some(Ok(ranges)) if ranges.len() == 1 => {
            let range = &ranges[0];
            (
                StatusCode::PARTIAL_CONTENT,
                *range.start(),
                range.end() - range.start() + 1,
            )
        }
        // Several ranges: a whole 200 is a valid answer and every client accepts it.
        Some(Ok(_)) => (StatusCode::OK, 0, total),
        Some(Err(_)) => {
            let mut response = xml_error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "InvalidRange",
                "The requested range is not satisfiable",
            );
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{total}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return response;
        }
    };

    let body = if req.method() == Method::HEAD {
        full(bytes::Bytes::new())
    } else {
        let mut file = match tokio::fs::File::open(&media.path).await {
            Ok(file) => file,
            Err(err) => {
                tracing::error!(error = %err, "stored media unreadable");
                return xml_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                );
            }
        };
        if let Err(err) = file.seek(SeekFrom::Start(start)).await {
            tracing::error!(error = %err, "stored media unseekable");
            return xml_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "We encountered an internal error. Please try again.",
            );
        }
        let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 64 * 1024);
        Body::stream(StreamBody::new(stream.map_ok(Frame::data)))
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media.info.mimetype),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", hex::encode(&media.sha256[..16]))) {
        headers.insert(header::ETAG, etag);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        let content_range = format!("bytes {start}-{}/{total}", start + len - 1);
        if let Ok(value) = HeaderValue::from_str(&content_range) {
            headers.insert(header::CONTENT_RANGE, value);
        }
    }
    response
}

/// CloudFront's and S3's XML error body.
fn xml_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_keys_come_from_each_providers_path_shape() {
        assert_eq!(
            media_key(&["fansly", "8747400000000000016", "image.jpeg"]),
            Some(MediaKey::FanslyUpload(1))
        );
        assert_eq!(
            media_key(&["fansly", "8747400000000000019", "image_360.jpeg"]),
            Some(MediaKey::FanslyUpload(1)),
            "a variant's id names its upload"
        );
        assert_eq!(media_key(&["fansly", "12", "image.jpeg"]), None);
        assert_eq!(media_key(&["fansly", "8747400000000000016.jpeg"]), None);
        assert_eq!(
            media_key(&["onlyfans", "files", "a", "ab", "abcd", "300x544_abcd.jpg"]),
            Some(MediaKey::Token("abcd"))
        );
        assert_eq!(
            media_key(&[
                "onlyfans",
                "s3",
                "of2transcoder",
                "upload",
                "uuid",
                "000000000001",
                "photo.jpg"
            ]),
            Some(MediaKey::Token("uuid"))
        );
        assert_eq!(
            media_key(&[
                "onlyfans",
                "s3",
                "other-bucket",
                "upload",
                "uuid",
                "1",
                "photo.jpg"
            ]),
            None
        );
        assert_eq!(media_key(&["onlyfans", "files", "a"]), None);
    }
}
