//! The operator page at `/ui`: a read-only, server-rendered view of the plugins, their grants and quotas, the
//! calls in the ledger (live over SSE) and the ledger's head. Every asset is embedded in the binary; pages carry a
//! strict Content-Security-Policy and no inline script. Nothing here writes: grants, installs and limits stay on the
//! CLI.
//!
//! By responsibility: `guard` (Host/Origin checks, the bearer token or a session cookie, security headers),
//! `session` (the login form and the signed cookie), `state` (what they share), `html` (escaping and the page frame), `assets` (CSS and JS),
//! and one module per view (plugins, quotas, calls with live, charts, ledger).

mod assets;
mod calls;
mod charts;
mod guard;
mod html;
mod ledger;
mod live;
mod plugins;
mod quotas;
mod session;
mod state;

use std::sync::Arc;

use axum::Router;
use axum::response::Redirect;
use axum::routing::get;
use plughost_registry::ledger::Ledger;

use super::Gateway;
use state::{PageLedger, Ui};

/// What the page is served with: the gateway's bearer token (if any) and the `Host` and `Origin` values it accepts.
#[derive(Debug, Clone, Copy)]
pub struct UiOptions<'a> {
    pub token: Option<&'a str>,
    pub allowed_hosts: &'a [String],
    pub allowed_origins: &'a [String],
}

/// The `/ui` routes, each view behind the token or a session cookie.
pub fn router(
    gateway: Arc<Gateway>,
    opts: UiOptions<'_>,
    shutdown: tokio_util::sync::CancellationToken,
) -> Router {
    let dir = gateway
        .catalog()
        .ledger()
        .ledger()
        .path()
        .parent()
        .map(std::path::Path::to_path_buf);
    // On a cluster's replica the calls are in the shared store (the replica's data dir has none of them).
    let ledger = match gateway.catalog().registry().shared() {
        Some(pg) => Some(PageLedger::Shared(pg.clone())),
        None => dir.and_then(|d| match Ledger::open(&d) {
            Ok(l) => Some(PageLedger::Local(Arc::new(l))),
            Err(e) => {
                tracing::warn!("operator page: cannot open the ledger for reading: {e}");
                None
            }
        }),
    };
    let ui = Ui {
        gateway,
        ledger,
        token: opts.token.map(Arc::from),
        allowed_hosts: opts.allowed_hosts.into(),
        allowed_origins: opts.allowed_origins.into(),
        live: Arc::new(tokio::sync::Semaphore::new(live::MAX_LIVE_STREAMS)),
        shutdown,
        verified: Arc::default(),
        verifying: Arc::default(),
    };
    let views = Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/plugins") }))
        .route("/ui/plugins", get(plugins::view))
        .route("/ui/quotas", get(quotas::view))
        .route("/ui/calls", get(calls::view))
        .route("/ui/calls/live", get(live::stream))
        .route("/ui/calls/{seq}", get(calls::detail))
        .route("/ui/charts", get(charts::view))
        .route("/ui/ledger", get(ledger::view))
        .route("/ui/logout", axum::routing::post(session::logout))
        .layer(axum::middleware::from_fn_with_state(
            ui.clone(),
            guard::signed_in,
        ));
    Router::new()
        .merge(views)
        .route("/ui/login", get(session::form).post(session::login))
        .route("/ui/assets/{name}", get(assets::serve))
        .layer(axum::middleware::from_fn_with_state(
            ui.clone(),
            guard::same_origin,
        ))
        .with_state(ui)
}
