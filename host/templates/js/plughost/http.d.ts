/** Outgoing HTTP to the origins the operator granted. */
export interface Secret {
  readonly key: string;
  readonly prefix: string;
}
/** A header value the host fills in from the configured secret `key` (after `prefix`). */
export declare function secret(key: string, prefix?: string): Secret;
export interface RequestOptions {
  headers?: Record<string, string | Secret>;
  body?: string | Uint8Array;
  /** Sent as a JSON body (with its content type). */
  json?: unknown;
  timeoutMs?: number;
}
export declare class Response {
  readonly status: number;
  readonly headers: [string, string][];
  readonly body: Uint8Array;
  readonly ok: boolean;
  header(name: string): string | undefined;
  text(): string;
  json<T = any>(): T;
  /** Throws Upstream for a 4xx or 5xx status. */
  raiseForStatus(): Response;
}
export declare function request(method: string, url: string, options?: RequestOptions): Response;
export declare function get(url: string, options?: RequestOptions): Response;
export declare function post(url: string, options?: RequestOptions): Response;
export declare function put(url: string, options?: RequestOptions): Response;
export declare function del(url: string, options?: RequestOptions): Response;
