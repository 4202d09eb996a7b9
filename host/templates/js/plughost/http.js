// Outgoing HTTP to the origins the operator granted (`--grant http:https://api.example.com`):
//   const data = http.get(url, { headers: { Accept: 'application/json' } }).json();
//   http.post(url, { json: { a: 1 }, headers: { Authorization: http.secret('api_token', 'Bearer ') } });
// A refused origin throws Denied, a timeout or a connection failure Unavailable; a response is returned whatever
// its status (raiseForStatus() turns a 4xx/5xx into Upstream).
import { send } from 'plughost:plugin/http@0.1.0';
import { Denied, Failed, Unavailable, Upstream } from './index.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const SECRET = Symbol('secret');

/** A header value the host fills in from the configured secret `key` (after `prefix`). */
export const secret = (key, prefix = '') => ({ [SECRET]: true, key, prefix });

export class Response {
  constructor(status, headers, body) {
    this.status = status;
    this.headers = headers;
    this.body = body;
  }
  get ok() {
    return this.status >= 200 && this.status < 300;
  }
  header(name) {
    const n = name.toLowerCase();
    return this.headers.find(([k]) => k.toLowerCase() === n)?.[1];
  }
  text() {
    return dec.decode(this.body);
  }
  json() {
    try {
      return JSON.parse(this.text());
    } catch (e) {
      throw new Upstream(`the response is not JSON: ${e.message}`, { status: this.status });
    }
  }
  raiseForStatus() {
    if (this.status >= 400) throw new Upstream(`HTTP ${this.status}: ${this.text().slice(0, 200)}`, { status: this.status });
    return this;
  }
}

function typed(e) {
  const err = e?.payload;
  switch (err?.tag) {
    case 'denied': return new Denied(`http: ${err.val} is not granted`);
    case 'redirect-denied': return new Denied(`http: a redirect to ${err.val} is not granted`);
    case 'too-many-redirects': return new Unavailable(`http: more than ${err.val} redirects`);
    case 'timeout': return new Unavailable('http: no response in time');
    case 'connection': return new Unavailable(`http: ${err.val}`);
    case 'too-large': return new Failed(`http: body over the ${err.val}-byte limit`);
    case 'request-limit': return new Failed(`http: the ${err.val}-request budget of this call is spent`);
    case 'invalid-request': return new Failed(`http: invalid request: ${err.val}`);
    default: return e;
  }
}

const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete', 'options'];

/** Sends one request; `json` sends a JSON body (and its content type). */
export function request(method, url, { headers = {}, body, json, timeoutMs } = {}) {
  const m = method.toLowerCase();
  if (!METHODS.includes(m)) throw new Failed(`http: unsupported method ${method}`);
  const hs = { ...headers };
  if (json !== undefined) {
    body = JSON.stringify(json);
    if (!Object.keys(hs).some((k) => k.toLowerCase() === 'content-type')) hs['Content-Type'] = 'application/json';
  }
  const req = {
    method: m,
    url,
    headers: Object.entries(hs).map(([name, v]) => ({
      name,
      value: v?.[SECRET] ? { tag: 'secret', val: { key: v.key, prefix: v.prefix } } : { tag: 'text', val: String(v) },
    })),
    body: body === undefined ? undefined : typeof body === 'string' ? enc.encode(body) : body,
    timeoutMs,
  };
  let r;
  try {
    r = send(req);
  } catch (e) {
    throw typed(e);
  }
  return new Response(r.status, r.headers, r.body);
}

export const get = (url, options) => request('get', url, options);
export const post = (url, options) => request('post', url, options);
export const put = (url, options) => request('put', url, options);
export const del = (url, options) => request('delete', url, options);
