//! A plugin project: the directory `plughost new` creates and `plughost build` / `plughost test` read. Its
//! `plughost.toml` names the plugin and its language and holds the test cases.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The languages `plughost new` and `plughost build` know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Rust,
    Python,
    Js,
    C,
}

impl Lang {
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
            Lang::C => "c",
        }
    }
}

/// `plughost.toml` of a plugin project.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectFile {
    pub plugin: PluginSection,
    #[serde(default, rename = "test")]
    pub tests: Vec<TestCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSection {
    /// The plugin id; the component is written to `<id>.wasm` unless `output` says otherwise.
    pub id: String,
    pub lang: Lang,
    /// Output file, relative to the project.
    pub output: Option<PathBuf>,
    /// The world in `wit/` (default `plugin`); not used for Rust (the guest SDK has the world).
    pub world: Option<String>,
    /// Rust only: build for `wasm32-unknown-unknown` instead of `wasm32-wasip2`. The component then imports no
    /// WASI at all, only the capabilities the plugin calls, and a fresh instance is cheaper. std's clocks,
    /// randomness, env and files are not available, and a panic's message is reported only with the
    /// SDK's `panic-log` feature.
    #[serde(default)]
    pub lean: bool,
    /// Python: the module with the `Tools` class (default `app`). JS: the entry file (default `app.js`).
    /// C: not used (every `src/*.c` is compiled).
    pub entry: Option<String>,
}

/// One `[[test]]` case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    pub name: String,
    pub tool: String,
    #[serde(default = "empty_object")]
    pub args: toml::Value,
    #[serde(default)]
    pub grants: Vec<String>,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    pub fuel: Option<u64>,
    /// The text output must contain this.
    pub expect_text: Option<String>,
    /// The JSON output (or structured output) must contain these fields with these values.
    pub expect_json: Option<toml::Value>,
    /// The call must fail with this error kind (`invalid-arguments`, `out-of-fuel`, … or `missing-grants` when
    /// the plugin must be refused before it runs).
    pub expect_error: Option<String>,
}

fn empty_object() -> toml::Value {
    toml::Value::Table(Default::default())
}

/// A loaded project.
#[derive(Debug)]
pub struct Project {
    pub dir: PathBuf,
    pub file: ProjectFile,
}

impl Project {
    /// Finds `plughost.toml` in `dir` or its parents.
    pub fn find(dir: &Path) -> Result<Project> {
        let start = dir
            .canonicalize()
            .with_context(|| format!("no such directory {}", dir.display()))?;
        let mut d = start.as_path();
        loop {
            let f = d.join("plughost.toml");
            if f.is_file() {
                return Project::load(d);
            }
            match d.parent() {
                Some(p) => d = p,
                None => bail!(
                    "no plughost.toml in {} or above: run this in a plugin project (`plughost new NAME --lang …` \
                     makes one)",
                    start.display()
                ),
            }
        }
    }

    pub fn load(dir: &Path) -> Result<Project> {
        let path = dir.join("plughost.toml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file: ProjectFile =
            toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
        plughost::registry::check_plugin_id(&file.plugin.id)
            .map_err(|e| anyhow::anyhow!("{}: plugin id: {e}", path.display()))?;
        Ok(Project {
            dir: dir.to_path_buf(),
            file,
        })
    }

    pub fn lang(&self) -> Lang {
        self.file.plugin.lang
    }

    pub fn id(&self) -> &str {
        &self.file.plugin.id
    }

    pub fn output(&self) -> PathBuf {
        self.dir.join(
            self.file
                .plugin
                .output
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("{}.wasm", self.id()))),
        )
    }

    pub fn world(&self) -> &str {
        self.file.plugin.world.as_deref().unwrap_or("plugin")
    }

    /// Scratch space for intermediate files.
    pub fn build_dir(&self) -> PathBuf {
        self.dir.join("build")
    }
}
