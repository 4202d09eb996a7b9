// The host's usage ledger (needs the `ledger` grant): append domain events, read this plugin's usage.
import * as raw from 'plughost:plugin/ledger@0.1.0';
import { InvalidArguments, Unavailable } from './index.js';

function typed(e) {
  const err = e?.payload;
  if (!err?.tag) return e;
  if (err.tag === 'too-large') return new InvalidArguments(`ledger: the event is too large (${err.val} bytes)`);
  if (err.tag === 'invalid-kind') return new InvalidArguments(`ledger: invalid event kind \`${err.val}\``);
  return new Unavailable(`ledger: ${err.val}`);
}

/** Appends an event (`data` is stored as JSON); returns its sequence number. */
export function append(kind, data = null) {
  try {
    return Number(raw.append(kind, JSON.stringify(data)));
  } catch (e) {
    throw typed(e);
  }
}

export function usage() {
  try {
    const u = raw.usage();
    return {
      calls: Number(u.calls),
      fuel: Number(u.fuel),
      costTokens: Number(u.costTokens),
      windowStartUnix: Number(u.windowStartUnix),
    };
  } catch (e) {
    throw typed(e);
  }
}
