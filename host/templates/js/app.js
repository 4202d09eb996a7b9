// {{id}}: a plughost plugin written in JavaScript, with the SDK in plughost/ (rewritten by `plughost build`).
import { plugin, s, tool } from './plughost/index.js';
import * as config from './plughost/config.js';
import * as log from './plughost/log.js';
import * as state from './plughost/state.js';

const hello = tool({
  description: 'Greets someone by name (the greeting comes from config `greeting`).',
  input: { name: s.string('Who to greet.') },
  run({ name }) {
    const greeting = config.get('greeting', 'Hello');
    const count = state.getJson('greetings', 0) + 1;
    state.setJson('greetings', count);
    log.info('greeted someone', { name, count });
    return `${greeting}, ${name}! (greeting #${count})`;
  },
});

// What the host calls: the manifest and the tools.
export const tools = plugin({
  id: '{{id}}',
  version: '0.1.0',
  description: 'Greets people and counts the greetings.',
  tools: { hello },
});
