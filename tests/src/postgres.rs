//! A real PostgreSQL for the cluster tests: the server `scripts/postgres.sh` starts (once per test binary; reused
//! when it already answers), and a fresh database per case. `None` only when PLUGHOST_SKIP_CLUSTER=1, with a loud
//! line saying what was skipped; a server that cannot be started fails the test.

use std::process::Command;
use std::sync::OnceLock;

/// The server's URL (`postgres://postgres@127.0.0.1:PORT/plughost`), starting it the first time.
pub fn server() -> Option<String> {
    static URL: OnceLock<Option<String>> = OnceLock::new();
    URL.get_or_init(|| {
        if std::env::var("PLUGHOST_SKIP_CLUSTER").as_deref() == Ok("1") {
            return None;
        }
        if let Ok(u) = std::env::var("PLUGHOST_TEST_PG") {
            return Some(u);
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/postgres.sh");
        let out = Command::new("bash")
            .arg(script)
            .output()
            .expect("run scripts/postgres.sh");
        assert!(
            out.status.success(),
            "scripts/postgres.sh failed (PLUGHOST_SKIP_CLUSTER=1 skips the cluster tests): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let url = stdout
            .lines()
            .find_map(|l| l.strip_prefix("export PLUGHOST_TEST_PG="))
            .expect("scripts/postgres.sh prints PLUGHOST_TEST_PG");
        Some(url.to_string())
    })
    .clone()
}

/// Runs one SQL statement with psql against `url`; its output, trimmed.
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A fresh, empty database for the case `name`: its URL. `None` (after a loud line) when the cluster tests are
/// skipped explicitly.
pub fn database(name: &str) -> Option<String> {
    let Some(url) = server() else {
        eprintln!("!!! PLUGHOST_SKIP_CLUSTER=1: SKIPPING the cluster case `{name}`");
        return None;
    };
    let db = format!("t_{name}");
    psql(&url, &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
    psql(&url, &format!("CREATE DATABASE {db}"));
    let base = &url[..url.rfind('/').expect("a database in the URL")];
    Some(format!("{base}/{db}"))
}
