// The operator's settings and secrets for this plugin (needs the `config` grant). Prefer http.secret(...) as a
// header value to secret(): then the plugin never holds the secret.
import * as raw from 'plughost:plugin/config@0.1.0';

export const get = (key, fallback = undefined) => raw.get(key) ?? fallback;
export const keys = () => raw.keys();
export const hasSecret = (key) => raw.hasSecret(key);
export const secret = (key) => raw.revealSecret(key);
