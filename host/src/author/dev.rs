//! `plughost dev`: the author's loop. Builds the project, installs it into a scratch data dir (a throw-away key,
//! the grants and config of the project's test cases), serves that data dir over MCP (stdio or HTTP), and watches
//! the project: when an input changes (and then stays the same for one more poll), it rebuilds and upgrades the
//! plugin, and the running gateway picks the new version up, so a connected client sees the new tool list.
//!
//! Builds and installs run as child processes of this same binary, with their stdout sent to stderr: on `--stdio`,
//! stdout carries only MCP. A build that fails is reported on stderr and the last good version stays served.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use plughost::Home;
use plughost::units::parse_duration;

use super::project::Project;

#[derive(clap::Args, Debug)]
pub struct DevArgs {
    /// The project directory (default: the current one, or the nearest parent with a plughost.toml).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Speak MCP on stdin/stdout (for Claude Code, MCP Inspector's stdio mode).
    #[arg(long, conflicts_with = "http")]
    pub stdio: bool,
    /// Serve Streamable HTTP at ADDR/mcp. Default address 127.0.0.1:8787.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8787")]
    pub http: Option<String>,
    /// How often to look for changed inputs; a change is rebuilt once it has stayed the same for one more look.
    #[arg(long, default_value = "500ms")]
    pub interval: String,
}

/// What the plugin is installed with in the scratch data dir: the grants, config and secrets of the project's test
/// cases that expect it to load (a case expecting `missing-grants` leaves grants out on purpose).
#[derive(Debug, Default)]
struct DevGrants {
    grants: Vec<String>,
    config: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
}

fn dev_grants(p: &Project) -> DevGrants {
    let mut out = DevGrants::default();
    for case in p.file.tests.iter() {
        if case.expect_error.as_deref() == Some("missing-grants") {
            continue;
        }
        for g in &case.grants {
            if !out.grants.contains(g) {
                out.grants.push(g.clone());
            }
        }
        out.config.extend(case.config.clone());
        out.secrets.extend(case.secrets.clone());
    }
    out
}

/// Runs this plughost binary with `args`, its stdout going to our stderr; an error carries what it printed.
fn plughost(home: &Path, args: &[&str], stdin: Option<&str>) -> Result<()> {
    use std::io::Write;
    use std::os::fd::AsFd;
    let exe = std::env::current_exe().context("cannot find the plughost binary")?;
    let stderr = std::io::stderr().as_fd().try_clone_to_owned()?;
    let mut child = Command::new(exe)
        .arg("--home")
        .arg(home)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::from(stderr))
        .spawn()
        .context("cannot run plughost")?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())?;
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("`plughost {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// The scratch data dir: a key that signs the builds, trusted there.
fn prepare(scratch: &Path) -> Result<()> {
    plughost(
        scratch,
        &[
            "keys",
            "generate",
            "--name",
            "dev",
            "--trust",
            "--if-missing",
        ],
        None,
    )
}

/// Builds (reusing an unchanged build), signs with the scratch key, installs or upgrades into the scratch dir.
fn build_and_install(home: &Home, scratch: &Path, p: &Project, installed: bool) -> Result<()> {
    let dir = p.dir.display().to_string();
    plughost(home.root(), &["build", "--dir", &dir], None)?;
    let wasm = p.output().display().to_string();
    let want = dev_grants(p);
    let mut sign = vec!["sign", wasm.as_str(), "--key", "dev"];
    for g in &want.grants {
        sign.extend(["--request", g.as_str()]);
    }
    plughost(scratch, &sign, None)?;
    if installed {
        plughost(
            scratch,
            &["upgrade", &wasm, "--yes", "--allow-downgrade"],
            None,
        )?;
        return Ok(());
    }
    plughost(scratch, &["install", &wasm, "--yes"], None)?;
    for (k, v) in &want.config {
        plughost(scratch, &["config", p.id(), "set", k, v], None)?;
    }
    for (k, v) in &want.secrets {
        plughost(scratch, &["config", p.id(), "set", k, "--secret"], Some(v))?;
    }
    Ok(())
}

/// A running dev loop: the scratch data dir (removed when this is dropped) and the watcher.
#[derive(Debug)]
pub struct DevSession {
    scratch: TempDir,
    /// Set when the session ends: the watcher thread stops at its next look.
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The `plughost serve …` arguments that serve the scratch dir as asked.
    pub serve_argv: Vec<String>,
}

impl DevSession {
    /// The scratch data dir, to serve.
    pub fn home(&self) -> Home {
        Home::at(self.scratch.path())
    }
}

impl Drop for DevSession {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Builds and installs the project into a scratch data dir and starts watching it; the caller serves
/// [`DevSession::home`] with [`DevSession::serve_argv`].
pub fn start(home: &Home, args: DevArgs) -> Result<DevSession> {
    if !args.stdio && args.http.is_none() {
        bail!(
            "choose a transport: `plughost dev --stdio` or `plughost dev --http [127.0.0.1:8787]`"
        );
    }
    let interval = parse_duration(&args.interval).context("--interval")?;
    let project = Project::find(&args.dir)?;
    let scratch = tempfile_dir()?;
    prepare(scratch.path())?;
    build_and_install(home, scratch.path(), &project, false)?;
    let mut seen = super::cache::inputs_digest(&project);
    eprintln!(
        "plughost dev: serving {} from a scratch data dir; watching {} (every {})",
        project.id(),
        project.dir.display(),
        plughost::units::human_duration(interval)
    );

    let watch_home = Home::at(home.root());
    let watch_scratch = scratch.path().to_path_buf();
    let dir = project.dir.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(interval);
            if stopped.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            let Ok(p) = Project::load(&dir) else {
                continue;
            };
            let now = super::cache::inputs_digest(&p);
            if now == seen {
                continue;
            }
            // Debounce: an editor writes in several steps; rebuild once the inputs stayed the same for one look.
            std::thread::sleep(interval);
            if super::cache::inputs_digest(&p) != now {
                continue;
            }
            eprintln!("plughost dev: {} changed, rebuilding", dir.display());
            match build_and_install(&watch_home, &watch_scratch, &p, true) {
                Ok(()) => eprintln!("plughost dev: serving the new build"),
                Err(e) => eprintln!("plughost dev: {e:#}; still serving the last good build"),
            }
            seen = super::cache::inputs_digest(&p);
        }
    });

    let mut serve = vec![
        "serve".to_string(),
        "--watch-interval".into(),
        "200ms".into(),
    ];
    match &args.http {
        Some(addr) => serve.extend(["--http".to_string(), addr.clone()]),
        None => serve.push("--stdio".into()),
    }
    Ok(DevSession {
        scratch,
        stop,
        serve_argv: serve,
    })
}

/// A temporary directory that is removed when dev ends.
fn tempfile_dir() -> Result<TempDir> {
    let base = std::env::temp_dir();
    for n in 0..100u32 {
        let path = base.join(format!("plughost-dev-{}-{n}", std::process::id()));
        if std::fs::create_dir(&path).is_ok() {
            return Ok(TempDir(path));
        }
    }
    bail!("cannot create a scratch dir in {}", base.display())
}

/// Removes its directory when dropped.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
