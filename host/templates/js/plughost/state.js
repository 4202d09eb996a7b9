// The plugin's private key/value store (needs the `state` grant). Values are bytes (a string is stored as
// UTF-8); getJson / setJson store JSON. Failures throw the SDK's typed errors (a full quota is Unavailable).
import * as raw from 'plughost:plugin/state@0.1.0';
import { InvalidArguments, Unavailable } from './index.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

function typed(e) {
  const err = e?.payload;
  if (!err?.tag) return e;
  if (err.tag === 'quota-exceeded') {
    return new Unavailable(`state quota exceeded (${err.val.usedBytes} of ${err.val.limitBytes} bytes used)`);
  }
  if (err.tag === 'invalid-key') return new InvalidArguments(`invalid state key: ${err.val}`);
  return new Unavailable(`state unavailable: ${err.val}`);
}

function wrap(f) {
  try {
    return f();
  } catch (e) {
    throw typed(e);
  }
}

/** The bytes stored under `key`, or undefined. */
export const get = (key) => wrap(() => raw.get(key));
/** The text stored under `key`, or undefined. */
export function getText(key) {
  const v = get(key);
  return v === undefined ? undefined : dec.decode(v);
}
export const set = (key, value) => wrap(() => raw.set(key, typeof value === 'string' ? enc.encode(value) : value));
export const remove = (key) => wrap(() => raw.delete(key));
export const keys = (prefix = '') => wrap(() => raw.listKeys(prefix));
export function usage() {
  const q = wrap(() => raw.usage());
  return { usedBytes: Number(q.usedBytes), limitBytes: Number(q.limitBytes) };
}
export function getJson(key, fallback = undefined) {
  const v = getText(key);
  return v === undefined ? fallback : JSON.parse(v);
}
export const setJson = (key, value) => set(key, JSON.stringify(value));
