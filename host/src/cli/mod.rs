//! Command-line interface: the clap tree, `main`, the dispatch to each command's module (call, keys, publish,
//! fetch, distribute, outdated, plugins, usage, audit, ledger, serve, ship; the authoring commands are in `crate::author`), and the helpers the commands
//! share are in `show.rs`. anyhow lives here only; the library speaks typed errors.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};
use plughost::Home;

mod audit;
mod call;
mod distribute;
mod fetch;
mod keys;
mod ledger;
mod outdated;
mod plugins;
mod publish;
mod serve;
mod ship;
mod show;
mod store;
mod tokens;
mod usage;

#[derive(Parser, Debug)]
#[command(
    name = "plughost",
    version,
    about = "Run WebAssembly component plugins under grants, quotas and a metered sandbox"
)]
struct Cli {
    /// Data dir (compile cache, state, config). Default: $PLUGHOST_HOME, else $XDG_DATA_HOME/plughost.
    #[arg(long, global = true)]
    home: Option<PathBuf>,
    /// A shared store for a cluster of replicas: postgres://USER@HOST:PORT/DATABASE (see README, "Cluster").
    /// Default: none (the data dir's SQLite files).
    #[arg(long, global = true, env = "PLUGHOST_STORE", value_name = "URL")]
    store: Option<String>,
    /// The key secrets in the shared store are sealed with: a file of 64 hex digits (`plughost store keygen FILE`).
    /// Every replica and operator that sets or serves secrets needs it; it is never stored in the database.
    #[arg(long, global = true, env = "PLUGHOST_STORE_KEY", value_name = "FILE")]
    store_key: Option<PathBuf>,
    /// More host logging on stderr (-v, -vv).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show what a component is: contract version, tools and schemas, the capabilities it needs, digest, size.
    Inspect {
        /// A .wasm component.
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Call one tool of an installed plugin (by id) or of a .wasm file, and print its result and the call report.
    Call(Box<call::CallArgs>),
    /// Manage publisher keys: generate, trust, revoke, list.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Scoped client tokens for the HTTP gateway: create (printed once), list, revoke.
    #[command(subcommand)]
    Tokens(tokens::TokensCommand),
    /// Sign a component: its digest plus the id, version and capabilities it declares.
    Sign(publish::SignArgs),
    /// Verify, approve and install a signed component, from a file or an OCI registry (oci://…).
    Install(publish::InstallArgs),
    /// Install a new version of an installed plugin (a file, oci://…, or ID: the newest at its source); shows the
    /// capability diff, new capabilities need approval.
    Upgrade(publish::InstallArgs),
    /// Push a component and its signature to an OCI registry as a Wasm OCI artifact.
    Push(distribute::PushArgs),
    /// Credentials for OCI registries: login, logout.
    #[command(subcommand)]
    Registry(distribute::RegistryCommand),
    /// Installed plugins with a newer version (or a moved tag) at the registry they were installed from.
    Outdated(outdated::OutdatedArgs),
    /// Go back to the version that was current before this one (with the grants it had); each rollback pops one.
    Rollback { id: String },
    /// Remove an installed plugin, its config, secrets and state.
    Remove {
        id: String,
        /// Keep the plugin's state for the next plugin installed under this id.
        #[arg(long)]
        keep_state: bool,
    },
    /// List installed plugins.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one installed plugin: status, publisher, grants, limits, config, tools, versions.
    Info {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Show what a plugin declared and what is granted.
    Grants {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Grant capabilities to an installed plugin (operator only; running gateways pick it up without restart).
    Grant {
        id: String,
        #[arg(required = true, value_name = "GRANT")]
        grants: Vec<String>,
    },
    /// Revoke capabilities (by capability name or grant) from an installed plugin.
    Revoke {
        id: String,
        #[arg(required = true, value_name = "CAPABILITY")]
        capabilities: Vec<String>,
    },
    /// A plugin's settings and secrets.
    Config {
        id: String,
        #[command(subcommand)]
        command: plugins::ConfigCommand,
    },
    /// Show or set a plugin's quotas: fuel, memory, timeout, concurrency per call; calls and token budget per window.
    Limits(usage::LimitsArgs),
    /// What each plugin may use and what it used: fuel, memory, deadline, concurrency, contracts in their window.
    Quota(usage::QuotaArgs),
    /// Calls, errors, latency, fuel and memory per plugin and tool over a period, from the ledger.
    Stats(usage::StatsArgs),
    /// Enable a disabled plugin.
    Enable { id: String },
    /// Disable a plugin without removing it.
    Disable { id: String },
    /// Create a plugin project: WIT wired, one example tool, a README, test cases (rust, python, js, c).
    New(crate::author::new::NewArgs),
    /// Build the plugin project here (or --dir) into <id>.wasm, whatever its language.
    Build(crate::author::build::BuildArgs),
    /// Build, then run the [[test]] cases of the project's plughost.toml against the component.
    Test(crate::author::test::TestArgs),
    /// The author's loop: build, install into a scratch data dir with the test cases' grants, serve over MCP
    /// (`--stdio` or `--http`), and rebuild when the project changes.
    Dev(crate::author::dev::DevArgs),
    /// Wrap a core wasm32-wasi module into a component (the WASI preview1 adapter is built in).
    Componentize(crate::author::componentize::ComponentizeArgs),
    /// The pinned guest toolchains `plughost build` uses: install, list.
    #[command(subcommand)]
    Toolchain(crate::author::ToolchainCommand),
    /// A plugin's documentation: what it does, the capabilities it asks for, each tool and its arguments.
    Docs { id: String },
    /// What was installed, upgraded, granted and revoked, and when.
    History {
        id: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The audit trail: every operator action, refused install and denied capability call, hash-chained.
    /// `--verify` walks the chain.
    Audit(audit::AuditArgs),
    /// The usage ledger: every call and plugin event, hash-chained. show, verify, export, checkpoint.
    #[command(subcommand)]
    Ledger(ledger::LedgerCommand),
    /// The shared store of a cluster: migrate a data dir into it; make the key its secrets are sealed with.
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Serve every enabled plugin's tools over MCP: `--stdio`, or `--http [127.0.0.1:8787]`.
    Serve(serve::ServeArgs),
    /// Print a shell completion script: `plughost completions bash > /etc/bash_completion.d/plughost`.
    Completions {
        #[arg(value_enum)]
        shell: ship::CompletionShell,
    },
    /// Print the man page (roff): `plughost man > /usr/local/share/man/man1/plughost.1`.
    Man,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    if matches!(cli.command, Command::Serve(_)) {
        // Before the runtime and its threads exist, and before most of what the process allocates.
        serve::no_huge_pages();
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // tokio reads TOKIO_WORKER_THREADS itself and panics on a value it cannot use; read it here instead.
    if let Some(v) = std::env::var_os("TOKIO_WORKER_THREADS") {
        match v.to_str().and_then(|v| v.trim().parse::<usize>().ok()) {
            Some(n) if n > 0 => {
                builder.worker_threads(n);
            }
            _ => {
                eprintln!(
                    "error: TOKIO_WORKER_THREADS must be a number of threads above 0, not {v:?}"
                );
                return ExitCode::from(2);
            }
        }
    }
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        // A writer to stdout (`ledger export`) whose reader went away: quiet, like `println!`.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::from(crate::CLOSED_STDOUT)
        }
        Err(e) => {
            eprintln!("error: {}", plughost::said::once(e.chain()));
            ExitCode::from(2)
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "plugin=info,plughost=warn,wasmtime=warn",
        1 => "plugin=debug,plughost=info,wasmtime=warn",
        _ => "plugin=trace,plughost=debug,wasmtime=info",
    };
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("PLUGHOST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // wasmtime-wasi logs every byte a guest writes to its stderr at debug level, before plughost's log capability
    // has redacted it: a secret would leave through the host's own log. Held at info whatever the operator asks
    // for; what a guest writes to stderr still reaches the log, redacted, as the plugin's `stderr:` lines.
    for quiet in [
        "wasmtime_wasi::p2::write_stream=info",
        "wasmtime_wasi::p3=info",
    ] {
        if let Ok(d) = quiet.parse() {
            filter = filter.add_directive(d);
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour())
        .with_target(true)
        .try_init();
}

/// `plughost dev`: the loop is the author module's; serving the scratch data dir is `serve`'s.
async fn dev(home: &Home, args: crate::author::dev::DevArgs) -> Result<ExitCode> {
    use clap::{Args as _, FromArgMatches as _};
    let session = crate::author::dev::start(home, args)?;
    let matches = serve::ServeArgs::augment_args(clap::Command::new("serve"))
        .try_get_matches_from(&session.serve_argv)?;
    let serve_args = serve::ServeArgs::from_arg_matches(&matches)?;
    let served = serve::serve(&session.home(), serve_args).await;
    eprintln!("plughost dev: the gateway stopped; removing the scratch data dir");
    served
}

/// Whether stderr gets colour: a terminal, and no `NO_COLOR` (https://no-color.org: set and not empty) — for the
/// host's log lines and the plugins' alike, which go through the same subscriber.
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let home = cli.home.map(Home::at).unwrap_or_else(Home::from_env);
    show::set_store(cli.store.clone(), cli.store_key.clone());
    match cli.command {
        Command::Inspect { file, json } => call::inspect(&home, &file, json).await,
        Command::Call(args) => call::call(&home, *args).await,
        Command::Keys(cmd) => keys::keys(&home, cmd),
        Command::Tokens(cmd) => tokens::tokens(&home, cmd),
        Command::Sign(args) => publish::sign(&home, args).await,
        Command::Install(args) => publish::install(&home, args, false).await,
        Command::Upgrade(args) => publish::install(&home, args, true).await,
        Command::Push(args) => distribute::push(&home, args).await,
        Command::Registry(cmd) => distribute::registry(&home, cmd),
        Command::Outdated(args) => outdated::outdated(&home, args).await,
        Command::Rollback { id } => plugins::rollback(&home, &id),
        Command::Remove { id, keep_state } => plugins::remove(&home, &id, keep_state),
        Command::List { json } => plugins::list(&home, json),
        Command::Info { id, json } => plugins::info(&home, &id, json),
        Command::Grants { id, json } => plugins::grants(&home, &id, json),
        Command::Grant { id, grants } => plugins::grant(&home, &id, &grants),
        Command::Revoke { id, capabilities } => plugins::revoke(&home, &id, &capabilities),
        Command::Config { id, command } => plugins::config(&home, &id, command),
        Command::Limits(args) => usage::limits(&home, args),
        Command::Quota(args) => usage::quota(&home, args),
        Command::Stats(args) => usage::stats(&home, args),
        Command::Enable { id } => plugins::set_enabled(&home, &id, true),
        Command::Disable { id } => plugins::set_enabled(&home, &id, false),
        Command::Docs { id } => plugins::docs(&home, &id),
        Command::History { id, json } => plugins::history(&home, id.as_deref(), json),
        Command::Audit(args) => audit::audit(&home, args),
        Command::Serve(args) => serve::serve(&home, args).await,
        Command::Ledger(cmd) => match cli.store.as_deref() {
            Some(url) => store::ledger(&home, url, cmd),
            None => ledger::ledger(&home, cmd),
        },
        Command::Store(cmd) => store::store(&home, cli.store.as_deref(), cmd),
        Command::New(args) => crate::author::new::run(args),
        Command::Build(args) => crate::author::cache::run_build(&home, args),
        Command::Test(args) => crate::author::test::run(&home, args).await,
        Command::Componentize(args) => crate::author::componentize::run(args),
        Command::Toolchain(cmd) => crate::author::toolchain(&home, cmd),
        Command::Dev(args) => dev(&home, args).await,
        Command::Completions { shell } => ship::completions(Cli::command(), shell),
        Command::Man => ship::man(Cli::command()),
    }
}
