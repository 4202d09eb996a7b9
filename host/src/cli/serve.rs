//! `plughost serve`: the MCP gateway over stdio or Streamable HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use plughost::gateway::Gateway;
use plughost::gateway::http::{HttpOptions, serve as serve_http};
use plughost::gateway::mcp::{DEFAULT_PAGE_SIZE, McpServer};
use plughost::gateway::oauth::OAuth;
use plughost::units::{parse_bytes, parse_duration};
use plughost::{Home, Host};
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Speak MCP on stdin/stdout (for Claude Desktop, Claude Code). Logs go to stderr; exits when stdin closes.
    #[arg(long, conflicts_with = "http")]
    stdio: bool,
    /// Serve Streamable HTTP at ADDR/mcp, with /health, /ready and /metrics. Default address 127.0.0.1:8787.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8787")]
    http: Option<SocketAddr>,
    /// A file holding the bearer token every HTTP request must carry (except /health).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Also accept requests from this browser Origin, e.g. https://app.example.com:443 (repeatable).
    /// Loopback origins are always accepted; requests without an Origin header pass.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// Also accept this Host header (repeatable); needed when binding a non-loopback address behind a name.
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_hosts: Vec<String>,
    /// Largest accepted HTTP request body.
    #[arg(long, default_value = "4MiB")]
    max_body: String,
    /// Most live HTTP sessions (2025-11-25 clients); an initialize beyond it gets 503 and a JSON-RPC error.
    #[arg(long, default_value_t = plughost::gateway::http::DEFAULT_MAX_SESSIONS)]
    max_sessions: usize,
    /// An HTTP session with no traffic for this long is closed (by twice this when its last calls took the fast path).
    #[arg(long, default_value = "5m")]
    session_idle: String,
    /// Tools per tools/list page.
    #[arg(long, default_value_t = DEFAULT_PAGE_SIZE)]
    page_size: usize,
    /// Tasks (of long-running tools) one principal may hold at once.
    #[arg(long, default_value_t = 32)]
    max_tasks_per_principal: usize,
    /// Largest result a task keeps; a bigger one fails the task.
    #[arg(long, default_value = "4MiB")]
    max_task_result: String,
    /// How often to look for installs, upgrades and grant changes.
    #[arg(long, default_value = "500ms")]
    watch_interval: String,
    /// Do not prepare each plugin's next instance between calls: every call instantiates while its caller waits.
    /// Saves one idle instance per called plugin (memory, a pool slot) at the cost of latency after a pause.
    #[arg(long)]
    no_standby: bool,
    /// Guest memory all running calls may reserve at once (each reserves its plugin's memory cap); a call that
    /// does not fit is refused as busy. Default: half the machine's memory (or of the cgroup's limit).
    #[arg(long, value_name = "SIZE")]
    memory_budget: Option<String>,
    /// Accept JWT access tokens from this OAuth issuer (its `iss`); named in the protected resource metadata.
    /// Scopes: `tools` (every tool), `plugin:<id>`, `tool:<plugin__tool>`.
    #[arg(long, value_name = "URL", requires = "oauth_jwks")]
    oauth_issuer: Option<String>,
    /// The issuer's JSON Web Key Set: a file, or an http(s) URL (read again for an unknown key id, at most every 30 s).
    #[arg(long, value_name = "FILE|URL", requires = "oauth_issuer")]
    oauth_jwks: Option<String>,
    /// The `aud` a token must carry. Default: the URL the request came to, http://<Host>/mcp.
    #[arg(long, value_name = "URL", requires = "oauth_issuer")]
    oauth_audience: Option<String>,
}

/// A long-running gateway's heap in 4 KiB pages on any kernel. mimalloc is built with `no_thp` (see `main.rs`), which
/// stops it asking for transparent huge pages; on a kernel whose THP mode is `always` the kernel gives them anyway,
/// and the heap's RSS moves in 2 MiB steps (measured with the mode switched to `always`: ~32 MiB of huge pages and
/// +9 MiB over the RSS bench, against 6 MiB, taken before `main` ran, and +3 MiB with this). `PR_SET_THP_DISABLE` is
/// per process and inherited by children (`serve` starts none). `MIMALLOC_ALLOW_THP=1` keeps huge pages, as it would
/// for mimalloc. Called first thing for `serve`, before the async runtime and its threads exist.
pub(super) fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none_or(|v| v != "1")
        && let Err(e) = rustix::thread::disable_transparent_huge_pages(true)
    {
        tracing::debug!("transparent huge pages left as they are: {e}");
    }
}

pub async fn serve(home: &Home, args: ServeArgs) -> Result<ExitCode> {
    if !args.stdio && args.http.is_none() {
        bail!(
            "choose a transport: `plughost serve --stdio` or `plughost serve --http [127.0.0.1:8787]`"
        );
    }
    let watch = parse_duration(&args.watch_interval).context("--watch-interval")?;
    // Each start-up step's cost, on stderr with -v.
    let step = std::time::Instant::now();
    let took = |what: &str, since: std::time::Instant| {
        tracing::info!(ms = since.elapsed().as_secs_f64() * 1e3, "start-up: {what}");
        std::time::Instant::now()
    };
    let registry = Arc::new(super::show::open_registry(home)?);
    let shared_store = registry.shared().cloned();
    let mut host = match registry.shared() {
        Some(pg) => Host::open_shared(home, pg.clone())?,
        None => Host::open(home)?,
    };
    let step = took("engine, compile cache and state store", step);
    if args.no_standby {
        host = host.without_standby();
    }
    if let Some(b) = &args.memory_budget {
        host.set_memory_budget(parse_bytes(b).context("--memory-budget")?);
    }
    tracing::info!(
        budget = %plughost::units::human_bytes(host.memory_budget().total()),
        "guest-memory budget"
    );
    let step = took("registry", step);
    let catalog = Arc::new(plughost::Catalog::open(host, registry).await?);
    // A call is acknowledged once its entry is in the ledger's spool (one `write`); a thread moves the spool into
    // ledger.db in batches. Without one (a read-only ledger, say) every call commits its own entry, and the ledger's
    // check before each call refuses what cannot be recorded.
    if let Err(e) = catalog.ledger().spool() {
        tracing::warn!("the ledger's spool is off, each call commits its own entry: {e}");
    }
    let step = took("ledger and plugins (per plugin: `loaded` lines)", step);
    // `[ledger.archive]` in plughost.toml: old entries move to signed archives on a thread of their own.
    let settings = plughost::settings::SettingsFile::load(&home.config_file())
        .with_context(|| format!("{}", home.config_file().display()))?;
    if shared_store.is_some()
        && settings
            .archive
            .as_ref()
            .is_some_and(|a| a.max_bytes.is_some())
    {
        anyhow::bail!(
            "[ledger.archive] in {}: max_size is not supported on a shared store (its table does not shrink as \
             entries are archived); use older_than",
            home.config_file().display()
        );
    }
    if let Some(cfg) = settings.archive {
        let keys = home.clone();
        let name = cfg.key.clone();
        plughost::retention::spawn_auto_archive(
            catalog.ledger().ledger(),
            shared_store,
            cfg,
            home.root().to_path_buf(),
            move || {
                super::show::open_registry(&keys)
                    .and_then(|r| Ok(r.signing_key(&name)?))
                    .map_err(|e| e.to_string())
            },
        )
        .context("cannot start the ledger archive thread")?;
    }
    let gateway = Gateway::open(catalog).await?;
    took("tool index (schemas compiled)", step);
    let index = gateway.index();
    tracing::info!(
        tools = index.tools.len(),
        not_loaded = index.problems.len(),
        "plughost gateway ready"
    );
    let _watcher = gateway.spawn_watcher(watch.max(Duration::from_millis(50)));
    let _listener = gateway
        .catalog()
        .registry()
        .shared()
        .map(|pg| gateway.spawn_listener(pg.subscribe()));

    if args.max_tasks_per_principal == 0 {
        bail!("--max-tasks-per-principal must be at least 1");
    }
    let task_limits = plughost::gateway::tasks::TaskLimits {
        per_principal: args.max_tasks_per_principal,
        max_result_bytes: usize::try_from(
            parse_bytes(&args.max_task_result).context("--max-task-result")?,
        )
        .context("--max-task-result")?,
        ..Default::default()
    };
    if args.stdio {
        let server = McpServer::new(gateway)
            .with_page_size(args.page_size)
            .with_task_limits(task_limits);
        let reason = plughost::gateway::stdio::serve_process_stdio(server).await?;
        tracing::info!(?reason, "stdio session ended");
        return Ok(ExitCode::SUCCESS);
    }

    let addr = args.http.expect("checked above");
    let mut opts = HttpOptions::for_addr(addr, &args.allow_origins, &args.allow_hosts);
    opts.max_body_bytes = usize::try_from(parse_bytes(&args.max_body).context("--max-body")?)
        .context("--max-body")?;
    opts.page_size = args.page_size.max(1);
    opts.task_limits = task_limits;
    if args.max_sessions == 0 {
        bail!("--max-sessions must be at least 1");
    }
    opts.max_sessions = args.max_sessions;
    opts.session_idle = parse_duration(&args.session_idle).context("--session-idle")?;
    opts.token = read_token(args.token_file.as_deref())?;
    if let (Some(issuer), Some(jwks)) = (args.oauth_issuer, args.oauth_jwks) {
        let oauth = OAuth::open(issuer, args.oauth_audience, jwks).await?;
        opts.oauth = Some(Arc::new(oauth));
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    if !bound.ip().is_loopback() && opts.token.is_none() && opts.oauth.is_none() {
        tracing::warn!(
            "listening on {bound}, which is not loopback, without a bearer token: anyone who can reach it can call tools"
        );
    }
    // One line on stderr so people (and scripts) know where to connect.
    eprintln!(
        "plughost: MCP at http://{bound}/mcp ({} plugin tools, and plughost's own {}){}",
        gateway.index().tools.len(),
        plughost::gateway::management_tools().len(),
        match (opts.token.is_some(), opts.oauth.is_some()) {
            (_, true) => ", bearer token or OAuth access token required",
            (true, false) => ", bearer token required",
            (false, false) => "",
        }
    );
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        stop_signal().await;
        on_signal.cancel();
    });
    serve_http(gateway, listener, opts, shutdown)
        .await
        .context("HTTP gateway")?;
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C, or SIGTERM (how a service manager stops a service): either stops the HTTP gateway gracefully.
async fn stop_signal() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        return;
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// The bearer token from `--token-file`, else `$PLUGHOST_TOKEN`. Empty means none.
fn read_token(file: Option<&std::path::Path>) -> Result<Option<String>> {
    let raw = match file {
        Some(f) => std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the token file {}", f.display()))?,
        None => std::env::var("PLUGHOST_TOKEN").unwrap_or_default(),
    };
    let token = raw.trim().to_string();
    if file.is_some() && token.is_empty() {
        bail!("the token file is empty");
    }
    Ok((!token.is_empty()).then_some(token))
}
