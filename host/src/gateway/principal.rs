//! Who a request authenticated as (a leaf both `auth.rs` and `oauth.rs` build on): the ledger's principal and, for
//! a scoped token or an OAuth caller, what it may use.

use std::sync::Arc;

use plughost_registry::TokenScope;

/// An authenticated caller: its name (the ledger's principal) and, for a scoped token, what it may use.
#[derive(Debug, Clone)]
pub struct Principal {
    pub name: Arc<str>,
    /// `None` for all-access (the operator's token, or a client token without limits).
    pub scope: Option<TokenScope>,
    /// Speaks MCP only: `/metrics` and `/ready` show every plugin (scoped client tokens, OAuth callers).
    pub mcp_only: bool,
}

impl Principal {
    /// May this principal use `tool` (namespaced) of `plugin` (`None` for a management tool)?
    pub fn allows(&self, plugin: Option<&str>, tool: &str) -> bool {
        self.scope.as_ref().is_none_or(|s| s.allows(plugin, tool))
    }
}
