//! `make demo`: nodewatch in front of three live anvil nodes, an export streaming through
//! it while the nodes are killed and made to lag, and a check that the export is complete.
//!
//! 1. Three anvil nodes on loopback build the same deterministic chain (tests/support's
//!    chain builder), and a [`producer`] grows it by one block a second on all three.
//! 2. The real `nodewatch` binary starts in front of them (ranks 1, 2, 3), and the exporter
//!    ([`export::EXPORTER`]: `nodewatch-export stream`) streams from block 0 through it.
//! 3. The script plays: kill rank 1, bring it back, make rank 2 fall behind, restore it. Once
//!    a second the upstream table (the same renderer as `nodewatch status`) and the export's
//!    progress are shown.
//! 4. The chain stops growing, the export catches up, and the summary checks every block is
//!    exported exactly once with the hashes the nodes hold, and that nodewatch's metrics show
//!    0 failed client requests. Exit status 0 iff all of that holds.
//!
//! Every process it starts is stopped on exit, on error and on Ctrl-C (and gets SIGKILL from
//! the kernel should the demo itself die: `PR_SET_PDEATHSIG`). Loopback only.

use nodewatch_testkit as support;

mod export;
mod procs;
mod producer;
mod screen;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use nodewatch::status::client::AdminClient;

use export::{ExportFiles, Exported, Programs};
use procs::Proc;
use producer::{ChainSpec, Producer};
use screen::Screen;
use support::anvil::Anvil;

/// Upstreams in front of which nodewatch runs.
const NODES: usize = 3;
/// How long the export may take to catch up with the final head.
const CATCH_UP: Duration = Duration::from_secs(30);

/// One step of the script.
#[derive(Clone, Copy, Debug)]
enum Step {
    KillRank1,
    RestoreRank1,
    LagRank2,
    RestoreRank2,
    Finish,
}

/// The script: (seconds after the export starts, step).
const SCRIPT: &[(u64, Step)] = &[
    (7, Step::KillRank1),
    (19, Step::RestoreRank1),
    (29, Step::LagRank2),
    (41, Step::RestoreRank2),
    (50, Step::Finish),
];

impl Step {
    fn describe(self) -> &'static str {
        match self {
            Step::KillRank1 => "kill rank 1 (node-1): SIGKILL, its chain saved",
            Step::RestoreRank1 => "bring rank 1 back: restarted from its saved chain, caught up",
            Step::LagRank2 => "rank 2 (node-2) falls behind: it stops getting new blocks",
            Step::RestoreRank2 => "restore rank 2: the blocks it missed are replayed",
            Step::Finish => "stop the chain; let the export catch up",
        }
    }
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("demo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).ok();
        let terminated = async {
            match term.as_mut() {
                Some(term) => {
                    term.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // Dropping the demo future (on Ctrl-C or SIGTERM) drops every process guard it
            // holds: each child is stopped and reaped.
            result = demo() => Some(result),
            _ = tokio::signal::ctrl_c() => None,
            _ = terminated => None,
        }
    });
    match outcome {
        Some(Ok(true)) => ExitCode::SUCCESS,
        Some(Ok(false)) => ExitCode::FAILURE,
        Some(Err(e)) => {
            eprintln!("demo: {e:#}");
            ExitCode::FAILURE
        }
        None => {
            eprintln!("\ndemo: interrupted; everything it started has been stopped");
            ExitCode::from(130)
        }
    }
}

fn programs() -> anyhow::Result<Programs> {
    let nodewatch = match std::env::var_os("NODEWATCH_BIN") {
        Some(path) => PathBuf::from(path),
        // target/<profile>/examples/demo -> target/<profile>/nodewatch
        None => std::env::current_exe()?
            .parent()
            .and_then(|examples| examples.parent())
            .map(|dir| dir.join("nodewatch"))
            .context("cannot locate the nodewatch binary (set NODEWATCH_BIN)")?,
    };
    let ethereumetl = support::tools::ethereumetl_path();
    let anvil = support::tools::anvil_path();
    let programs = Programs {
        nodewatch,
        ethereumetl: ethereumetl.unwrap_or_default(),
        anvil,
    };
    for (what, path) in [
        ("nodewatch (cargo build)", &programs.nodewatch),
        ("anvil (make tools)", &programs.anvil),
        ("the exporter (make tools)", &programs.exporter().0),
    ] {
        if !path.is_file() {
            bail!("{what} not found at {}", path.display());
        }
    }
    Ok(programs)
}

async fn demo() -> anyhow::Result<bool> {
    let programs = programs()?;
    let dir = PathBuf::from(std::env::var_os("DEMO_DIR").unwrap_or_else(|| "demo-out".into()));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let mut screen = Screen::new();
    let (exporter_path, exporter_name) = programs.exporter();

    screen.note(format!(
        "starting {NODES} anvil nodes and building the same chain on each"
    ));
    let mut nodes = Vec::new();
    for _ in 0..NODES {
        nodes.push(Anvil::builder(&programs.anvil).no_mining().spawn().await);
    }
    let urls: Vec<String> = nodes.iter().map(Anvil::url).collect();
    let mut chain = None;
    for url in &urls {
        let built = support::chain::build_chain(url).await;
        if chain
            .as_ref()
            .is_some_and(|c: &support::chain::ChainInfo| c.block_hashes != built.block_hashes)
        {
            bail!("the nodes built different chains");
        }
        chain = Some(built);
    }
    let chain = chain.context("no nodes")?;
    let producer = Producer::new(
        urls.clone(),
        ChainSpec {
            genesis_timestamp: chain.genesis_timestamp,
            accounts: chain.accounts.clone(),
            token: chain.token.clone(),
        },
        chain.head,
    );
    tokio::spawn(producer.clone().run());

    let config = dir.join("nodewatch.toml");
    std::fs::write(&config, nodewatch_config(&urls))?;
    let mut nodewatch = Proc::nodewatch(&programs.nodewatch, &config, &dir.join("nodewatch.log"))?;
    let (proxy_url, admin_url) = nodewatch.wait_started(Duration::from_secs(15)).await?;
    let admin = AdminClient::new(&admin_url)?;
    screen.note(format!("nodewatch: JSON-RPC {proxy_url}, admin {admin_url} (try `nodewatch status --admin {admin_url}`)"));

    let files = ExportFiles::fresh(&dir)?;
    let cmd = export::command(&programs, &proxy_url, &files)?;
    let mut exporter = Proc::spawn(exporter_name, cmd)?;
    screen.note(format!(
        "{exporter_name} ({}) from block 0 through nodewatch -> {}",
        exporter_path.display(),
        files.items.display()
    ));

    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut steps = SCRIPT.iter().peekable();
    loop {
        tick.tick().await;
        let t = started.elapsed().as_secs();
        if let Some(code) = exporter.exited() {
            bail!(
                "{exporter_name} exited ({code}); see {}",
                files.log.display()
            );
        }
        if let Some(code) = nodewatch.exited() {
            bail!(
                "nodewatch exited ({code}); see its log in {}",
                dir.display()
            );
        }
        while let Some(&&(at, step)) = steps.peek() {
            if t < at {
                break;
            }
            steps.next();
            screen.event(t, step.describe());
            match step {
                Step::KillRank1 => {
                    producer.skip(0).await;
                    nodes[0].kill().await;
                }
                Step::RestoreRank1 => {
                    nodes[0].restart().await;
                    producer.resume(0).await;
                }
                Step::LagRank2 => producer.skip(1).await,
                Step::RestoreRank2 => producer.resume(1).await,
                Step::Finish => {}
            }
        }
        let next = steps.peek().map(|&&(at, step)| (at, step.describe()));
        screen.frame(t, &admin, &files, exporter_name, next).await;
        if steps.peek().is_none() {
            break;
        }
    }

    let head = producer.stop().await;
    let deadline = Instant::now() + CATCH_UP;
    while files.last_synced().unwrap_or(-1) < head as i64 {
        if Instant::now() > deadline {
            bail!(
                "the export did not reach block {head} within {CATCH_UP:?}; see {}",
                files.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let t = started.elapsed().as_secs();
    screen.event(t, &format!("export caught up with block {head}"));
    screen.frame(t, &admin, &files, exporter_name, None).await;
    screen::screenshot(&admin_url, &dir.join("status-page.png")).await;
    exporter.stop(Duration::from_secs(3));

    let metrics = String::from_utf8_lossy(&admin.get_ok("/metrics").await?).into_owned();
    let view = admin.view().await?;
    nodewatch.stop(Duration::from_secs(5));
    let exported = Exported::read(&files.items)?;
    let truth = screen::node_hashes(&urls, head).await?;
    Ok(screen::summary(
        &exported,
        &truth,
        head,
        &view,
        &metrics,
        exporter_name,
        &files,
    ))
}

/// The demo's nodewatch configuration: fast probes so the table moves within a second.
fn nodewatch_config(urls: &[String]) -> String {
    let mut toml = String::from(
        "# Written by `make demo`. Every key is documented in config/nodewatch.toml.\n\
         [probe]\ninterval = \"500ms\"\ntimeout = \"500ms\"\n\n",
    );
    for (i, url) in urls.iter().enumerate() {
        toml.push_str(&format!(
            "[[upstreams]]\nname = \"node-{}\"\nurl = \"{url}\"\n\n",
            i + 1
        ));
    }
    toml
}
