//! `nodewatch`: parse arguments, load the configuration, start logging, serve until
//! SIGTERM/SIGINT. Everything else lives in the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use nodewatch::config::{Config, LogFormat, Overrides};
use nodewatch::server::{self, ConfigSource, Listeners};

/// Health-checking JSON-RPC failover proxy for Ethereum ETL exports.
///
/// Point ethereum-etl (or any JSON-RPC client) at the listen address; every request goes to
/// the best healthy upstream and fails over to the next within the same request.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Args {
    /// Upstream node URL (http or https); repeat in rank order: the first is the primary.
    /// Replaces the upstreams of the config file.
    #[arg(long = "upstream", value_name = "URL")]
    upstreams: Vec<String>,
    /// Address for JSON-RPC clients [default: 127.0.0.1:8545].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Address for /metrics, /healthz, /readyz and /status [default: 127.0.0.1:9545].
    #[arg(long, value_name = "ADDR")]
    admin_listen: Option<SocketAddr>,
    /// TOML configuration file (see config/nodewatch.toml); NODEWATCH__SECTION__KEY
    /// environment variables override it, flags override both. SIGHUP re-reads it.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Log line format [default: text]. Filter with RUST_LOG (default: info).
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let overrides = Overrides {
        upstreams: args.upstreams,
        listen: args.listen,
        admin_listen: args.admin_listen,
        log_format: args.log_format,
    };
    let source = ConfigSource {
        path: args.config,
        overrides,
    };
    let config = match Config::load(source.path.as_deref(), source.overrides.clone()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("nodewatch: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("nodewatch: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config, source)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("nodewatch: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config, source: ConfigSource) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let listeners = Listeners::bind(&config).await.with_context(|| {
        format!(
            "cannot listen on {} / {}",
            config.listen, config.admin_listen
        )
    })?;
    let on_start = |handle: server::Handle| {
        tokio::spawn(reload_on_sighup(handle.reloader));
    };
    server::run_with_handle(config, Some(source), listeners, shutdown_signal(), on_start).await?;
    Ok(())
}

/// Every SIGHUP re-reads the configuration (an invalid one is refused and logged).
async fn reload_on_sighup(reloader: server::Reloader) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; reload with POST /reload (admin_reload)");
        return;
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP received: reloading the configuration");
        let _ = reloader.reload().await;
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops nodewatch");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
