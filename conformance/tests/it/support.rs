//! Starting the in-process mock and running the checks against it.

use conformance::{Options, Report, Target};
use mock_server::clock::Clock;
use mock_server::{MockServer, Provider};

/// A mock on a manual clock (the checks move each run's own session clock).
pub(crate) async fn spawn_mock() -> MockServer {
    MockServer::builder()
        .clock(Clock::manual(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_770_230_101),
        ))
        .seed(7)
        .start()
        .await
        .unwrap()
}

/// Runs every check against `base_url` as the mock and returns the report.
pub(crate) async fn run_against(base_url: &str, provider: Provider, admin: bool) -> Report {
    let mut target = Target::mock(base_url, provider);
    target.admin = admin;
    conformance::run(&target, &Options::default(), &|_| {})
        .await
        .unwrap()
}

/// The report as text, for assertion messages.
pub(crate) fn show(report: &Report) -> String {
    let mut out = Vec::new();
    conformance::report::print(
        &mut out,
        &[conformance::report::Suite {
            name: report.provider,
            results: &report.results,
            properties: &[],
        }],
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}

/// What the breaking proxy saw of a request.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: String,
}

/// A response on its way back through the breaking proxy.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: bytes::Bytes,
}

impl Answer {
    /// Edits the body as JSON (left alone when it is not JSON).
    pub(crate) fn edit_json(&mut self, edit: impl FnOnce(&mut serde_json::Value)) {
        if let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(&self.body) {
            edit(&mut json);
            self.body = serde_json::to_vec(&json).unwrap().into();
            self.headers.remove(reqwest::header::CONTENT_LENGTH);
        }
    }
}

type OnRequest = dyn Fn(&Seen, &mut reqwest::header::HeaderMap) + Send + Sync;
type OnResponse = dyn Fn(&Seen, &mut Answer) + Send + Sync;

/// A proxy in front of `upstream` that bends requests and answers: a mock made to break one
/// promise, so each check is shown to catch what it claims to. Links in bodies are rewritten to
/// point back at the proxy, so CDN fetches pass through it too.
pub(crate) async fn spawn_breaking_proxy(
    upstream: String,
    on_request: impl Fn(&Seen, &mut reqwest::header::HeaderMap) + Send + Sync + 'static,
    on_response: impl Fn(&Seen, &mut Answer) + Send + Sync + 'static,
) -> String {
    use std::sync::Arc;

    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let client = reqwest::Client::new();
    let on_request: Arc<OnRequest> = Arc::new(on_request);
    let on_response: Arc<OnResponse> = Arc::new(on_response);
    let proxy_origin = origin.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (client, upstream, proxy_origin) =
                (client.clone(), upstream.clone(), proxy_origin.clone());
            let (on_request, on_response) = (Arc::clone(&on_request), Arc::clone(&on_response));
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (client, upstream, proxy_origin) =
                        (client.clone(), upstream.clone(), proxy_origin.clone());
                    let (on_request, on_response) =
                        (Arc::clone(&on_request), Arc::clone(&on_response));
                    async move {
                        let seen = Seen {
                            method: req.method().to_string(),
                            path: req.uri().path().to_owned(),
                            query: req.uri().query().unwrap_or_default().to_owned(),
                        };
                        let mut headers = req.headers().clone();
                        headers.remove(hyper::header::HOST);
                        on_request(&seen, &mut headers);
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let url = if seen.query.is_empty() {
                            format!("{upstream}{}", seen.path)
                        } else {
                            format!("{upstream}{}?{}", seen.path, seen.query)
                        };
                        let reply = client
                            .request(seen.method.parse().unwrap(), url)
                            .headers(headers)
                            .body(body)
                            .send()
                            .await
                            .unwrap();
                        let status = reply.status().as_u16();
                        let mut headers = reply.headers().clone();
                        let body = reply.bytes().await.unwrap();
                        let body = match std::str::from_utf8(&body) {
                            Ok(text) if text.contains(&upstream) => {
                                headers.remove(hyper::header::CONTENT_LENGTH);
                                bytes::Bytes::from(text.replace(&upstream, &proxy_origin))
                            }
                            _ => body,
                        };
                        let mut answer = Answer {
                            status,
                            headers,
                            body,
                        };
                        on_response(&seen, &mut answer);
                        let mut response = hyper::Response::new(Full::new(answer.body));
                        *response.status_mut() =
                            hyper::StatusCode::from_u16(answer.status).unwrap();
                        answer.headers.remove(hyper::header::CONTENT_LENGTH);
                        answer.headers.remove(hyper::header::TRANSFER_ENCODING);
                        *response.headers_mut() = answer.headers;
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    origin
}
