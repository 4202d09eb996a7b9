// plughost's JavaScript SDK: tools from a schema and a function, typed errors, and one module per capability
// (`./plughost/state.js`, `./plughost/http.js`, ...). `plughost build` derives the component's imports from which
// capability modules the code imports. Written by `plughost new` / `plughost build`; rewritten on every build.

/** A typed tool error: the caller gets `kind` and the message. Throw a subclass. */
export class ToolError extends Error {
  constructor(message, kind = 'failed') {
    super(message);
    this.kind = kind;
    /** The WIT `tool-error` value: what componentize-js sends back for a thrown error. */
    this.payload = { tag: kind, val: message };
  }
}
export class InvalidArguments extends ToolError {
  constructor(message) { super(message, 'invalid-arguments'); }
}
export class UnknownTool extends ToolError {
  constructor(message) { super(message, 'unknown-tool'); }
}
export class Denied extends ToolError {
  constructor(message) { super(message, 'denied'); }
}
export class NotFound extends ToolError {
  constructor(message) { super(message, 'not-found'); }
}
export class Unavailable extends ToolError {
  constructor(message) { super(message, 'unavailable'); }
}
export class Failed extends ToolError {
  constructor(message) { super(message, 'failed'); }
}
export class Upstream extends ToolError {
  constructor(message, { status, code, retryAfterSeconds } = {}) {
    super(message, 'upstream');
    Object.assign(this, { status, code, retryAfterSeconds });
    const wireCode = code === undefined ? undefined : BigInt(code);
    this.payload = { tag: 'upstream', val: { status, code: wireCode, message, retryAfterSeconds } };
  }
}

const OPTIONAL = Symbol('optional');
const opts = (o) => (typeof o === 'string' ? { description: o } : { ...o });

/** JSON Schema builders. Each takes a description or an object of extra keywords (`{ minimum: 0 }`). */
export const s = {
  string: (o) => ({ type: 'string', ...opts(o) }),
  integer: (o) => ({ type: 'integer', ...opts(o) }),
  number: (o) => ({ type: 'number', ...opts(o) }),
  boolean: (o) => ({ type: 'boolean', ...opts(o) }),
  enum: (values, o) => ({ enum: [...values], ...opts(o) }),
  array: (items, o) => ({ type: 'array', items, ...opts(o) }),
  object: (properties, o) => ({ ...objectSchema(properties), ...opts(o) }),
  /** A property that may be left out. */
  optional: (schema) => ({ ...schema, [OPTIONAL]: true }),
  /** A value that may also be null. */
  nullable: (schema) => ({ anyOf: [schema, { type: 'null' }] }),
};

function objectSchema(properties) {
  const required = Object.keys(properties).filter((k) => !properties[k][OPTIONAL]);
  const props = Object.fromEntries(Object.entries(properties).map(([k, v]) => [k, { ...v }]));
  return required.length ? { type: 'object', properties: props, required } : { type: 'object', properties: props };
}

/** A tool: `input` maps argument names to schemas, `output` (optional) is the schema of a returned object. */
export function tool(def) {
  if (typeof def.run !== 'function') throw new Error('a tool needs `run(args)`');
  return def;
}

const NAME = /^[a-z0-9_-]{1,64}$/;
const TYPES = {
  string: (v) => typeof v === 'string',
  integer: Number.isInteger,
  number: (v) => typeof v === 'number',
  boolean: (v) => typeof v === 'boolean',
  array: Array.isArray,
  object: (v) => v !== null && typeof v === 'object' && !Array.isArray(v),
  null: (v) => v === null,
};

function check(args, schema) {
  for (const name of schema.required ?? []) {
    if (!(name in args)) throw new InvalidArguments(`\`${name}\` is required`);
  }
  for (const [name, prop] of Object.entries(schema.properties)) {
    if (!(name in args) || !prop.type) continue;
    if (!TYPES[prop.type]?.(args[name])) throw new InvalidArguments(`\`${name}\` must be of type ${prop.type}`);
    if (prop.enum && !prop.enum.includes(args[name])) {
      throw new InvalidArguments(`\`${name}\` must be one of ${JSON.stringify(prop.enum)}`);
    }
  }
}

function output(result) {
  if (typeof result === 'string') return { content: [{ tag: 'text', val: result }], structured: undefined };
  if (result === undefined || result === null) return { content: [], structured: undefined };
  const text = JSON.stringify(result);
  return { content: [{ tag: 'json', val: text }], structured: TYPES.object(result) ? text : undefined };
}

/** The export the host calls: `export const tools = plugin({ id, version, description, tools: { name: tool(...) } })`. */
export function plugin({ id, name, version, description, tools }) {
  const entries = Object.entries(tools).map(([toolName, def]) => {
    if (!NAME.test(toolName)) throw new Error(`tool name \`${toolName}\` must match [a-z0-9_-]{1,64}`);
    return [toolName, { def, input: objectSchema(def.input ?? {}) }];
  });
  const byName = new Map(entries);
  const manifest = {
    id,
    name: name ?? id,
    version,
    description,
    tools: entries.map(([toolName, { def, input }]) => ({
      name: toolName,
      title: def.title,
      description: def.description ?? toolName,
      // `longRunning: true` is declared in the manifest's one place for it, the input schema (the host takes it out
      // of the schema clients see): an MCP client that supports tasks then polls for the call's result.
      inputSchema: JSON.stringify(def.longRunning ? { ...input, 'x-plughost-long-running': true } : input),
      outputSchema: def.output ? JSON.stringify(def.output) : undefined,
      annotations: {
        readOnly: def.readOnly,
        destructive: def.destructive,
        idempotent: def.idempotent,
        openWorld: def.openWorld,
      },
    })),
  };
  return {
    describe() {
      return manifest;
    },
    call(toolName, argumentsJson) {
      const entry = byName.get(toolName);
      if (!entry) throw new UnknownTool(toolName);
      let args;
      try {
        args = argumentsJson.trim() ? JSON.parse(argumentsJson) : {};
      } catch (e) {
        throw new InvalidArguments(`arguments are not JSON: ${e.message}`);
      }
      if (!TYPES.object(args)) throw new InvalidArguments('arguments must be a JSON object');
      check(args, entry.input);
      return output(entry.def.run(args));
    },
  };
}
