// textstats: word and line statistics for a piece of text, written in JavaScript.
//
// Uses three host capabilities: `log` (one line per call), `state` (running totals across calls) and `config`
// (`top_words`: how many frequent words to report, default 5).
import { write as logWrite } from 'plughost:plugin/log@0.1.0';
import * as state from 'plughost:plugin/state@0.1.0';
import * as config from 'plughost:plugin/config@0.1.0';

const STOP = new Set(['a', 'an', 'and', 'the', 'of', 'to', 'in', 'is', 'it', 'on', 'for', 'that', 'this', 'with', 'as', 'at']);
const enc = new TextEncoder();
const dec = new TextDecoder();

class ToolError extends Error {
  constructor(tag, message) {
    super(message);
    this.payload = { tag, val: message };
  }
}

function counter(key) {
  const raw = state.get(key);
  return raw ? Number(dec.decode(raw)) : 0;
}

function analyze(args) {
  if (typeof args.text !== 'string') throw new ToolError('invalid-arguments', '`text` (a string) is required');
  let top = args.top;
  if (top === undefined) top = Number(config.get('top_words') ?? '5');
  if (!Number.isInteger(top) || top < 0) throw new ToolError('invalid-arguments', '`top` must be a non-negative integer');
  const words = (args.text.match(/[A-Za-z0-9']+/g) ?? []).map((w) => w.toLowerCase());
  const freq = new Map();
  for (const w of words) if (!STOP.has(w)) freq.set(w, (freq.get(w) ?? 0) + 1);
  const topWords = [...freq.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, top)
    .map(([word, count]) => ({ word, count }));
  const documents = counter('documents') + 1;
  state.set('documents', enc.encode(String(documents)));
  state.set('words', enc.encode(String(counter('words') + words.length)));
  logWrite('info', 'analyzed a document', [
    { key: 'words', value: String(words.length) },
    { key: 'documents', value: String(documents) },
  ]);
  return {
    characters: [...args.text].length,
    words: words.length,
    lines: args.text === '' ? 0 : args.text.split(/\r?\n/).length - (args.text.endsWith('\n') ? 1 : 0),
    unique_words: new Set(words).size,
    top_words: topWords,
  };
}

function totals() {
  return { documents: counter('documents'), words: counter('words') };
}

function countPrimes(args) {
  const below = args.below;
  if (!Number.isInteger(below) || below < 0) throw new ToolError('invalid-arguments', '`below` must be a non-negative integer');
  let count = 0;
  for (let n = 2; n < below; n++) {
    let d = 2;
    while (d * d <= n && n % d) d++;
    if (d * d > n) count++;
  }
  return { below, primes: count };
}

const TOOLS = {
  analyze: {
    run: analyze,
    readOnly: false,
    description: 'Counts characters, words, lines and the most frequent words of a text; keeps running totals.',
    schema: {
      type: 'object',
      properties: {
        text: { type: 'string', description: 'The text to analyze.' },
        top: { type: 'integer', minimum: 0, description: 'How many frequent words (default: config top_words, else 5).' },
      },
      required: ['text'],
    },
  },
  totals: { run: totals, readOnly: true, description: 'Documents and words analyzed so far.', schema: { type: 'object', properties: {} } },
  count_primes: {
    run: countPrimes,
    readOnly: true,
    description: 'Counts the primes below a number by trial division (CPU-bound: large inputs run out of fuel).',
    schema: { type: 'object', properties: { below: { type: 'integer', minimum: 0 } }, required: ['below'] },
  },
};

export const tools = {
  describe() {
    return {
      id: 'js-textstats',
      name: 'Text statistics (JavaScript)',
      version: '0.1.0',
      description: 'Word and line statistics with running totals; the JavaScript example plugin.',
      tools: Object.entries(TOOLS).map(([name, t]) => ({
        name,
        title: undefined,
        description: t.description,
        inputSchema: JSON.stringify(t.schema),
        outputSchema: undefined,
        annotations: { readOnly: t.readOnly, destructive: false, idempotent: t.readOnly, openWorld: false },
      })),
    };
  },
  call(tool, argumentsJson) {
    const t = TOOLS[tool];
    if (!t) throw new ToolError('unknown-tool', tool);
    let args;
    try {
      args = JSON.parse(argumentsJson);
    } catch (e) {
      throw new ToolError('invalid-arguments', `arguments are not JSON: ${e.message}`);
    }
    if (args === null || typeof args !== 'object' || Array.isArray(args)) {
      throw new ToolError('invalid-arguments', 'arguments must be a JSON object');
    }
    const text = JSON.stringify(t.run(args));
    return { content: [{ tag: 'json', val: text }], structured: text };
  },
};
