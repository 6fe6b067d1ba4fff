//! HTTP load by wrk, the standard closed-loop generator: `connections` keep-alive connections on
//! two threads, each sending the next request as soon as the last answer is read, for a fixed
//! time, with latency percentiles (`--latency`).
//!
//! The project's own generator used to do this; wrk drives bare hyper about four times as fast on
//! this machine, so the generator's own cost no longer hides the servers' (issue 19). wrk is
//! installed with apt-get when it is missing and the bench runs as root.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadResult {
    /// Answers with a 2xx or 3xx status.
    pub(crate) ok: u64,
    /// Non-2xx/3xx answers and socket errors.
    pub(crate) errors: u64,
    /// Requests per second, as wrk counts them.
    pub(crate) rate: f64,
    /// Median latency, microseconds.
    pub(crate) p50_us: u64,
    /// 99th percentile latency, microseconds.
    pub(crate) p99_us: u64,
}

/// Makes sure wrk is on `PATH`, installing the Debian package if it can.
pub(crate) fn ensure_wrk() -> anyhow::Result<()> {
    let found = |_: ()| {
        std::process::Command::new("wrk")
            .arg("--version")
            .output()
            .is_ok()
    };
    if found(()) {
        return Ok(());
    }
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0");
    if is_root {
        let _ = std::process::Command::new("apt-get")
            .args(["install", "-y", "-qq", "wrk"])
            .status();
    }
    if !found(()) {
        bail!("the bench measures with wrk: apt-get install wrk");
    }
    Ok(())
}

/// Runs wrk against `GET path` (with `headers`) on `addr` for `duration`.
pub(crate) async fn run(
    addr: SocketAddr,
    path: &str,
    headers: &[(&'static str, String)],
    connections: usize,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let mut command = tokio::process::Command::new("wrk");
    command
        .args(["-t2", "--latency"])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)));
    for (name, value) in headers {
        command.arg("-H").arg(format!("{name}: {value}"));
    }
    let output = command
        .arg(format!("http://{addr}{path}"))
        .output()
        .await
        .context("running wrk")?;
    if !output.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    parse(&String::from_utf8_lossy(&output.stdout))
}

/// Reads wrk's report.
fn parse(report: &str) -> anyhow::Result<LoadResult> {
    let number_after = |label: &str| -> Option<f64> {
        report
            .lines()
            .find_map(|line| line.trim().strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
    };
    let percentile = |label: &str| -> Option<u64> {
        let text = report
            .lines()
            .find_map(|line| line.trim().strip_prefix(label))?
            .trim();
        micros(text)
    };
    let total = report
        .lines()
        .find(|line| line.contains(" requests in "))
        .and_then(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .context("no request count in wrk's report")?;
    let non_2xx = number_after("Non-2xx or 3xx responses:").unwrap_or(0.0) as u64;
    let socket_errors: u64 = report
        .lines()
        .find_map(|line| line.trim().strip_prefix("Socket errors:"))
        .map_or(0, |rest| {
            rest.split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        });
    Ok(LoadResult {
        ok: total.saturating_sub(non_2xx),
        errors: non_2xx + socket_errors,
        rate: number_after("Requests/sec:").context("no Requests/sec in wrk's report")?,
        p50_us: percentile("50%").context("no median in wrk's report (--latency)")?,
        p99_us: percentile("99%").context("no 99th percentile in wrk's report (--latency)")?,
    })
}

/// wrk's `1.23ms`, `456.00us`, `2.01s` as microseconds.
fn micros(text: &str) -> Option<u64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1_000.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1_000_000.0)
    } else {
        return None;
    };
    Some((number.parse::<f64>().ok()? * scale).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_wrk_report() {
        let report = "Running 5s test @ http://127.0.0.1:1/api/fansly/media/upload/1/status
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   731.15us  511.80us  13.10ms   89.19%
    Req/Sec    35.30k     3.46k   41.91k    71.00%
  Latency Distribution
     50%  598.00us
     75%  834.00us
     90%    1.17ms
     99%    2.18ms
  351252 requests in 5.01s, 533.38MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  70112.29
Transfer/sec:    106.47MB
";
        let result = parse(report).unwrap();
        assert_eq!((result.p50_us, result.p99_us), (598, 2180));
        assert_eq!((result.ok, result.errors), (351_245, 10));
        assert!((result.rate - 70_112.29).abs() < 0.01);
    }
}
