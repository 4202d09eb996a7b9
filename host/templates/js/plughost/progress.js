// Progress of the running call (contract 0.2.0; needs no grant): `progress.report(3, 10, 'step 3')`. Forwarded to
// the MCP client as `notifications/progress` when it asked for progress; otherwise, and beyond the host's rate
// limit, dropped. Never fails, never blocks. `plughost build` imports `progress` when the code imports this module.
import { report as raw } from 'plughost:plugin/progress@0.2.0';

/** `done` of `total` units (`total` when known; `done` should only grow); `message` says what is happening. */
export function report(done, total, message) {
  raw(BigInt(done), total === undefined || total === null ? undefined : BigInt(total), message ?? undefined);
}
