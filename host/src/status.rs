//! An installed plugin's status as the operator sees it, from the registry alone: what `plughost list` and `info`
//! print and the operator page shows (the gateway adds "not loadable" from its own load attempt).

use plughost_registry::{PluginRecord, Registry};

/// `corrupted` when the stored component cannot be read back with its installed digest (changed, gone or
/// unreadable: it would not load), else `enabled`, or `disabled` with the reason.
pub fn installed_status(reg: &Registry, p: &PluginRecord) -> (String, Option<String>) {
    if let Err(e) = reg.check_blob(p) {
        return ("corrupted".into(), Some(e.to_string()));
    }
    if p.enabled {
        ("enabled".into(), None)
    } else {
        ("disabled".into(), p.disabled_reason.clone())
    }
}
