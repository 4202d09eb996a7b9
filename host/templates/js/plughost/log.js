// Leveled log lines (needs the `log` grant): `log.info('fetched', { zone, records: 3 })`; field values are
// written with String().
import { write } from 'plughost:plugin/log@0.1.0';

const line = (level) => (message, fields = {}) =>
  write(level, message, Object.entries(fields).map(([key, value]) => ({ key, value: String(value) })));

export const trace = line('trace');
export const debug = line('debug');
export const info = line('info');
export const warn = line('warn');
export const error = line('error');
