//! A closed-loop HTTP/1.1 load generator: `connections` keep-alive connections, each sending
//! the next request as soon as the last answer is read, for a fixed time.
//!
//! The same code drives the mock and the baseline, in the same process, on the same machine, so
//! their ratio is what the numbers mean; absolute figures include the generator's own cost.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use mock_server::clock::Stopwatch;

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadResult {
    /// Answers with status 200.
    pub(crate) ok: u64,
    /// Anything else, or failed connections.
    pub(crate) errors: u64,
    /// Requests per second.
    pub(crate) rate: f64,
    /// Median latency, microseconds.
    pub(crate) p50_us: u64,
    /// 99th percentile latency, microseconds.
    pub(crate) p99_us: u64,
}

/// Runs `connections` loops of `GET path` (with `headers`) against `addr` for `duration`.
pub(crate) async fn run(
    addr: SocketAddr,
    path: &str,
    headers: &[(&'static str, String)],
    connections: usize,
    duration: Duration,
) -> LoadResult {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let stop = Arc::clone(&stop);
        let path = path.to_owned();
        let headers = headers.to_vec();
        tasks.push(tokio::spawn(async move {
            connection(addr, &path, &headers, &stop).await
        }));
    }
    let watch = Stopwatch::start();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut histogram =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let (mut ok, mut errors) = (0, 0);
    for task in tasks {
        if let Ok((task_histogram, task_ok, task_errors)) = task.await {
            let _ = histogram.add(&task_histogram);
            ok += task_ok;
            errors += task_errors;
        }
    }
    let secs = watch.elapsed().as_secs_f64();
    LoadResult {
        ok,
        errors,
        rate: ok as f64 / secs,
        p50_us: histogram.value_at_quantile(0.50),
        p99_us: histogram.value_at_quantile(0.99),
    }
}

async fn connection(
    addr: SocketAddr,
    path: &str,
    headers: &[(&'static str, String)],
    stop: &AtomicBool,
) -> (hdrhistogram::Histogram<u64>, u64, u64) {
    let mut histogram =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let (mut ok, mut errors) = (0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
            errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Ok((mut sender, driver)) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await
        else {
            errors += 1;
            continue;
        };
        tokio::spawn(driver);
        while !stop.load(Ordering::Relaxed) {
            let mut request = hyper::Request::get(path).header("host", addr.to_string());
            for (name, value) in headers {
                request = request.header(*name, value);
            }
            let Ok(request) = request.body(Empty::new()) else {
                errors += 1;
                break;
            };
            let watch = Stopwatch::start();
            let answered = match sender.send_request(request).await {
                Ok(response) => {
                    let status = response.status();
                    response
                        .into_body()
                        .collect()
                        .await
                        .is_ok_and(|_| status == 200)
                }
                Err(_) => false,
            };
            let micros = u64::try_from(watch.elapsed().as_micros()).unwrap_or(u64::MAX);
            if answered {
                ok += 1;
                let _ = histogram.record(micros.max(1));
            } else {
                errors += 1;
                break;
            }
        }
    }
    (histogram, ok, errors)
}
