/** The host's usage ledger (needs the `ledger` grant). */
export declare function append(kind: string, data?: unknown): number;
export declare function usage(): { calls: number; fuel: number; costTokens: number; windowStartUnix: number };
