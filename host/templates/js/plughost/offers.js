// Resources and prompts (contract 0.2.0): what a plugin offers MCP clients besides tools. Export them next to
// `tools` as `export const resources = offerResources([...])` and `export const prompts = offerPrompts({...})`:
// `plughost build` exports the `resources` / `prompts` interfaces when the code exports those names. Each read and
// render runs like a tool call (its own instance, fuel, grants, ledger); throw a `ToolError` (e.g. `NotFound`).
import { InvalidArguments, NotFound } from './index.js';

const NAME = /^[a-z0-9_-]{1,64}$/;
const VAR = /\{([a-z0-9_]+)\}/g;
const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A resource at `path` (`today`, or a template with `{variables}`: `day/{date}`); `read(vars)` returns its body. */
export function resource(def) {
  if (typeof def.read !== 'function') throw new Error('a resource needs `read(vars)`');
  if (typeof def.path !== 'string' || !def.path) throw new Error('a resource needs a `path`');
  return def;
}

/** A prompt: `arguments` maps names to `s.string(...)` (required unless `s.optional`); `render(args)` the messages. */
export function prompt(def) {
  if (typeof def.render !== 'function') throw new Error('a prompt needs `render(args)`');
  return def;
}

/** The `resources` export: `export const resources = offerResources([greetings, day])`. */
export function offerResources(list) {
  const entries = list.map((def) => {
    const names = [...def.path.matchAll(VAR)].map((m) => m[1]);
    let pattern;
    if (names.length) {
      const parts = def.path.split(VAR);
      pattern = new RegExp(`^${parts.map((p, i) => (i % 2 === 0 ? escape(p) : '([^/]+)')).join('')}$`);
    }
    return { def, names, pattern, name: def.name ?? def.path.replace(/[^A-Za-z0-9_-]/g, '_') };
  });
  const seen = new Set();
  for (const e of entries) {
    if (seen.has(e.def.path)) throw new Error(`two resources have path \`${e.def.path}\``);
    seen.add(e.def.path);
  }
  const meta = (e) => ({ name: e.name, title: e.def.title, description: e.def.description, mimeType: e.def.mimeType });
  const listing = {
    resources: entries.filter((e) => !e.pattern).map((e) => ({ path: e.def.path, ...meta(e) })),
    templates: entries.filter((e) => e.pattern).map((e) => ({ pathTemplate: e.def.path, ...meta(e) })),
  };
  return {
    list() {
      return listing;
    },
    read(path) {
      let found = entries.find((e) => !e.pattern && e.def.path === path);
      let vars = {};
      if (!found) {
        for (const e of entries) {
          const m = e.pattern?.exec(path);
          if (m) {
            found = e;
            vars = Object.fromEntries(e.names.map((n, i) => [n, m[i + 1]]));
            break;
          }
        }
      }
      if (!found) throw new NotFound(`no resource at \`${path}\``);
      const body = found.def.read(vars);
      const wire = body instanceof Uint8Array ? { tag: 'blob', val: body } : { tag: 'text', val: String(body) };
      return [{ path, mimeType: found.def.mimeType, body: wire }];
    },
  };
}

/** The `prompts` export: `export const prompts = offerPrompts({ welcome })`. */
export function offerPrompts(prompts) {
  const byName = new Map();
  const listed = Object.entries(prompts).map(([name, def]) => {
    if (!NAME.test(name)) throw new Error(`prompt name \`${name}\` must match [a-z0-9_-]{1,64}`);
    const args = Object.entries(def.arguments ?? {}).map(([argName, schema]) => ({
      name: argName,
      title: undefined,
      description: schema.description,
      required: !Object.getOwnPropertySymbols(schema).some((sym) => schema[sym] === true),
    }));
    byName.set(name, { def, args });
    return { name, title: def.title, description: def.description, arguments: args };
  });
  return {
    list() {
      return listed;
    },
    get(name, pairs) {
      const entry = byName.get(name);
      if (!entry) throw new NotFound(`no prompt named \`${name}\``);
      const args = Object.fromEntries(pairs.map((p) => [p.key, p.value]));
      const unknown = Object.keys(args).find((k) => !entry.args.some((a) => a.name === k));
      if (unknown) throw new InvalidArguments(`unknown argument \`${unknown}\``);
      let out = entry.def.render(args);
      if (typeof out === 'string') out = [{ role: 'user', text: out }];
      const messages = out.map((m) => {
        const [role, text] = Array.isArray(m) ? m : [m.role, m.text];
        if (role !== 'user' && role !== 'assistant') throw new Error(`a message's role is user or assistant, not ${role}`);
        return { role, text: String(text) };
      });
      return { description: entry.def.description, messages };
    },
  };
}
