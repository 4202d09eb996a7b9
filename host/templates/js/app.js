// {{id}}: a plughost plugin written in JavaScript (built with componentize-js by `plughost build`).
//
// The host calls `tools.describe()` once to learn the tools, then `tools.call(tool, arguments)` for every call,
// each time in a fresh sandbox. Host capabilities are ES modules named by their WIT interface, with the version:
// `plughost:plugin/log@0.1.0` and so on (see wit/world.wit). Throw a ToolError to fail a call with a typed error.
import { write as log } from 'plughost:plugin/log@0.1.0';
import * as state from 'plughost:plugin/state@0.1.0';
import * as config from 'plughost:plugin/config@0.1.0';

class ToolError extends Error {
  // tag: invalid-arguments | unknown-tool | denied | not-found | unavailable | failed
  constructor(tag, message) {
    super(message);
    this.payload = { tag, val: message };
  }
}

function hello(args) {
  if (typeof args.name !== 'string') throw new ToolError('invalid-arguments', '`name` (a string) is required');
  const greeting = config.get('greeting') ?? 'Hello';
  const raw = state.get('greetings');
  const count = (raw ? Number(new TextDecoder().decode(raw)) : 0) + 1;
  state.set('greetings', new TextEncoder().encode(String(count)));
  log('info', 'greeted someone', [
    { key: 'name', value: args.name },
    { key: 'count', value: String(count) },
  ]);
  return `${greeting}, ${args.name}! (greeting #${count})`;
}

export const tools = {
  describe() {
    return {
      id: '{{id}}',
      name: '{{id}}',
      version: '0.1.0',
      description: 'Greets people and counts the greetings.',
      tools: [
        {
          name: 'hello',
          title: 'Hello',
          description: 'Greets someone by name (the greeting comes from config `greeting`).',
          inputSchema: JSON.stringify({
            type: 'object',
            properties: { name: { type: 'string', description: 'Who to greet.' } },
            required: ['name'],
          }),
          outputSchema: undefined,
          annotations: { readOnly: false, destructive: false, idempotent: false, openWorld: false },
        },
      ],
    };
  },
  call(tool, argumentsJson) {
    let args;
    try {
      args = JSON.parse(argumentsJson);
    } catch (e) {
      throw new ToolError('invalid-arguments', `arguments are not JSON: ${e.message}`);
    }
    if (tool === 'hello') return { content: [{ tag: 'text', val: hello(args) }], structured: undefined };
    throw new ToolError('unknown-tool', tool);
  },
};
