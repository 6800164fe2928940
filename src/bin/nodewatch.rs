//! `nodewatch`: parse arguments, load the configuration, start logging, serve until
//! SIGTERM/SIGINT. Two small subcommands read a running nodewatch through its admin
//! listener: `nodewatch status` (the upstream table) and `nodewatch healthcheck` (exit 0 iff
//! `/healthz` answers, for container health checks). Everything else lives in the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use nodewatch::config::{Config, LogFormat, Overrides, ValidConfig};
use nodewatch::server::{self, ConfigSource, Listeners};
use nodewatch::status::client::{self, AdminClient};
use nodewatch::status::table;

/// Health-checking JSON-RPC failover proxy for Ethereum ETL exports.
///
/// Point ethereum-etl (or any JSON-RPC client) at the listen address; every request goes to
/// the best healthy upstream and fails over to the next within the same request.
///
/// Without a subcommand nodewatch runs the proxy.
#[derive(Debug, Parser)]
#[command(
    name = "nodewatch",
    version,
    about,
    long_about,
    args_conflicts_with_subcommands = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
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

/// Subcommands that talk to a running nodewatch's admin listener.
#[derive(Debug, Subcommand)]
enum Command {
    /// Print the upstream table of a running nodewatch.
    ///
    /// Rank, state, head, lag, latency and requests served per upstream, read from the admin
    /// listener's /status and /metrics; `>` marks the upstream requests go to first. Exit 1
    /// (one line on stderr) if it cannot be read.
    Status {
        /// Admin base URL [default: $NODEWATCH__ADMIN_LISTEN, else http://127.0.0.1:9545].
        #[arg(long, value_name = "URL")]
        admin: Option<String>,
        /// Redraw the table every second until Ctrl-C.
        #[arg(long)]
        watch: bool,
    },
    /// Exit 0 if a running nodewatch is alive, else print why and exit 1.
    ///
    /// Asks the admin listener's /healthz (with --ready: /readyz) with a 2 s timeout. For
    /// container HEALTHCHECKs: the image needs no curl.
    Healthcheck {
        /// Admin base URL [default: $NODEWATCH__ADMIN_LISTEN, else http://127.0.0.1:9545].
        #[arg(long, value_name = "URL")]
        admin: Option<String>,
        /// Check /readyz (an upstream is healthy and in sync) instead of /healthz.
        #[arg(long)]
        ready: bool,
    },
}

/// Bound on the health check's one request (well inside a container HEALTHCHECK timeout).
const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// Time between two redraws of `status --watch`.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let args = Args::parse();
    match args.command {
        Some(Command::Status { admin, watch }) => return run_client(status(admin, watch)),
        Some(Command::Healthcheck { admin, ready }) => {
            return run_client(healthcheck(admin, ready))
        }
        None => {}
    }
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
    // This thread accepts connections, probes and serves the admin endpoints; clients are
    // served on `proxy.threads` threads of their own (`server`).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
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

/// Runs a client subcommand on a small runtime; its error is one line on stderr, exit 1.
fn run_client(future: impl std::future::Future<Output = Result<(), String>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("nodewatch: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(future) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nodewatch: {e}");
            ExitCode::FAILURE
        }
    }
}

fn admin_client(admin: Option<String>) -> Result<AdminClient, String> {
    let url = admin.unwrap_or_else(client::default_admin_url);
    AdminClient::new(&url).map_err(|e| e.to_string())
}

async fn status(admin: Option<String>, watch: bool) -> Result<(), String> {
    use std::io::{IsTerminal as _, Write as _};
    let client = admin_client(admin)?;
    if !watch {
        let view = client.view().await.map_err(|e| e.to_string())?;
        print!("{}", table::render(&view, client.base()));
        return Ok(());
    }
    let tty = std::io::stdout().is_terminal();
    let mut tick = tokio::time::interval(WATCH_INTERVAL);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tick.tick() => {}
        }
        // In watch mode an unreachable nodewatch is shown, not fatal: it may be restarting.
        let text = match client.view().await {
            Ok(view) => table::render(&view, client.base()),
            Err(e) => format!("{e}\n"),
        };
        let mut out = std::io::stdout().lock();
        let written = if tty {
            write!(out, "\x1b[H\x1b[2J{text}")
        } else {
            writeln!(out, "{text}")
        };
        if written.and_then(|()| out.flush()).is_err() {
            return Ok(()); // stdout closed (e.g. piped into head)
        }
    }
}

async fn healthcheck(admin: Option<String>, ready: bool) -> Result<(), String> {
    let client = admin_client(admin)?.with_timeout(HEALTHCHECK_TIMEOUT);
    let path = if ready { "/readyz" } else { "/healthz" };
    client.get_ok(path).await.map_err(|e| e.to_string())?;
    Ok(())
}

async fn serve(config: ValidConfig, source: ConfigSource) -> anyhow::Result<()> {
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
