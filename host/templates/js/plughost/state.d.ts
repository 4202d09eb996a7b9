/** The plugin's private key/value store (needs the `state` grant). */
export declare function get(key: string): Uint8Array | undefined;
export declare function getText(key: string): string | undefined;
export declare function set(key: string, value: Uint8Array | string): void;
/** Removes `key`; true when it existed. */
export declare function remove(key: string): boolean;
/** The keys that start with `prefix`, in byte order. */
export declare function keys(prefix?: string): string[];
export declare function usage(): { usedBytes: number; limitBytes: number };
export declare function getJson<T = unknown>(key: string, fallback?: T): T;
export declare function setJson(key: string, value: unknown): void;
