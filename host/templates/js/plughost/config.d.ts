/** The operator's settings and secrets for this plugin (needs the `config` grant). */
export declare function get(key: string): string | undefined;
export declare function get(key: string, fallback: string): string;
export declare function keys(): string[];
export declare function hasSecret(key: string): boolean;
/** Reveals a secret; prefer `http.secret(...)` as a header value. */
export declare function secret(key: string): string | undefined;
