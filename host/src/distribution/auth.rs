//! Registry credentials: `plughost registry login` keeps them in the data dir (`registries.json`, mode 0600);
//! without one there, Docker's `config.json` (`$DOCKER_CONFIG` or `~/.docker`) is read: its inline `auths`, else
//! the credential helper it names (`credHelpers`, `credsStore`: `docker-credential-<name> get`). A password is never printed, logged or put in an error.

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
        let Some(config) = docker_config().and_then(|p| std::fs::read(p).ok()) else {
            return Ok(None);
        };
        if let Some(c) = docker_auth(&config, registry) {
            return Ok(Some(c));
        }
        Ok(docker_helper(&config, registry).and_then(|h| run_helper(&h, registry)))
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

/// The credential helper Docker's config names for `registry`: `credHelpers[registry]`, else `credsStore`.
fn docker_helper(json: &[u8], registry: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(json).ok()?;
    let name = v
        .get("credHelpers")
        .and_then(|h| h.get(registry))
        .or_else(|| v.get("credsStore"))?
        .as_str()?;
    // A helper is a program name on PATH, `docker-credential-<name>`: nothing that could name another path.
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        .then(|| format!("docker-credential-{name}"))
}

/// Runs `helper get` with the registry on stdin (Docker's credential-helper protocol), for at most 10 s and 64 KiB
/// of output; its stderr is dropped (it might echo what it was given). `None` when it has nothing or fails.
fn run_helper(helper: &str, registry: &str) -> Option<Credentials> {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    let mut child = Command::new(helper)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let _ = child.stdin.take()?.write_all(registry.as_bytes());
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = (&mut stdout).take(64 << 10).read_to_end(&mut out);
        out
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(Some(_)) | Err(_) => return None,
            Ok(None) if std::time::Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
    let out = reader.join().ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out).ok()?;
    Some(Credentials {
        username: v.get("Username")?.as_str()?.to_string(),
        password: v.get("Secret")?.as_str()?.to_string(),
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

    #[test]
    fn docker_credential_helpers() {
        let j = br#"{"credsStore":"desktop","credHelpers":{"gcr.io":"gcloud","x":"../evil"}}"#;
        assert_eq!(
            docker_helper(j, "gcr.io").as_deref(),
            Some("docker-credential-gcloud")
        );
        assert_eq!(
            docker_helper(j, "other").as_deref(),
            Some("docker-credential-desktop")
        );
        assert_eq!(docker_helper(j, "x"), None);
    }
}
