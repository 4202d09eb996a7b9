//! Registry credentials: `plughost registry login` keeps them in the data dir (`registries.json`, mode 0600);
//! without one there, Docker's `config.json` (`$DOCKER_CONFIG` or `~/.docker`) is read (its inline `auths`;
//! credential helpers are not run). A password is never printed, logged or put in an error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;

use super::types::DistError;

/// A user name and password (or token) for one registry. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct StoreFile {
    #[serde(default)]
    auths: BTreeMap<String, Credentials>,
}

/// The data dir's credentials file.
#[derive(Debug, Clone)]
pub struct CredentialsStore {
    path: PathBuf,
}

impl CredentialsStore {
    pub fn at(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join("registries.json"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, message: impl std::fmt::Display) -> DistError {
        DistError::Credentials {
            path: self.path.display().to_string(),
            message: message.to_string(),
        }
    }

    fn read(&self) -> Result<StoreFile, DistError> {
        match std::fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| self.err(format!("not a credentials file (line {})", e.line()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StoreFile::default()),
            Err(e) => Err(self.err(e)),
        }
    }

    fn write(&self, file: &StoreFile) -> Result<(), DistError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.err(e))?;
        }
        let text = serde_json::to_vec_pretty(file).map_err(|e| self.err(e))?;
        let tmp = self.path.with_extension("json.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| self.err(e))?;
        f.write_all(&text).map_err(|e| self.err(e))?;
        f.sync_all().map_err(|e| self.err(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.err(e))
    }

    /// Stores (replaces) the credentials for `registry`.
    pub fn login(&self, registry: &str, creds: Credentials) -> Result<(), DistError> {
        let mut file = self.read()?;
        file.auths.insert(registry.to_string(), creds);
        self.write(&file)
    }

    /// Forgets `registry`'s credentials; false when there were none.
    pub fn logout(&self, registry: &str) -> Result<bool, DistError> {
        let mut file = self.read()?;
        let had = file.auths.remove(registry).is_some();
        if had {
            self.write(&file)?;
        }
        Ok(had)
    }

    /// The credentials for `registry`: the data dir's, else Docker's config.json, else none (anonymous).
    pub fn lookup(&self, registry: &str) -> Result<Option<Credentials>, DistError> {
        if let Some(c) = self.read()?.auths.remove(registry) {
            return Ok(Some(c));
        }
        Ok(docker_config()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| docker_auth(&b, registry)))
    }
}

fn docker_config() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(d) => Some(PathBuf::from(d).join("config.json")),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json")),
    }
}

/// `auths[registry]` of a Docker config.json: `auth` (base64 of `user:password`) or `username`/`password`.
fn docker_auth(json: &[u8], registry: &str) -> Option<Credentials> {
    let v: serde_json::Value = serde_json::from_slice(json).ok()?;
    let entry = v.get("auths")?.get(registry)?;
    if let Some(a) = entry.get("auth").and_then(|a| a.as_str()) {
        let decoded = base64::engine::general_purpose::STANDARD.decode(a).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (u, p) = text.split_once(':')?;
        return Some(Credentials {
            username: u.to_string(),
            password: p.to_string(),
        });
    }
    Some(Credentials {
        username: entry.get("username")?.as_str()?.to_string(),
        password: entry.get("password")?.as_str()?.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_auths() {
        let j = br#"{"auths":{"r.example:5000":{"auth":"dTpwOnE="},"b":{"username":"x","password":"y"}}}"#;
        let c = docker_auth(j, "r.example:5000").expect("inline auth");
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p:q"));
        assert_eq!(docker_auth(j, "b").expect("fields").password, "y");
        assert!(docker_auth(j, "other").is_none());
        assert!(!format!("{c:?}").contains("p:q"));
    }
}
