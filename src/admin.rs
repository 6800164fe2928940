//! The admin listener: `/healthz` (liveness), `/readyz` (at least one upstream healthy and
//! in sync), `/status` (JSON view of every upstream), `/metrics` (Prometheus text), and for
//! people: `/` (the HTML status page, [`crate::status::page`]) and `/history` (JSON: each
//! upstream's head and state over the last minutes, [`crate::status::history`]).

use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;
use tokio::time::Instant;

use crate::blocks::BlockNeed;
use crate::metrics::Metrics;
use crate::reload::Reloader;
use crate::router;
use crate::shared::{Shared, SharedView};
use crate::status::history::{self, SharedHistory};
use crate::status::{page, StatusDoc, View};
use crate::sync::lock;
use crate::upstream::breaker::BreakerState;
use crate::upstream::{SharedSnapshot, Snapshot, UpstreamState};

/// The admin service state.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Health as last published by the monitor.
    snapshot: SharedSnapshot,
    /// The registry to expose.
    metrics: Metrics,
    /// `POST /reload`, when enabled by `admin_reload`.
    reloader: Option<Reloader>,
    /// The shared Redis, for `/status`.
    shared: Option<Arc<Shared>>,
    /// Heads and states over the last minutes, for the page's chart (sampled in the
    /// background while this service exists).
    history: SharedHistory,
}

/// The `/status` document.
#[derive(Debug, Serialize)]
pub struct Status<'a> {
    /// Whether `/readyz` answers 200.
    pub ready: bool,
    /// Highest head among healthy upstreams.
    pub best_head: Option<u64>,
    /// Chain id served.
    pub chain_id: Option<u64>,
    /// The answer cache's final line: answers about blocks at or below it are kept
    /// ([`crate::cache`]).
    pub final_line: Option<u64>,
    /// The upstream a request would go to first.
    pub serving: Option<&'a str>,
    /// Every upstream in rank order.
    pub upstreams: &'a [UpstreamState],
    /// The shared Redis, when configured: up, or the local fallback and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<SharedView>,
}

impl Status<'_> {
    /// Builds the document from a snapshot.
    pub fn of(snapshot: &Snapshot) -> Status<'_> {
        Status {
            ready: snapshot.is_ready(),
            best_head: snapshot.best_head,
            chain_id: snapshot.chain_id,
            final_line: snapshot.final_line,
            serving: router::select(snapshot, BlockNeed::Latest, &breakers(snapshot))
                .first()
                .map(|&i| snapshot.upstreams[i].name.as_str()),
            upstreams: &snapshot.upstreams,
            redis: None,
        }
    }
}

fn breakers(snapshot: &Snapshot) -> Vec<BreakerState> {
    snapshot.upstreams.iter().map(|u| u.breaker).collect()
}

impl Admin {
    /// Creates the service; `reloader` enables `POST /reload`. Inside a tokio runtime this
    /// also starts the history sampler, which ends by itself once the last clone of the
    /// service is dropped.
    pub fn new(snapshot: SharedSnapshot, metrics: Metrics, reloader: Option<Reloader>) -> Self {
        let history = history::spawn_sampler(snapshot.clone());
        Self {
            snapshot,
            metrics,
            reloader,
            shared: None,
            history,
        }
    }

    /// Shows the shared Redis in `/status` and the page.
    pub fn with_shared(mut self, shared: Option<Arc<Shared>>) -> Self {
        self.shared = shared;
        self
    }

    /// Serves one admin request.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<Full<Bytes>> {
        if request.method() == Method::POST && request.uri().path() == "/reload" {
            return match &self.reloader {
                None => respond(
                    StatusCode::NOT_FOUND,
                    TEXT,
                    "reload over HTTP is off (set admin_reload = true); SIGHUP reloads\n".into(),
                ),
                Some(reloader) => match reloader.reload().await {
                    Ok(()) => respond(StatusCode::OK, TEXT, "reloaded\n".into()),
                    Err(e) => respond(StatusCode::BAD_REQUEST, TEXT, format!("{e}\n").into()),
                },
            };
        }
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return respond(StatusCode::METHOD_NOT_ALLOWED, TEXT, "use GET\n".into());
        }
        match request.uri().path() {
            "/" => {
                let snapshot = self.snapshot.load();
                let serving = Status::of(&snapshot).serving;
                let mut doc = StatusDoc::of(&snapshot, serving);
                doc.redis = self.shared.as_ref().map(|s| s.view(Instant::now()));
                let view = View::new(doc, &String::from_utf8_lossy(&self.metrics.encode()));
                let history = lock(&self.history);
                let body = page::render(&view, &history, history::unix_ms_now());
                respond(StatusCode::OK, "text/html; charset=utf-8", body.into())
            }
            "/history" => {
                let body = serde_json::to_vec(&*lock(&self.history)).expect("history serialises");
                respond(StatusCode::OK, "application/json", body.into())
            }
            "/healthz" => respond(StatusCode::OK, TEXT, "ok\n".into()),
            "/readyz" => {
                if self.snapshot.load().is_ready() {
                    respond(StatusCode::OK, TEXT, "ready\n".into())
                } else {
                    respond(
                        StatusCode::SERVICE_UNAVAILABLE,
                        TEXT,
                        "not ready: no upstream is healthy and in sync\n".into(),
                    )
                }
            }
            "/status" => {
                let snapshot = self.snapshot.load();
                let mut status = Status::of(&snapshot);
                status.redis = self.shared.as_ref().map(|s| s.view(Instant::now()));
                let body = serde_json::to_vec_pretty(&status).expect("status serialises");
                respond(StatusCode::OK, "application/json", body.into())
            }
            "/metrics" => respond(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics.encode().into(),
            ),
            _ => respond(
                StatusCode::NOT_FOUND,
                TEXT,
                "not found: try /, /healthz, /readyz, /status, /history or /metrics\n".into(),
            ),
        }
    }
}

const TEXT: &str = "text/plain; charset=utf-8";

fn respond(status: StatusCode, content_type: &str, body: Bytes) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Full::new(body))
        .expect("static response parts are valid")
}
