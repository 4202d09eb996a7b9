// TypeScript declarations of the plughost JavaScript SDK (for editors; the SDK itself is plain JavaScript).

/** A JSON Schema, as the `s` builders make it; `T` is the JavaScript type of a valid value. */
export interface Schema<T = unknown> {
  readonly __type?: T;
  [keyword: string]: unknown;
}
/** A property that may be left out (`s.optional`). */
export interface Optional<T> extends Schema<T> {
  readonly __optional: true;
}
type Options = string | { description?: string; [keyword: string]: unknown };
type Props = Record<string, Schema<any>>;
type RequiredKeys<P extends Props> = { [K in keyof P]: P[K] extends Optional<any> ? never : K }[keyof P];
type OptionalKeys<P extends Props> = { [K in keyof P]: P[K] extends Optional<any> ? K : never }[keyof P];
/** The arguments a tool receives for its `input`. */
export type Args<P extends Props> = { [K in RequiredKeys<P>]: Infer<P[K]> } & { [K in OptionalKeys<P>]?: Infer<P[K]> };
export type Infer<S> = S extends Schema<infer T> ? T : never;

export declare const s: {
  string(o?: Options): Schema<string>;
  integer(o?: Options): Schema<number>;
  number(o?: Options): Schema<number>;
  boolean(o?: Options): Schema<boolean>;
  enum<const V extends readonly (string | number)[]>(values: V, o?: Options): Schema<V[number]>;
  array<T>(items: Schema<T>, o?: Options): Schema<T[]>;
  object<P extends Props>(properties: P, o?: Options): Schema<Args<P>>;
  optional<T>(schema: Schema<T>): Optional<T>;
  nullable<T>(schema: Schema<T>): Schema<T | null>;
};

/** What a tool returns: text, or a JSON value (an object is also the structured output). */
export type ToolResult = string | number | boolean | object | null | undefined;

export interface ToolDef<P extends Props> {
  description: string;
  title?: string;
  /** Argument name → schema; every argument is required unless wrapped in `s.optional`. */
  input?: P;
  /** The schema of the object `run` returns (becomes the tool's output schema). */
  output?: Schema<any>;
  readOnly?: boolean;
  destructive?: boolean;
  idempotent?: boolean;
  openWorld?: boolean;
  /** The tool may run long: an MCP client that supports tasks gets a task for a call and polls for its result. */
  longRunning?: boolean;
  run(args: Args<P>): ToolResult;
}
export declare function tool<P extends Props = {}>(def: ToolDef<P>): ToolDef<P>;

export interface PluginDef {
  /** `[a-z0-9-]{1,64}`, the plugin id. */
  id: string;
  name?: string;
  version: string;
  description: string;
  tools: Record<string, ToolDef<any>>;
}
/** The `tools` export the host calls. */
export interface ToolsExport {
  describe(): unknown;
  call(tool: string, argumentsJson: string): unknown;
}
export declare function plugin(def: PluginDef): ToolsExport;

export declare class ToolError extends Error {
  constructor(message: string, kind?: string);
  readonly kind: string;
}
export declare class InvalidArguments extends ToolError { constructor(message: string); }
export declare class UnknownTool extends ToolError { constructor(message: string); }
export declare class Denied extends ToolError { constructor(message: string); }
export declare class NotFound extends ToolError { constructor(message: string); }
export declare class Unavailable extends ToolError { constructor(message: string); }
export declare class Failed extends ToolError { constructor(message: string); }
export declare class Upstream extends ToolError {
  constructor(message: string, details?: { status?: number; code?: bigint; retryAfterSeconds?: number });
  readonly status?: number;
  readonly code?: bigint;
  readonly retryAfterSeconds?: number;
}
