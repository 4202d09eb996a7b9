// {{id}}: a plughost plugin written in JavaScript, with the SDK in plughost/ (rewritten by `plughost build`).
import { plugin, s, tool } from './plughost/index.js';
import * as config from './plughost/config.js';
import * as log from './plughost/log.js';
import { offerPrompts, offerResources, prompt, resource } from './plughost/offers.js';
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

// A resource clients can read (contract 0.2.0): `plughost://plugins/{{id}}/r/greetings`.
const greetings = resource({
  path: 'greetings',
  mimeType: 'text/plain',
  description: 'How many greetings so far.',
  read() {
    return `${state.getJson('greetings', 0)} greetings so far`;
  },
});

// A prompt clients can render (contract 0.2.0): `{{id}}__welcome`.
const welcome = prompt({
  description: 'Writes a welcome note for someone.',
  arguments: { name: s.string('Who to welcome.') },
  render({ name }) {
    return `Write a short welcome note for ${name}.`;
  },
});

// What the host calls: the manifest and the tools, the resources and the prompts.
export const tools = plugin({
  id: '{{id}}',
  version: '0.1.0',
  description: 'Greets people and counts the greetings.',
  tools: { hello },
});
export const resources = offerResources([greetings]);
export const prompts = offerPrompts({ welcome });
