#!/usr/bin/env python3
"""The ledger at scale: spawn -> first tools/list of `plughost serve` (stdio), and CPU per call, on a data dir.

    scripts/ledger_scale.py --bin target/release/plughost --home DIR [--entries N] [--starts 10] [--calls 2000]
                            [--window minute|hour|day|month]

With --entries, the data dir gets fixture-basic installed (from $PLUGHOST_FIXTURE_BASIC or the guest build) and N
synthetic chained entries of fixture-basic spread over the last 30 days (`plughost ledger generate`, a hidden
command) before measuring. The plugin's contract is 1,000,000,000 calls per --window (default minute): the first
call after each start reads that window from the ledger. Prints one line per figure.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "scale", "version": "1"}},
}


def run(bin_, home, *args):
    subprocess.run([bin_, *args], env={**os.environ, "PLUGHOST_HOME": home}, check=True, stdout=subprocess.DEVNULL)


def setup(bin_, home, entries):
    wasm = os.environ.get("PLUGHOST_FIXTURE_BASIC", "target/guests/wasm32-wasip2/guest/fixture_basic.wasm")
    os.makedirs(home, exist_ok=True)
    local = os.path.join(home, "basic.wasm")
    with open(wasm, "rb") as f, open(local, "wb") as g:
        g.write(f.read())
    run(bin_, home, "keys", "generate", "--name", "op", "--trust", "--out", home)
    run(bin_, home, "sign", local, "--key", "op", "--request", "state", "--request", "log")
    run(bin_, home, "install", local, "--yes")
    if entries:
        t = time.monotonic()
        run(bin_, home, "ledger", "generate", "--entries", str(entries), "--plugin", "fixture-basic")
        print(f"generated {entries} entries in {time.monotonic() - t:.1f} s")


def send(p, msg):
    p.stdin.write(json.dumps(msg) + "\n")
    p.stdin.flush()


def answer(p, id_):
    while True:
        line = p.stdout.readline()
        if not line:
            sys.exit("serve closed its output")
        m = json.loads(line)
        if m.get("id") == id_:
            return m


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def start(bin_, home):
    t = time.monotonic()
    p = subprocess.Popen(
        [bin_, "serve", "--stdio"],
        env={**os.environ, "PLUGHOST_HOME": home},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    send(p, INIT)
    answer(p, 1)
    send(p, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    send(p, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    tools = answer(p, 2)
    assert any(t["name"] == "fixture-basic__echo" for t in tools["result"]["tools"]), tools
    return p, time.monotonic() - t


def call(p, i):
    send(p, {"jsonrpc": "2.0", "id": i, "method": "tools/call",
             "params": {"name": "fixture-basic__echo", "arguments": {"text": str(i)}}})
    m = answer(p, i)
    assert not m["result"].get("isError"), m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/plughost")
    ap.add_argument("--home", required=True)
    ap.add_argument("--entries", type=int)
    ap.add_argument("--starts", type=int, default=10)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--window", default="minute", choices=["minute", "hour", "day", "month"])
    a = ap.parse_args()
    if a.entries is not None:
        setup(a.bin, a.home, a.entries)
    run(a.bin, a.home, "limits", "fixture-basic", "--calls", f"1000000000/{a.window}")
    db = os.path.join(a.home, "ledger.db")
    print(f"ledger.db {os.path.getsize(db) if os.path.exists(db) else 0} bytes; contract per {a.window}")
    starts, first_calls = [], []
    for _ in range(a.starts):
        p, s = start(a.bin, a.home)
        starts.append(s)
        t = time.monotonic()
        call(p, 10)  # the contract is seeded from the ledger on the first call
        first_calls.append(time.monotonic() - t)
        p.stdin.close()
        p.wait()
    print(f"spawn -> first tools/list: median {statistics.median(starts) * 1000:.1f} ms "
          f"(min {min(starts) * 1000:.1f}, max {max(starts) * 1000:.1f}, {a.starts} starts)")
    print(f"first call (contract seeded): median {statistics.median(first_calls) * 1000:.1f} ms")
    p, _ = start(a.bin, a.home)
    for i in range(100, 300):  # warm up
        call(p, i)
    c0, t0 = cpu_ticks(p.pid), time.monotonic()
    for i in range(1000, 1000 + a.calls):
        call(p, i)
    c1, t1 = cpu_ticks(p.pid), time.monotonic()
    tick = os.sysconf("SC_CLK_TCK")
    print(f"{a.calls} calls: {a.calls / (t1 - t0):.0f} calls/s, "
          f"CPU {(c1 - c0) / tick / a.calls * 1e6:.0f} us per call (all threads of serve)")
    p.stdin.close()
    p.wait()


if __name__ == "__main__":
    main()
