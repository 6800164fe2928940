//! A paid provider's rate limit in front of a node, for the benchmarks: the tests' own
//! limiter (`nodewatch_testkit::limiter`, crates/testkit/src/limiter.rs) run as a process. A
//! token bucket of `--rps` calls a second holding one second's calls, each batch item billed
//! one; a request over it is refused whole, as the large providers refuse: HTTP 429 with
//! `Retry-After: 1` and a -32005 "exceeded its compute units per second capacity" body
//! (`--refusal 429`, the default), or HTTP 200 with a -32005 error per call
//! (`--refusal rpc-error`).
//!
//! It listens on 127.0.0.1 (a port of its own: the testkit's servers bind port 0) and prints
//! `ready <url>` on stdout once it does. Then:
//!
//! - every whole second since it started, one JSON line to `--log`:
//!   `{"second": s, "calls": answered calls in that second, "refused": refused requests in
//!   it}`, written about 50 ms after the second ends;
//! - it answers one JSON line on stdout for each command line on stdin: `counts` (requests,
//!   refused, calls so far, and its uptime), `mark` (requests taken so far) and `busy <mark>`
//!   (the time from the first to the last request taken since the mark, and their calls: how
//!   long the provider was busy, as tests/rate_limit.rs measures it);
//! - at the end of stdin it writes the last (partial) second and a summary line
//!   (`{"summary": {...}}`, with when each refused request came) to the log, and exits.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use nodewatch_testkit::limiter::{Limiter, Refusal};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Mutex;

/// Arguments of `nwbench limiter`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The node behind the limit (an http URL).
    #[arg(long)]
    target: String,
    /// The limit: calls (batch items) per second.
    #[arg(long, default_value_t = 120)]
    rps: u32,
    /// How a request over the limit is refused: `429` (HTTP 429, `Retry-After: 1`, a -32005
    /// body) or `rpc-error` (HTTP 200, a -32005 error per call).
    #[arg(long, default_value = "429")]
    refusal: String,
    /// Where the per-second JSON lines go.
    #[arg(long)]
    log: PathBuf,
}

/// The per-second log: the seconds written so far.
struct Log {
    file: std::io::BufWriter<std::fs::File>,
    written: usize,
}

impl Log {
    /// Writes every second before `upto` not written yet.
    fn write_until(&mut self, limiter: &Limiter, upto: usize) -> anyhow::Result<()> {
        let per_second = limiter.per_second();
        while self.written < upto {
            let (calls, refused) = per_second.get(self.written).copied().unwrap_or((0, 0));
            let line = json!({"second": self.written, "calls": calls, "refused": refused});
            writeln!(self.file, "{line}")?;
            self.written += 1;
        }
        self.file.flush()?;
        Ok(())
    }
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let refusal = match args.refusal.as_str() {
        "429" => Refusal::Http429,
        "rpc-error" => Refusal::RpcError,
        other => bail!("--refusal {other}: expected 429 or rpc-error"),
    };
    let file = std::fs::File::create(&args.log).with_context(|| args.log.display().to_string())?;
    let limiter = Arc::new(Limiter::start(&args.target, args.rps, refusal).await);
    let log = Arc::new(Mutex::new(Log {
        file: std::io::BufWriter::new(file),
        written: 0,
    }));
    println!("ready {}", limiter.url());
    std::io::stdout().flush()?;

    // Each whole second, shortly after it ends (requests of that second still being
    // counted are in by then: the count is taken when a request arrives).
    let ticker = {
        let (limiter, log) = (Arc::clone(&limiter), Arc::clone(&log));
        tokio::spawn(async move {
            loop {
                let up = limiter.uptime();
                let next = Duration::from_secs(up.as_secs() + 1) + Duration::from_millis(50);
                tokio::time::sleep(next.saturating_sub(up)).await;
                let done = limiter.uptime().as_secs() as usize;
                if let Err(e) = log.lock().await.write_until(&limiter, done) {
                    eprintln!("limiter: log: {e}");
                    return;
                }
            }
        })
    };

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let mut words = line.split_whitespace();
        let answer = match (words.next(), words.next()) {
            (Some("counts"), None) => {
                let c = limiter.counts();
                json!({"requests": c.requests, "refused": c.refused, "calls": c.calls,
                       "uptime_s": limiter.uptime().as_secs_f64()})
            }
            (Some("mark"), None) => json!({"mark": limiter.mark()}),
            (Some("busy"), Some(mark)) => {
                let mark: usize = mark.parse().context("busy <mark>")?;
                let (span, calls) = limiter.busy_since(mark);
                json!({"span_s": span.as_secs_f64(), "calls": calls})
            }
            (None, _) => continue,
            _ => json!({"error": format!("unknown command {line:?}")}),
        };
        println!("{answer}");
        std::io::stdout().flush()?;
    }

    ticker.abort();
    let mut log = log.lock().await;
    let upto = limiter.uptime().as_secs() as usize + 1;
    log.write_until(&limiter, upto)?;
    let c = limiter.counts();
    let refused_at: Vec<f64> = limiter
        .refused_at()
        .iter()
        .map(Duration::as_secs_f64)
        .collect();
    let summary = json!({"summary": {
        "rps": limiter.calls_per_second(), "refusal": args.refusal,
        "requests": c.requests, "refused": c.refused, "calls": c.calls,
        "uptime_s": limiter.uptime().as_secs_f64(), "refused_at": refused_at,
    }});
    writeln!(log.file, "{summary}")?;
    log.file.flush()?;
    Ok(())
}
