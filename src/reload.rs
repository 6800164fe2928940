//! [`Reloader`]: re-reads the configuration from where it came from ([`ConfigSource`]) and
//! applies it live, on SIGHUP or `POST /reload`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::oneshot;
use tracing::{error, info, warn};

use crate::config::{Config, ConfigError, Overrides, RedisConfig};
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use crate::settings::Settings;
use crate::shared::Shared;
use crate::upstream::monitor::{HealthReporter, Reload};
use crate::upstream::{SharedSnapshot, Upstream};

/// Where the configuration came from, so a reload reads it again the same way.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// `--config` file, if any.
    pub path: Option<PathBuf>,
    /// Command-line values.
    pub overrides: Overrides,
}

/// Re-reads the configuration and applies it live: upstreams added, removed and re-ranked,
/// thresholds and limits changed, without dropping in-flight requests; an invalid new
/// configuration is refused and the running one stays.
#[derive(Debug, Clone)]
pub struct Reloader {
    /// Where to read the configuration again; `None` for a proxy started from a value.
    pub(crate) source: Option<ConfigSource>,
    /// Takes the new request-path settings.
    pub(crate) proxy: Proxy,
    /// Takes the new upstream list.
    pub(crate) reporter: HealthReporter,
    /// The upstreams now, so unchanged ones are kept.
    pub(crate) snapshot: SharedSnapshot,
    /// Counts reloads by result.
    pub(crate) metrics: Metrics,
    /// Addresses bound at start; a reload cannot move them.
    pub(crate) listen: (SocketAddr, SocketAddr),
    /// `proxy.threads` at start; the serving threads are not restarted.
    pub(crate) threads: usize,
    /// `[redis]` at start, and its store (read once: a reload keeps them).
    pub(crate) redis: RedisConfig,
    /// The fleet's store, for the rebuilt upstreams' `budget_key`s.
    pub(crate) shared: Option<Arc<Shared>>,
}

impl Reloader {
    /// Reloads; counts and logs the result.
    pub async fn reload(&self) -> Result<(), ConfigError> {
        let result = self.try_reload().await;
        let label = if result.is_ok() { "ok" } else { "error" };
        self.metrics
            .config_reloads
            .with_label_values(&[label])
            .inc();
        match &result {
            Ok(()) => info!("configuration reloaded"),
            Err(e) => {
                error!(error = %e, "configuration reload refused; the running configuration stays")
            }
        }
        result
    }

    async fn try_reload(&self) -> Result<(), ConfigError> {
        let source = self.source.as_ref().ok_or_else(|| {
            ConfigError::new(
                "reload",
                "nodewatch was started without a configuration source",
            )
        })?;
        let config = Config::load(source.path.as_deref(), source.overrides.clone())?;
        if (config.listen, config.admin_listen) != self.listen {
            warn!("listen addresses cannot change on reload; restart nodewatch to move them");
        }
        if config.proxy.threads != self.threads {
            warn!(
                running = self.threads,
                configured = config.proxy.threads,
                "proxy.threads cannot change on reload; restart nodewatch to change it"
            );
        }
        let budget = self.proxy.answer_budget();
        if config.proxy.max_inflight_bytes != budget {
            warn!(
                running = budget,
                configured = config.proxy.max_inflight_bytes,
                "proxy.max_inflight_bytes cannot change on reload; restart nodewatch to resize the answer budget"
            );
        }
        if config.redis != self.redis {
            warn!("[redis] cannot change on reload; restart nodewatch to use the new one");
        }
        let handles = self.snapshot.load().handles.clone();
        let upstreams = Upstream::rebuild(&config, &handles, self.shared.as_ref());
        self.proxy.reconfigure(Settings::new(&config));
        let (done, published) = oneshot::channel();
        self.reporter
            .reload(Reload {
                upstreams,
                config: config.config().clone(),
                done,
            })
            .await;
        let _ = published.await;
        Ok(())
    }
}
