//! Pinned guest toolchains, installed by plughost itself (never by hand) into one directory:
//! `$PLUGHOST_TOOLCHAINS` if set, else `<data dir>/toolchains`. The repo's scripts point it at `target/toolchains`,
//! so CI and developers install each toolchain once.
//!
//! | toolchain | what                                        | installed with                         |
//! |-----------|---------------------------------------------|----------------------------------------|
//! | python    | componentize-py (Python → component)         | `python3 -m venv` + pip, pinned         |
//! | js        | componentize-js + jco (JavaScript → component) | `npm install` from a committed lockfile |
//! | zig       | ziglang (a clang that targets wasm32-wasi)   | `python3 -m venv` + pip, pinned         |
//!
//! Rust needs only rustup's `wasm32-wasip2` target; C bindings and component wrapping are built into plughost.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use plughost::Home;

/// A guest toolchain plughost can install.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Toolchain {
    Python,
    Js,
    Zig,
}

const PYTHON_REQUIREMENTS: &str = include_str!("../../toolchains/python.txt");
const ZIG_REQUIREMENTS: &str = include_str!("../../toolchains/zig.txt");
const JS_PACKAGE: &str = include_str!("../../toolchains/js/package.json");
const JS_LOCK: &str = include_str!("../../toolchains/js/package-lock.json");

impl Toolchain {
    pub const ALL: [Toolchain; 3] = [Toolchain::Python, Toolchain::Js, Toolchain::Zig];

    pub fn name(self) -> &'static str {
        match self {
            Toolchain::Python => "python",
            Toolchain::Js => "js",
            Toolchain::Zig => "zig",
        }
    }

    /// The pinned versions, as shown to people.
    pub fn pins(self) -> &'static str {
        match self {
            Toolchain::Python => "componentize-py 0.25.1",
            Toolchain::Js => "componentize-js 0.23.0, jco 1.34.0 (npm lockfile)",
            Toolchain::Zig => "ziglang 0.17.1 (zig cc -target wasm32-wasi)",
        }
    }

    /// What decides whether an installed copy is current: the pin files themselves.
    fn stamp(self) -> String {
        let text = match self {
            Toolchain::Python => PYTHON_REQUIREMENTS.to_string(),
            Toolchain::Zig => ZIG_REQUIREMENTS.to_string(),
            Toolchain::Js => format!("{JS_PACKAGE}{JS_LOCK}"),
        };
        blake3::hash(text.as_bytes()).to_hex()[..16].to_string()
    }
}

/// Where the toolchains live.
pub fn root(home: &Home) -> PathBuf {
    match std::env::var_os("PLUGHOST_TOOLCHAINS").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => home.root().join("toolchains"),
    }
}

fn dir(home: &Home, t: Toolchain) -> PathBuf {
    root(home).join(t.name())
}

fn stamp_file(home: &Home, t: Toolchain) -> PathBuf {
    dir(home, t).join(".plughost-installed")
}

/// Whether `t` is installed at its pinned versions.
pub fn installed(home: &Home, t: Toolchain) -> bool {
    std::fs::read_to_string(stamp_file(home, t)).is_ok_and(|s| s.trim() == t.stamp())
}

/// The program that runs `t`'s compiler, once installed: (program, leading arguments).
pub fn command(home: &Home, t: Toolchain) -> Command {
    let d = dir(home, t);
    match t {
        Toolchain::Python => {
            let mut c = Command::new(d.join("bin").join("componentize-py"));
            // componentize-py reports a Python error through anyhow: with RUST_BACKTRACE set in the author's shell,
            // its Rust backtrace buries the Python traceback under ~55 lines.
            c.env("RUST_LIB_BACKTRACE", "0");
            c
        }
        Toolchain::Js => {
            let mut c = Command::new("node");
            c.arg(
                d.join("node_modules")
                    .join("@bytecodealliance")
                    .join("componentize-js")
                    .join("src")
                    .join("cli.js"),
            );
            c
        }
        Toolchain::Zig => {
            let mut c = Command::new(d.join("bin").join("python"));
            c.args(["-m", "ziglang"]);
            c
        }
    }
}

/// Installs `t` if it is missing or out of date, under a lock so that concurrent builds install it once.
pub fn ensure(home: &Home, t: Toolchain) -> Result<()> {
    if installed(home, t) {
        return Ok(());
    }
    let root = root(home);
    std::fs::create_dir_all(&root)
        .with_context(|| format!("cannot create the toolchain dir {}", root.display()))?;
    let lock_path = root.join(format!(".{}.lock", t.name()));
    let lock = File::create(&lock_path)
        .with_context(|| format!("cannot create {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("cannot lock {}", lock_path.display()))?;
    // Someone else may have installed it while we waited.
    if installed(home, t) {
        return Ok(());
    }
    let d = dir(home, t);
    eprintln!(
        "installing the {} toolchain ({}) into {} — once; later builds reuse it",
        t.name(),
        t.pins(),
        d.display()
    );
    if d.exists() {
        std::fs::remove_dir_all(&d).with_context(|| format!("cannot remove {}", d.display()))?;
    }
    std::fs::create_dir_all(&d)?;
    match t {
        Toolchain::Python => pip_install(&d, PYTHON_REQUIREMENTS)?,
        Toolchain::Zig => pip_install(&d, ZIG_REQUIREMENTS)?,
        Toolchain::Js => npm_install(&d)?,
    }
    std::fs::write(stamp_file(home, t), t.stamp())?;
    Ok(())
}

fn python() -> String {
    std::env::var("PLUGHOST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn pip_install(d: &Path, requirements: &str) -> Result<()> {
    let py = python();
    run(
        Command::new(&py).args(["-m", "venv"]).arg(d),
        "creating a Python environment for the toolchain",
        &format!(
            "`{py} -m venv` failed: plughost needs Python 3.9+ with the venv module (Debian: apt-get install \
             python3-venv; scripts/setup.sh does this)"
        ),
    )?;
    let req = d.join("requirements.txt");
    std::fs::write(&req, requirements)?;
    run(
        Command::new(d.join("bin").join("pip"))
            .args(["install", "--disable-pip-version-check", "--quiet", "-r"])
            .arg(&req),
        "pip install (the pinned toolchain)",
        "pip install failed",
    )
}

fn npm_install(d: &Path) -> Result<()> {
    std::fs::write(d.join("package.json"), JS_PACKAGE)?;
    std::fs::write(d.join("package-lock.json"), JS_LOCK)?;
    run(
        Command::new("npm")
            // `npm install` with the lockfile present installs exactly the locked versions. (`npm ci` refuses this
            // lockfile: npm 11 lists other platforms' optional binaries as missing.)
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(d),
        "npm install (the pinned toolchain)",
        "`npm install` failed: plughost needs Node.js 18+ and npm (Debian: apt-get install nodejs npm; scripts/setup.sh \
         does this)",
    )
}

/// Runs a command as a step called `doing` (a spinner on a terminal with the command's output printed above it, a
/// plain line off one); an error names the program and `what`.
pub fn run(cmd: &mut Command, doing: &str, what: &str) -> Result<()> {
    let step = plughost::progress::Step::start(doing);
    let status = step
        .run(cmd)
        .with_context(|| format!("{what}: cannot start {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{what} ({status})");
    }
    step.done();
    Ok(())
}
