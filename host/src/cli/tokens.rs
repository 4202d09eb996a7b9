//! `plughost tokens`: scoped client tokens for the HTTP gateway. A token is printed once at creation and stored
//! hashed; it may be limited to some plugins and tools and may expire. Token management is on the CLI only, never
//! on the tool plane.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use plughost::Home;
use plughost::registry::TokenScope;
use plughost::units::{now_secs, parse_duration};

use super::show::{open_registry, print_json, table, when};

#[derive(Subcommand, Debug)]
pub enum TokensCommand {
    /// Create a client token and print it (once: only its hash is kept). Without --plugins or --tools it may use
    /// every tool; with them, only those (it sees only those in tools/list).
    Create {
        name: String,
        /// Plugin ids whose tools the token may use (comma-separated or repeated).
        #[arg(long, value_delimiter = ',')]
        plugins: Vec<String>,
        /// Namespaced tools the token may use, e.g. `hello__greet` or `plughost__quotas` (comma-separated or
        /// repeated).
        #[arg(long, value_delimiter = ',')]
        tools: Vec<String>,
        /// The token stops working after this long, e.g. `30d`, `12h`.
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List tokens (names, scopes, expiry; never the tokens).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: requests carrying it are refused from now on.
    Revoke { name: String },
}

pub fn tokens(home: &Home, cmd: TokensCommand) -> Result<ExitCode> {
    let reg = open_registry(home)?;
    match cmd {
        TokensCommand::Create {
            name,
            plugins,
            tools,
            expires,
            json,
        } => {
            let expires_at = expires
                .map(|e| {
                    parse_duration(&e)
                        .context("--expires")
                        .map(|d| now_secs() + d.as_secs() as i64)
                })
                .transpose()?;
            let scope = TokenScope {
                plugins: (!plugins.is_empty()).then_some(plugins),
                tools: (!tools.is_empty()).then_some(tools),
            };
            let token = reg.create_token(&name, &scope, expires_at)?;
            if json {
                print_json(&serde_json::json!({
                    "name": name, "token": token, "scope": scope, "expires_at": expires_at,
                }))?;
            } else {
                println!("{token}");
                eprintln!(
                    "token `{name}` created ({}{}). It is shown only now: give it to the client as \
                     `Authorization: Bearer <token>`. From now on the HTTP gateway asks every request for a \
                     token (revoking them all does not open it again).",
                    scope_text(&scope),
                    expires_at
                        .map(|e| format!(", expires {}", when(e)))
                        .unwrap_or_default()
                );
            }
        }
        TokensCommand::List { json } => {
            let all = reg.tokens()?;
            if json {
                return print_json(&all).map(|_| ExitCode::SUCCESS);
            }
            if all.is_empty() {
                println!("no tokens; `plughost tokens create NAME` makes one");
                return Ok(ExitCode::SUCCESS);
            }
            let now = now_secs();
            let rows: Vec<[String; 4]> = all
                .iter()
                .map(|t| {
                    let status = match (t.revoked_at, t.expires_at) {
                        (Some(r), _) => format!("revoked {}", when(r)),
                        (None, Some(e)) if e <= now => format!("expired {}", when(e)),
                        (None, Some(e)) => format!("active until {}", when(e)),
                        (None, None) => "active".into(),
                    };
                    [
                        t.name.clone(),
                        scope_text(&t.scope),
                        when(t.created_at),
                        status,
                    ]
                })
                .collect();
            table(&["NAME", "SCOPE", "CREATED", "STATUS"], &rows);
        }
        TokensCommand::Revoke { name } => {
            reg.revoke_token(&name)?;
            println!("token `{name}` revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn scope_text(s: &TokenScope) -> String {
    let mut parts = Vec::new();
    if let Some(p) = &s.plugins {
        parts.push(format!("plugins {}", p.join(",")));
    }
    if let Some(t) = &s.tools {
        parts.push(format!("tools {}", t.join(",")));
    }
    if parts.is_empty() {
        "all tools".into()
    } else {
        parts.join("; ")
    }
}
