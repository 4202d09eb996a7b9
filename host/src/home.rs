//! The data dir: `$PLUGHOST_HOME` when set, else `$XDG_DATA_HOME/plughost`, else `~/.local/share/plughost`.

use std::path::{Path, PathBuf};

/// The data dir and the well-known paths in it.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// Resolves the data dir from the environment (nothing is created yet).
    pub fn from_env() -> Self {
        let root = if let Some(h) = std::env::var_os("PLUGHOST_HOME").filter(|v| !v.is_empty()) {
            PathBuf::from(h)
        } else if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            PathBuf::from(x).join("plughost")
        } else if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            PathBuf::from(h).join(".local/share/plughost")
        } else {
            PathBuf::from(".plughost")
        };
        Home { root }
    }

    pub fn at(root: impl Into<PathBuf>) -> Self {
        Home { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    /// Precompiled components, one folder per engine compatibility hash.
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }
    /// The plugins' key/value state.
    pub fn state_db(&self) -> PathBuf {
        self.root.join("state.db")
    }
    /// The operator's config file (grants, limits, settings per plugin).
    pub fn config_file(&self) -> PathBuf {
        self.root.join("plughost.toml")
    }

    /// Creates the data dir (mode 0700 on Unix: it holds secrets and state).
    pub fn ensure(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.root)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
}
