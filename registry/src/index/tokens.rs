//! Scoped client tokens for the gateway. `create` draws 32 random bytes, returns the token once and keeps only its
//! blake3 hash; a token may be limited to some plugins and/or some tools, and may expire. `check` finds the token
//! by its hash. Every change is in the install history and bumps the generation. On a shared store the same rows
//! live in PostgreSQL (`index_tokens`), which every replica asks on each request.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use crate::Registry;
use crate::error::{RegistryError, Result};
use crate::units::now_secs as now;

/// What a token may see and call. `None` means no limit on that axis; both `None` is an all-access token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TokenScope {
    /// Plugin ids whose tools the token may use.
    pub plugins: Option<Vec<String>>,
    /// Namespaced tool names (`plugin__tool`) the token may use.
    pub tools: Option<Vec<String>>,
}

impl TokenScope {
    /// May a token with this scope use `tool` (namespaced) of `plugin`? A management tool (no plugin) only when
    /// named in `tools`, or when the scope is all-access.
    pub fn allows(&self, plugin: Option<&str>, tool: &str) -> bool {
        let by_plugin = match (&self.plugins, plugin) {
            (None, _) => None,
            (Some(ps), Some(p)) => Some(ps.iter().any(|x| x == p)),
            (Some(_), None) => Some(false),
        };
        let by_tool = self.tools.as_ref().map(|ts| ts.iter().any(|t| t == tool));
        match (by_plugin, by_tool) {
            (None, None) => true,
            // Both given: a tool named explicitly, or any tool of a named plugin.
            (Some(p), Some(t)) => p || t,
            (Some(p), None) => p,
            (None, Some(t)) => t,
        }
    }
}

/// A token as `tokens list` shows it (never the token itself).
#[derive(Debug, Clone, Serialize)]
pub struct TokenRecord {
    pub name: String,
    pub scope: TokenScope,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl TokenRecord {
    /// Usable now: not revoked, not expired.
    pub fn active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

/// Prefix of every token plughost makes, so one is recognisable in a config file or a secret scanner.
pub const TOKEN_PREFIX: &str = "plughost_";

fn hash(token: &str) -> Vec<u8> {
    blake3::hash(token.as_bytes()).as_bytes().to_vec()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn list_json(v: &Option<Vec<String>>) -> Option<String> {
    v.as_ref()
        .map(|v| serde_json::to_string(v).unwrap_or_else(|_| "[]".into()))
}

fn from_json(s: Option<String>) -> Option<Vec<String>> {
    s.map(|s| serde_json::from_str(&s).unwrap_or_default())
}

fn from_row(r: crate::pg::TokenRow) -> TokenRecord {
    TokenRecord {
        name: r.name,
        scope: TokenScope {
            plugins: from_json(r.plugins),
            tools: from_json(r.tools),
        },
        created_at: r.created_at,
        expires_at: r.expires_at,
        revoked_at: r.revoked_at,
    }
}

const COLUMNS: &str = "name, plugins, tools, created_at, expires_at, revoked_at";

fn record(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        name: r.get(0)?,
        scope: TokenScope {
            plugins: from_json(r.get(1)?),
            tools: from_json(r.get(2)?),
        },
        created_at: r.get(3)?,
        expires_at: r.get(4)?,
        revoked_at: r.get(5)?,
    })
}

impl Registry {
    /// Creates a token named `name` and returns it: the only time it is shown. `expires_at` is in Unix seconds.
    pub fn create_token(
        &self,
        name: &str,
        scope: &TokenScope,
        expires_at: Option<i64>,
    ) -> Result<String> {
        if !valid_name(name) {
            return Err(RegistryError::BadTokenName(name.to_string()));
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| RegistryError::Random(e.to_string()))?;
        use base64::Engine as _;
        let token = format!(
            "{TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
        );
        let detail = format!(
            "{name} plugins={} tools={} expires={}",
            list_json(&scope.plugins).unwrap_or_else(|| "all".into()),
            list_json(&scope.tools).unwrap_or_else(|| "all".into()),
            expires_at.map_or_else(|| "never".into(), |e| e.to_string())
        );
        if let Some(pg) = &self.shared {
            let row = crate::pg::TokenRow {
                name: name.to_string(),
                plugins: list_json(&scope.plugins),
                tools: list_json(&scope.tools),
                created_at: now(),
                expires_at,
                revoked_at: None,
            };
            return match pg.index_token_create(row, hash(&token), detail)? {
                true => Ok(token),
                false => Err(RegistryError::TokenExists(name.to_string())),
            };
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: bool = tx
            .query_row("SELECT 1 FROM tokens WHERE name = ?1", [name], |_| Ok(()))
            .optional()?
            .is_some();
        if exists {
            return Err(RegistryError::TokenExists(name.to_string()));
        }
        tx.execute(
            "INSERT INTO tokens (name, hash, plugins, tools, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                name,
                hash(&token),
                list_json(&scope.plugins),
                list_json(&scope.tools),
                now(),
                expires_at
            ],
        )?;
        Self::log(&tx, None, "token-create", &detail)?;
        Self::bump(&tx)?;
        tx.commit()?;
        Ok(token)
    }

    /// Every token, newest first (revoked and expired ones included).
    pub fn tokens(&self) -> Result<Vec<TokenRecord>> {
        if let Some(pg) = &self.shared {
            return Ok(pg.index_tokens()?.into_iter().map(from_row).collect());
        }
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM tokens ORDER BY created_at DESC, name"
        ))?;
        let rows = stmt.query_map([], record)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Revokes a token: it is refused from then on.
    pub fn revoke_token(&self, name: &str) -> Result<()> {
        if let Some(pg) = &self.shared {
            return match pg.index_token_revoke(name, now())? {
                None => Err(RegistryError::UnknownToken(name.to_string())),
                Some(_) => Ok(()),
            };
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
            params![name, now()],
        )?;
        if n == 0 {
            let known: bool = tx
                .query_row("SELECT 1 FROM tokens WHERE name = ?1", [name], |_| Ok(()))
                .optional()?
                .is_some();
            if !known {
                return Err(RegistryError::UnknownToken(name.to_string()));
            }
            return Ok(());
        }
        Self::log(&tx, None, "token-revoke", name)?;
        Self::bump(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// The active token `presented` is, if any (unknown, revoked and expired tokens are `None`).
    pub fn check_token(&self, presented: &str) -> Result<Option<TokenRecord>> {
        if !presented.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        if let Some(pg) = &self.shared {
            let found = pg.index_token_by_hash(hash(presented))?.map(from_row);
            return Ok(found.filter(|t| t.active(now())));
        }
        // SQLite: a token found is kept with the WAL-index header it was read under, as `any_token` keeps its
        // no. Every commit to index.db from any process changes that header, so a revocation (or any other change)
        // is seen on the very next request, and until something commits a known token costs one `pread` instead
        // of a query. Expiry is judged on every request. Unknown tokens are not kept.
        let key = hash(presented);
        let stamp = self.wal_stamp();
        if let Some(stamp) = stamp
            && let Some(t) = lock(&self.token_hits).get(&stamp, &key)
        {
            return Ok(Some(t).filter(|t| t.active(now())));
        }
        let found = self
            .conn()
            .prepare_cached(&format!("SELECT {COLUMNS} FROM tokens WHERE hash = ?1"))?
            .query_row([&key], record)
            .optional()?;
        if let (Some(stamp), Some(t)) = (stamp, &found) {
            lock(&self.token_hits).put(stamp, key, t.clone());
        }
        Ok(found.filter(|t| t.active(now())))
    }

    /// Whether any token was ever created (revoked and expired ones count): then the gateway asks every HTTP
    /// request for one, so revoking the last token does not open the gateway.
    ///
    /// On a shared store the answer is kept with the index generation it was read at, and read again once
    /// [`Registry::generation`] (which a gateway reads on every change signal) has seen a newer one: creating a
    /// token bumps the generation, so an open replica closes as soon as it hears of it (the NOTIFY, within a
    /// second), without a round trip on every request. Once a token exists the answer never changes (tokens are
    /// revoked, never deleted). A presented token is always checked against the store ([`Registry::check_token`]),
    /// so a revocation holds at once.
    pub fn any_token(&self) -> Result<bool> {
        // The lock is held only to read or store the answer, never across the `pread`, the query or the round
        // trip: every request without a token asks this, and two workers waiting on one another here cost each a
        // futex sleep and wake-up, more than the read itself.
        let kept = *lock(&self.token_state);
        // A yes is kept on either store: tokens are never deleted.
        if let Some((_, true)) = kept {
            return Ok(true);
        }
        if let Some(pg) = &self.shared {
            let seen = self
                .seen_generation
                .load(std::sync::atomic::Ordering::Acquire);
            if let Some((at, false)) = kept
                && at >= seen
            {
                return Ok(false);
            }
            let (at, any) = pg.index_token_state()?;
            let mut state = lock(&self.token_state);
            // A concurrent reader may have kept a newer answer (or a yes): keep the newest.
            if !matches!(*state, Some((then, was)) if was || then > at) {
                *state = Some((at, any));
            }
            return Ok(any);
        }
        // SQLite: asked on every request that presents no token. A no is kept with the WAL-index header it was
        // read under (`index.db-shm`'s first 48 bytes, one `pread`): every commit to index.db, from any process,
        // changes that header (its change counter), so a token the CLI creates from another process closes the
        // gateway on the very next request, and until something commits the query is not run again. The header is
        // read before the query, so a commit racing with it is seen next time. (No generation here: 0 stands in.)
        let stamp = self.wal_stamp();
        if let (Some(now), Some(then)) = (stamp, *lock(&self.token_no))
            && now == then
        {
            return Ok(false);
        }
        let any: bool = self
            .conn()
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM tokens)")?
            .query_row([], |r| r.get(0))?;
        if any {
            *lock(&self.token_state) = Some((0, true));
        } else {
            *lock(&self.token_no) = stamp;
        }
        Ok(any)
    }
}

/// Tokens a gateway has found, by hash, all read under one WAL-index header of index.db (see
/// [`Registry::check_token`]); a different header empties it. Bounded: past [`TOKEN_HITS_MAX`] it starts over.
#[derive(Debug, Default)]
pub(crate) struct TokenHits {
    stamp: Option<[u8; WAL_INDEX_HEADER]>,
    found: std::collections::HashMap<Vec<u8>, TokenRecord>,
}

const TOKEN_HITS_MAX: usize = 1024;

impl TokenHits {
    fn get(&self, stamp: &[u8; WAL_INDEX_HEADER], key: &[u8]) -> Option<TokenRecord> {
        if self.stamp.as_ref() != Some(stamp) {
            return None;
        }
        self.found.get(key).cloned()
    }

    fn put(&mut self, stamp: [u8; WAL_INDEX_HEADER], key: Vec<u8>, record: TokenRecord) {
        if self.stamp != Some(stamp) || self.found.len() >= TOKEN_HITS_MAX {
            self.found.clear();
            self.stamp = Some(stamp);
        }
        self.found.insert(key, record);
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Bytes of the first copy of SQLite's WAL-index header (sqlite.org/walformat.html): version, change counter,
/// page count, last frame, salts and checksum.
pub(crate) const WAL_INDEX_HEADER: usize = 48;

impl Registry {
    /// The current WAL-index header of index.db, or `None` if it cannot be read (then every ask runs the query).
    fn wal_stamp(&self) -> Option<[u8; WAL_INDEX_HEADER]> {
        use std::os::unix::fs::FileExt;
        let file = self
            .shm
            .get_or_init(|| std::fs::File::open(self.root.join("index.db-shm")).ok())
            .as_ref()?;
        let mut header = [0u8; WAL_INDEX_HEADER];
        file.read_exact_at(&mut header, 0).ok()?;
        // An uninitialised header (all zero) says nothing about later commits.
        (header != [0u8; WAL_INDEX_HEADER]).then_some(header)
    }
}

#[cfg(test)]
mod tests {
    use super::TokenScope;
    use crate::Registry;

    #[test]
    fn a_token_another_connection_creates_is_seen_on_the_next_ask() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gateway = Registry::open(dir.path()).expect("open");
        // Another process's registry, as the CLI's would be.
        let cli = Registry::open(dir.path()).expect("open");
        assert_eq!(gateway.any_token().ok(), Some(false));
        // Asked again with nothing committed: the kept answer, under the same WAL-index header.
        let stamp = gateway.wal_stamp();
        assert!(stamp.is_some(), "index.db-shm is readable");
        assert_eq!(gateway.any_token().ok(), Some(false));
        assert_eq!(gateway.wal_stamp(), stamp);
        cli.create_token("agent", &TokenScope::default(), None)
            .expect("create");
        assert_ne!(gateway.wal_stamp(), stamp, "a commit changes the header");
        assert_eq!(gateway.any_token().ok(), Some(true));
    }

    #[test]
    fn a_known_token_is_kept_until_index_db_changes_and_a_revocation_from_another_process_holds_at_once()
     {
        let dir = tempfile::tempdir().expect("tempdir");
        let gateway = Registry::open(dir.path()).expect("open");
        let cli = Registry::open(dir.path()).expect("open");
        let token = cli
            .create_token("agent", &TokenScope::default(), None)
            .expect("create");
        let kept = |r: &Registry| r.token_hits.lock().expect("lock").found.len();
        assert_eq!(kept(&gateway), 0);
        let first = gateway.check_token(&token).expect("check").expect("known");
        assert_eq!(kept(&gateway), 1, "a token found is kept");
        // Asked again with nothing committed: the kept record, not a query.
        let stamp = gateway.wal_stamp();
        let again = gateway.check_token(&token).expect("check").expect("known");
        assert_eq!(
            (again.name.as_str(), gateway.wal_stamp()),
            (first.name.as_str(), stamp)
        );
        // An unknown token is refused and not kept.
        assert!(
            gateway
                .check_token("plughost_unknown")
                .expect("check")
                .is_none()
        );
        assert_eq!(kept(&gateway), 1);
        // Revoked from another process: refused on the very next check.
        cli.revoke_token("agent").expect("revoke");
        assert!(gateway.check_token(&token).expect("check").is_none());
        assert!(gateway.check_token(&token).expect("check").is_none());
    }

    fn v(xs: &[&str]) -> Option<Vec<String>> {
        Some(xs.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn scopes_allow_what_they_name() {
        let all = TokenScope::default();
        assert!(all.allows(Some("a"), "a__x") && all.allows(None, "plughost__quotas"));
        let plugins = TokenScope {
            plugins: v(&["a"]),
            tools: None,
        };
        assert!(plugins.allows(Some("a"), "a__x"));
        assert!(!plugins.allows(Some("b"), "b__x"));
        assert!(!plugins.allows(None, "plughost__quotas"));
        let tools = TokenScope {
            plugins: None,
            tools: v(&["b__y", "plughost__quotas"]),
        };
        assert!(tools.allows(Some("b"), "b__y") && tools.allows(None, "plughost__quotas"));
        assert!(!tools.allows(Some("b"), "b__z"));
        let both = TokenScope {
            plugins: v(&["a"]),
            tools: v(&["b__y"]),
        };
        assert!(both.allows(Some("a"), "a__x") && both.allows(Some("b"), "b__y"));
        assert!(!both.allows(Some("b"), "b__z"));
    }
}
