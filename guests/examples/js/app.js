// textstats: word and line statistics for a piece of text, written in JavaScript with the plughost SDK.
//
// Uses `log` (one line per call), `state` (running totals across calls), `config` (`top_words`: how many frequent
// words to report, default 5) and `http` (`fetch_stats` reads a text from a granted origin).
import { InvalidArguments, Upstream, plugin, s, tool } from './plughost/index.js';
import * as config from './plughost/config.js';
import * as http from './plughost/http.js';
import * as log from './plughost/log.js';
import * as state from './plughost/state.js';

const STOP = new Set(['a', 'an', 'and', 'the', 'of', 'to', 'in', 'is', 'it', 'on', 'for', 'that', 'this', 'with', 'as', 'at']);

const STATS = s.object({
  characters: s.integer(),
  words: s.integer(),
  lines: s.integer(),
  unique_words: s.integer(),
  top_words: s.array(s.object({ word: s.string(), count: s.integer() })),
});

function stats(text, top = Number(config.get('top_words', '5'))) {
  if (!Number.isInteger(top) || top < 0) throw new InvalidArguments('`top` must be a non-negative integer');
  const words = (text.match(/[A-Za-z0-9']+/g) ?? []).map((w) => w.toLowerCase());
  const freq = new Map();
  for (const w of words) if (!STOP.has(w)) freq.set(w, (freq.get(w) ?? 0) + 1);
  const topWords = [...freq.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, top)
    .map(([word, count]) => ({ word, count }));
  const documents = state.getJson('documents', 0) + 1;
  state.setJson('documents', documents);
  state.setJson('words', state.getJson('words', 0) + words.length);
  log.info('analyzed a document', { words: words.length, documents });
  return {
    characters: [...text].length,
    words: words.length,
    lines: text === '' ? 0 : text.split(/\r?\n/).length - (text.endsWith('\n') ? 1 : 0),
    unique_words: new Set(words).size,
    top_words: topWords,
  };
}

const analyze = tool({
  description: 'Counts characters, words, lines and the most frequent words of a text; keeps running totals.',
  input: {
    text: s.string('The text to analyze.'),
    top: s.optional(s.integer({ minimum: 0, description: 'How many frequent words (default: config top_words, else 5).' })),
  },
  output: STATS,
  run: ({ text, top }) => stats(text, top),
});

const fetchStats = tool({
  description: 'Fetches a text over HTTP and analyzes it like `analyze` (counted in the totals too).',
  input: { url: s.string('An http(s) URL of a granted origin that serves text.') },
  output: STATS,
  openWorld: true,
  run({ url }) {
    const response = http.get(url, { headers: { Accept: 'text/plain' } });
    if (!response.ok) throw new Upstream(`${url} answered ${response.status}`, { status: response.status });
    return stats(response.text());
  },
});

const totals = tool({
  description: 'Documents and words analyzed so far.',
  output: s.object({ documents: s.integer(), words: s.integer() }),
  readOnly: true,
  idempotent: true,
  run: () => ({ documents: state.getJson('documents', 0), words: state.getJson('words', 0) }),
});

const countPrimes = tool({
  description: 'Counts the primes below a number by trial division (CPU-bound: large inputs run out of fuel).',
  input: { below: s.integer({ minimum: 0 }) },
  readOnly: true,
  idempotent: true,
  run({ below }) {
    if (below < 0) throw new InvalidArguments('`below` must be a non-negative integer');
    let count = 0;
    for (let n = 2; n < below; n++) {
      let d = 2;
      while (d * d <= n && n % d) d++;
      if (d * d > n) count++;
    }
    return { below, primes: count };
  },
});

export const tools = plugin({
  id: 'js-textstats',
  name: 'Text statistics (JavaScript)',
  version: '0.1.0',
  description: 'Word and line statistics with running totals; the JavaScript example plugin.',
  tools: { analyze, fetch_stats: fetchStats, totals, count_primes: countPrimes },
});
