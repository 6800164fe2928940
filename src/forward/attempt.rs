//! One attempt: a group of calls sent to one upstream as one request, through its breaker
//! and admission limits, with the metrics, breaker and passive-health bookkeeping it causes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::ProxyConfig;
use crate::error::{UpstreamError, UpstreamErrorKind};
use crate::jsonrpc::{self, Answer, Call};
use crate::upstream::breaker::{BreakerState, BreakerTransition};
use crate::upstream::Upstream;

use super::Engine;

impl Engine {
    /// One upstream request for a group of calls.
    pub(super) async fn attempt(
        &self,
        upstream: &Arc<Upstream>,
        calls: &[&Call<'_>],
        batch: bool,
        timeout: Duration,
        breaker: BreakerState,
        proxy: &ProxyConfig,
    ) -> Result<Vec<Answer>, UpstreamError> {
        let name = upstream.name.as_str();
        let metrics = &self.metrics;
        let refuse = |kind| Err(UpstreamError::new(name, kind));
        let result = if breaker == BreakerState::HalfOpen && !upstream.breaker.try_trial() {
            refuse(UpstreamErrorKind::BreakerOpen)
        } else if let Some(_slot) = upstream.limits.admit().await {
            let in_flight = metrics.upstream_in_flight.with_label_values(&[name]);
            in_flight.inc();
            let started = Instant::now();
            let body = Bytes::from(jsonrpc::encode_upstream(calls, batch));
            let result = upstream
                .send(body, timeout, proxy.response_limit)
                .await
                .and_then(|bytes| {
                    jsonrpc::parse_answers(&bytes, calls.len(), batch).map_err(|why| {
                        UpstreamError::new(name, UpstreamErrorKind::InvalidAnswer(why))
                    })
                });
            in_flight.dec();
            metrics
                .upstream_duration
                .with_label_values(&[name])
                .observe(started.elapsed().as_secs_f64());
            result
        } else {
            refuse(UpstreamErrorKind::Busy(proxy.queue_timeout))
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.outcome(),
        };
        metrics
            .upstream_attempts
            .with_label_values(&[name, outcome])
            .inc();
        let transition = match &result {
            Ok(_) => upstream.breaker.on_success(),
            Err(e) if e.is_breaker_failure() => upstream.breaker.on_failure(Instant::now()),
            Err(_) => None,
        };
        self.breaker_flipped(upstream, transition);
        if let Err(e) = &result {
            if e.is_health_failure() {
                self.reporter.report_failure(upstream, e);
            }
        }
        result
    }

    fn breaker_flipped(&self, upstream: &Upstream, transition: Option<BreakerTransition>) {
        let name = upstream.name.as_str();
        let (to, open) = match transition {
            None => return,
            Some(BreakerTransition::Opened) => {
                warn!(upstream = name, "circuit breaker opened");
                ("open", 1)
            }
            Some(BreakerTransition::Closed) => {
                info!(upstream = name, "circuit breaker closed");
                ("closed", 0)
            }
        };
        self.metrics
            .breaker_transitions
            .with_label_values(&[name, to])
            .inc();
        self.metrics
            .breaker_open
            .with_label_values(&[name])
            .set(open);
    }
}
