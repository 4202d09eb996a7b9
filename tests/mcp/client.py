"""The official MCP Python SDK (mcp 2.3.0) driving `plughost serve`, over stdio or Streamable HTTP.

Run by host/tests/mcp.rs, which prepares a data dir with fixture-basic (fuel-limited) and system-info installed.
Every check is an assert; the script exits non-zero on the first failure and prints what it saw.

    client.py conformance --stdio PLUGHOST HOME | --url URL   --mode legacy|2026-07-28 --toggle ID WASM
    client.py load --url URL --tool NAME --args JSON --stop-file F   (calls until F exists; prints JSON counts)
    client.py metrics --url URL --calls JSON [--token T]   (makes the calls, then scrapes /metrics and parses it
                                                            with prometheus_client's text parser; prints JSON)
    client.py scoped --url URL --token T --mode M --allowed JSON --call NAME --denied NAME
                                                           (a scoped token sees exactly --allowed in tools/list,
                                                            may call --call, and is refused --denied with -32602;
                                                            with --docs, sees exactly those plugins' docs resources)
    client.py offers --url URL --mode M --plughost BIN --home HOME
                                                           (contract 0.2.0 with fixture-offers installed: resources,
                                                            templates, reads, prompts, progress, a read out of fuel,
                                                            and both list_changed when the operator removes it)
    client.py offers-hidden --url URL --token T --mode M  (a token scoped away from fixture-offers sees and reads none
                                                            of its resources or prompts)
    client.py offered --stdio PLUGHOST HOME --resource URI --prompt NAME --args JSON [--tool NAME --call JSON]
                                                           (lists, reads URI and renders prompt NAME with JSON
                                                            arguments, calls tool NAME with JSON arguments asking
                                                            for progress; prints what it got as one JSON line)
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

import anyio
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

INVALID_PARAMS = -32602


def server_of(args):
    if args.url:
        return args.url
    return StdioServerParameters(
        command=args.stdio[0],
        args=["serve", "--stdio", "--page-size", "5", "--watch-interval", "100ms"],
        env={"PLUGHOST_HOME": args.stdio[1], "PLUGHOST_LOG": os.environ.get("PLUGHOST_SERVER_LOG", "warn")},
    )


def report_of(result):
    meta = result.meta or {}
    report = meta.get("plughost/report")
    assert report, f"no plughost/report in _meta: {meta}"
    return report


async def list_all(client):
    names, cursor, pages = [], None, 0
    while True:
        page = await client.list_tools(cursor=cursor, cache_mode="refresh")
        pages += 1
        names += [t.name for t in page.tools]
        cursor = page.next_cursor
        if cursor is None:
            return names, pages
        assert pages < 100, "pagination does not end"


async def conformance(args):
    changed = anyio.Event()

    async def on_message(message):
        text = f"{type(message).__name__} {getattr(message, 'method', '')} {message!r}"
        if "ToolListChanged" in text or "tools/list_changed" in text:
            changed.set()

    async with Client(server_of(args), mode=args.mode, message_handler=on_message) as client:
        print(f"connected: protocol {client.protocol_version}", flush=True)
        if args.mode == "legacy":
            assert client.server_capabilities.tools.list_changed, client.server_capabilities

        # tools/list: paginated, sorted, namespaced, management tools included.
        names, pages = await list_all(client)
        print(f"tools/list: {len(names)} tools in {pages} pages", flush=True)
        if not args.url:
            assert pages > 1, "stdio runs with --page-size 5: expected several pages"
        assert names == sorted(names), names
        assert len(set(names)) == len(names), names
        for expected in ["fixture-basic__echo", "fixture-basic__spin", "system-info__health_check",
                         "plughost__plugins", "plughost__quotas"]:
            assert expected in names, (expected, names)
        page = await client.list_tools(cache_mode="refresh")
        by_name = {t.name: t for t in page.tools}
        info = by_name.get("plughost__metrics") or (await client.list_tools(cursor=None)).tools[0]
        assert info is not None

        # A successful call carries the report.
        r = await client.call_tool("fixture-basic__echo", {"text": "hello, mcp"})
        assert not r.is_error, r
        assert r.content[0].text == "hello, mcp", r.content
        rep = report_of(r)
        assert rep["fuel_used"] > 0 and rep["fuel_limit"] >= rep["fuel_used"], rep
        assert rep["peak_memory_bytes"] > 0 and rep["memory_limit_bytes"] >= rep["peak_memory_bytes"], rep
        assert rep["wall_time_us"] > 0 and rep["outcome"]["kind"] == "ok", rep
        print(f"echo: fuel {rep['fuel_used']} / {rep['fuel_limit']}, memory {rep['peak_memory_bytes']}, "
              f"{rep['wall_time_us']} us", flush=True)

        # Structured output with an output schema: structuredContent plus a text block.
        r = await client.call_tool("system-info__health_check", {})
        assert not r.is_error, r
        assert r.structured_content and r.structured_content["verdict"] in ("healthy", "degraded", "unhealthy"), r
        assert any(json.loads(c.text) == r.structured_content for c in r.content), r.content

        # Unknown tool: a JSON-RPC error, -32602.
        try:
            await client.call_tool("fixture-basic__no_such_tool", {})
            raise AssertionError("unknown tool did not fail")
        except MCPError as e:
            assert e.error.code == INVALID_PARAMS, e.error
            print(f"unknown tool: {e.error.code} {e.error.message}", flush=True)

        # Arguments that break the input schema: -32602 with the schema path, and the guest never ran.
        before = (await client.call_tool("plughost__metrics", {})).structured_content
        try:
            await client.call_tool("fixture-basic__echo", {"text": 5})
            raise AssertionError("invalid arguments did not fail")
        except MCPError as e:
            assert e.error.code == INVALID_PARAMS, e.error
            v = e.error.data["violations"][0]
            assert v["instance_path"] == "/text" and "type" in v["schema_path"], v
            print(f"invalid args: {e.error.code} at {v['instance_path']} (schema {v['schema_path']})", flush=True)
        after = (await client.call_tool("plughost__metrics", {})).structured_content
        assert after["rejected"].get("invalid-arguments", 0) == before["rejected"].get("invalid-arguments", 0) + 1

        # A limit hit: isError with the typed reason, and the report says how much was used.
        r = await client.call_tool("fixture-basic__spin", {})
        assert r.is_error, r
        err = r.meta["plughost/error"]
        rep = report_of(r)
        assert err["kind"] == "out-of-fuel" and rep["outcome"]["kind"] == "out-of-fuel", (err, rep)
        assert rep["fuel_used"] == rep["fuel_limit"], rep
        assert "out-of-fuel" in r.content[0].text, r.content
        print(f"spin: isError, {err['kind']} after {rep['fuel_used']} fuel", flush=True)

        # A typed tool error.
        r = await client.call_tool("fixture-basic__fail", {"text": "the thing"})
        assert r.is_error and r.meta["plughost/error"]["kind"] == "not-found", r

        # Management tools are read-only and describe grants and limits.
        r = await client.call_tool("plughost__plugin_info", {"id": "fixture-basic"})
        assert r.structured_content["grants"], r.structured_content
        try:
            await client.call_tool("plughost__plugin_info", {})
            raise AssertionError("plugin_info without id did not fail")
        except MCPError as e:
            assert e.error.code == INVALID_PARAMS and "id" in e.error.message, e.error
        tool = by_name.get("plughost__plugin_info")
        if tool is not None:
            assert tool.annotations.read_only_hint is True

        # list_changed after an install (or a removal) by the operator.
        installed = any(n.startswith(args.toggle[0] + "__") for n in names)
        if args.mode == "legacy":
            await toggle(args, installed)
            with anyio.fail_after(20):
                await changed.wait()
        else:
            async with client.listen(tools_list_changed=True) as sub:
                await toggle(args, installed)
                with anyio.fail_after(20):
                    async for event in sub:
                        print(f"listen event: {event!r}", flush=True)
                        break
        names, _ = await list_all(client)
        now = any(n.startswith(args.toggle[0] + "__") for n in names)
        assert now != installed, ("the tool set did not change", installed, names)
        print(f"list_changed: {args.toggle[0]} {'removed' if installed else 'installed'}; {len(names)} tools", flush=True)
    print("OK")


async def toggle(args, installed):
    plughost, home = (args.stdio or [args.plughost, args.home])[:2]
    cmd = [plughost, "remove", args.toggle[0]] if installed else [plughost, "install", args.toggle[1], "--yes"]
    out = await anyio.to_thread.run_sync(
        lambda: subprocess.run(cmd, env={**os.environ, "PLUGHOST_HOME": home}, capture_output=True, text=True))
    assert out.returncode == 0, (cmd, out.stdout, out.stderr)


async def load(args):
    """Calls a tool in a loop from `--workers` concurrent sessions until the stop file appears."""
    ok, failed, errors = 0, 0, []
    tool_args = json.loads(args.args)

    connected = 0
    all_connected = anyio.Event()

    async def worker():
        nonlocal ok, failed, connected
        async with Client(args.url, mode=args.mode) as client:
            await client.call_tool(args.tool, tool_args)
            connected += 1
            if connected == args.workers:
                print("connected", flush=True)
                all_connected.set()
            await all_connected.wait()
            while not os.path.exists(args.stop_file):
                try:
                    r = await client.call_tool(args.tool, tool_args)
                    if r.is_error:
                        failed += 1
                        errors.append(r.content[0].text if r.content else repr(r))
                    else:
                        ok += 1
                except Exception as e:  # noqa: BLE001 — every failure counts
                    failed += 1
                    errors.append(repr(e))

    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        for _ in range(args.workers):
            tg.start_soon(worker)
    print(json.dumps({"ok": ok, "failed": failed, "errors": errors[:10],
                      "seconds": round(time.monotonic() - started, 2)}), flush=True)


async def metrics(args):
    """Makes `--calls` ([[tool, args], ...]) through MCP, then parses /metrics with the Prometheus text parser."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    results = []
    async with Client(args.url, mode=args.mode) as client:
        for tool, tool_args in json.loads(args.calls):
            r = await client.call_tool(tool, tool_args)
            results.append({"tool": tool, "is_error": r.is_error,
                            "text": r.content[0].text if r.content else None})
    base = args.url.rsplit("/mcp", 1)[0]
    req = urllib.request.Request(base + "/metrics")
    if args.token:
        req.add_header("Authorization", f"Bearer {args.token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        text = resp.read().decode()
    families = {}
    for fam in text_string_to_metric_families(text):  # raises on anything that is not valid text format
        families[fam.name] = {
            "type": fam.type,
            "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in fam.samples],
        }
    print(json.dumps({"calls": results, "families": families}), flush=True)


async def scoped(args):
    """A scoped client token, sent as a bearer header by the SDK's own HTTP client."""
    import httpx2

    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {args.token}"}, timeout=30)
    async with http, Client(streamable_http_client(args.url, http_client=http), mode=args.mode) as client:
        names, _ = await list_all(client)
        allowed = json.loads(args.allowed)
        assert names == sorted(allowed), (names, allowed)
        r = await client.call_tool(args.call, json.loads(args.args))
        assert not r.is_error, r
        print(f"called {args.call}: {r.content[0].text if r.content else ''}", flush=True)
        try:
            await client.call_tool(args.denied, {})
            raise AssertionError(f"{args.denied} was not refused")
        except MCPError as e:
            assert e.error.code == INVALID_PARAMS, e.error
            assert "not in the scope of token" in e.error.message, e.error.message
            print(f"refused {args.denied}: {e.error.message}", flush=True)
        if args.docs:
            await scoped_docs(client, json.loads(args.docs), args.hidden_doc)
    print("OK", flush=True)


async def scoped_docs(client, plugins, hidden):
    """The plugins' docs as resources: exactly the visible plugins' are listed and read; a hidden one is not found."""
    listed = await client.list_resources(cache_mode="refresh")
    uris = sorted(str(r.uri) for r in listed.resources)
    want = sorted(f"plughost://plugins/{p}/docs" for p in plugins)
    assert uris == want, (uris, want)
    for p in plugins:
        r = await client.read_resource(f"plughost://plugins/{p}/docs", cache_mode="refresh")
        text = r.contents[0].text
        assert r.contents[0].mime_type == "text/markdown", r.contents[0]
        assert f"### `{p}__" in text and "Arguments:" in text, text
        print(f"read the docs of {p}: {len(text)} bytes", flush=True)
    if hidden:
        try:
            await client.read_resource(f"plughost://plugins/{hidden}/docs", cache_mode="refresh")
            raise AssertionError(f"the docs of {hidden} were readable")
        except MCPError as e:
            # -32002 in the 2025-11-25 era; 2026-07-28 folds "resource not found" into invalid params.
            assert e.error.code in (-32002, INVALID_PARAMS), e.error
            assert "no such resource" in e.error.message, e.error
            print(f"not found: the docs of {hidden}", flush=True)


async def pages(fetch, items_of, key):
    """Every item of a paginated list, following nextCursor."""
    out, cursor = [], None
    for _ in range(100):
        page = await fetch(cursor)
        out += [key(i) for i in items_of(page)]
        cursor = page.next_cursor
        if cursor is None:
            return out
    raise AssertionError("pagination does not end")


async def offers(args):
    """fixture-offers (contract 0.2.0): its resources, templates and prompts, read and rendered through the host."""
    seen = set()

    async def on_message(message):
        text = f"{type(message).__name__} {getattr(message, 'method', '')} {message!r}"
        for kind in ("ResourceListChanged", "PromptListChanged", "resources/list_changed", "prompts/list_changed"):
            if kind in text:
                seen.add("resources" if "esource" in kind else "prompts")

    base = "plughost://plugins/offers/r/"
    async with Client(server_of(args), mode=args.mode, message_handler=on_message) as client:
        caps = client.server_capabilities
        if args.mode == "legacy":
            assert caps.resources.list_changed and caps.prompts.list_changed, caps

        uris = await pages(lambda c: client.list_resources(cursor=c, cache_mode="refresh"),
                           lambda p: p.resources, lambda r: str(r.uri))
        assert uris == sorted(uris), uris
        for want in ["greeting", "bytes", "spin"]:
            assert base + want in uris, (want, uris)
        assert "plughost://plugins/offers/docs" in uris, uris
        print(f"resources/list: {len(uris)} resources", flush=True)

        templates = await pages(lambda c: client.list_resource_templates(cursor=c, cache_mode="refresh"),
                                lambda p: p.resource_templates, lambda t: t.uri_template)
        assert templates == [base + "day/{date}"], templates

        r = await client.read_resource(base + "greeting", cache_mode="refresh")
        c = r.contents[0]
        assert c.text == "hello from a resource" and c.mime_type == "text/plain", c
        assert str(c.uri) == base + "greeting", c
        rep = (r.meta or {}).get("plughost/report")
        assert rep and rep["tool"] == "resource:greeting" and rep["fuel_used"] > 0, r.meta
        print(f"read greeting: fuel {rep['fuel_used']} / {rep['fuel_limit']}", flush=True)

        r = await client.read_resource(base + "day/2026-01-01", cache_mode="refresh")
        assert r.contents[0].text == "notes of 2026-01-01", r.contents

        r = await client.read_resource(base + "bytes", cache_mode="refresh")
        assert r.contents[0].blob == "AJ+Slg==", r.contents
        assert r.contents[0].mime_type == "application/octet-stream", r.contents

        for missing in [base + "nothing-here", base + "day/a/b", "plughost://plugins/no-such-plugin/r/x"]:
            try:
                await client.read_resource(missing, cache_mode="refresh")
                raise AssertionError(f"{missing} was readable")
            except MCPError as e:
                assert e.error.code in (-32002, INVALID_PARAMS), e.error
        print("unknown paths: not found", flush=True)

        try:
            await client.read_resource(base + "spin", cache_mode="refresh")
            raise AssertionError("the spinning read returned")
        except MCPError as e:
            data = e.error.data or {}
            assert data.get("kind") == "out-of-fuel", e.error
            rep = data["plughost/report"]
            assert rep["outcome"]["kind"] == "out-of-fuel" and rep["fuel_used"] == rep["fuel_limit"], rep
            print(f"read spin: {e.error.message}", flush=True)

        names = await pages(lambda c: client.list_prompts(cursor=c, cache_mode="refresh"),
                            lambda p: p.prompts, lambda p: p.name)
        assert "offers__summarize" in names, names
        listed = [p for p in (await client.list_prompts(cache_mode="refresh")).prompts if p.name == "offers__summarize"]
        if listed:
            args_ = {a.name: a.required for a in listed[0].arguments}
            assert args_ == {"topic": True, "style": False}, args_
        r = await client.get_prompt("offers__summarize", {"topic": "the weather", "style": "terse"})
        assert [m.role for m in r.messages] == ["user", "assistant"], r.messages
        assert r.messages[0].content.text == "Summarize the weather in a terse style.", r.messages
        print(f"prompt: {r.messages[0].content.text!r}", flush=True)
        try:
            await client.get_prompt("offers__summarize", {"style": "terse"})
            raise AssertionError("a prompt without its required argument was rendered")
        except MCPError as e:
            assert e.error.code == INVALID_PARAMS and "topic" in e.error.message, e.error

        progress = []

        async def on_progress(done, total, message):
            progress.append((done, total, message))

        r = await client.call_tool("offers__steps", {"n": 3}, progress_callback=on_progress)
        assert not r.is_error and r.content[0].text == "3 steps", r
        assert progress, "no progress notification arrived"
        assert progress[0] == (1, 3, "step 1"), progress
        assert progress[-1] == (3, 3, "step 3"), progress
        assert [p[0] for p in progress] == sorted(p[0] for p in progress), progress
        print(f"progress: {progress}", flush=True)

        # The operator removes the plugin: resources and prompts lists change, like tools.
        if args.mode == "legacy":
            await toggle(args, True)
            with anyio.fail_after(20):
                while seen != {"resources", "prompts"}:
                    await anyio.sleep(0.1)
        else:
            async with client.listen(resources_list_changed=True, prompts_list_changed=True) as sub:
                await toggle(args, True)
                with anyio.fail_after(20):
                    async for event in sub:
                        seen.add("resources" if "esource" in repr(event) else "prompts")
                        if seen == {"resources", "prompts"}:
                            break
        assert seen == {"resources", "prompts"}, seen
        uris = await pages(lambda c: client.list_resources(cursor=c, cache_mode="refresh"),
                           lambda p: p.resources, lambda r: str(r.uri))
        assert not any(u.startswith("plughost://plugins/offers/") for u in uris), uris
        print(f"list_changed: {sorted(seen)}", flush=True)
    print("OK", flush=True)


async def offers_hidden(args):
    """A token scoped away from fixture-offers sees none of its resources, templates or prompts, and cannot use them."""
    import httpx2

    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {args.token}"}, timeout=30)
    async with http, Client(streamable_http_client(args.url, http_client=http), mode=args.mode) as client:
        uris = await pages(lambda c: client.list_resources(cursor=c, cache_mode="refresh"),
                           lambda p: p.resources, lambda r: str(r.uri))
        assert uris and not any(u.startswith("plughost://plugins/offers/") for u in uris), uris
        templates = await pages(lambda c: client.list_resource_templates(cursor=c, cache_mode="refresh"),
                                lambda p: p.resource_templates, lambda t: t.uri_template)
        assert templates == [], templates
        names = await pages(lambda c: client.list_prompts(cursor=c, cache_mode="refresh"),
                            lambda p: p.prompts, lambda p: p.name)
        assert names == [], names
        try:
            await client.read_resource("plughost://plugins/offers/r/greeting", cache_mode="refresh")
            raise AssertionError("a hidden plugin's resource was readable")
        except MCPError as e:
            assert e.error.code in (-32002, INVALID_PARAMS) and "no such resource" in e.error.message, e.error
        try:
            await client.get_prompt("offers__summarize", {"topic": "x"})
            raise AssertionError("a hidden plugin's prompt was rendered")
        except MCPError as e:
            assert e.error.code == INVALID_PARAMS and "unknown prompt" in e.error.message, e.error
        print(f"hidden: {len(uris)} resources listed, none of offers", flush=True)
    print("OK", flush=True)


async def offered(args):
    """One plugin's resource and prompt, as a client sees them (the caller checks the printed JSON)."""
    async with Client(server_of(args), mode=args.mode) as client:
        uris = await pages(lambda c: client.list_resources(cursor=c, cache_mode="refresh"),
                           lambda p: p.resources, lambda r: str(r.uri))
        assert args.resource in uris, uris
        r = await client.read_resource(args.resource, cache_mode="refresh")
        assert len(r.contents) == 1, r
        listed = [p for p in (await client.list_prompts(cache_mode="refresh")).prompts if p.name == args.prompt]
        assert len(listed) == 1, listed
        got = await client.get_prompt(args.prompt, json.loads(args.args))
        progress, tool = [], None
        if args.tool:
            async def on_progress(done, total, message):
                progress.append([done, total, message])

            called = await client.call_tool(args.tool, json.loads(args.call), progress_callback=on_progress)
            assert not called.is_error, called
            tool = called.content[0].text
        print(json.dumps({
            "tool": tool,
            "progress": progress,
            "resource": {"uri": str(r.contents[0].uri), "mime": r.contents[0].mime_type, "text": r.contents[0].text},
            "prompt": {
                "description": listed[0].description,
                "arguments": [[a.name, a.description, a.required] for a in listed[0].arguments or []],
                "messages": [[m.role, m.content.text] for m in got.messages],
            },
        }), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["conformance", "load", "metrics", "scoped", "offers", "offers-hidden", "offered"])
    p.add_argument("--stdio", nargs=2, metavar=("PLUGHOST", "HOME"))
    p.add_argument("--url")
    p.add_argument("--plughost")
    p.add_argument("--home")
    p.add_argument("--mode", default="legacy")
    p.add_argument("--toggle", nargs=2, metavar=("ID", "WASM"))
    p.add_argument("--tool")
    p.add_argument("--args", default="{}")
    p.add_argument("--stop-file")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--calls", default="[]")
    p.add_argument("--token")
    p.add_argument("--allowed", default="[]")
    p.add_argument("--call")
    p.add_argument("--denied")
    p.add_argument("--docs", help="JSON list of plugin ids whose docs resources the token sees")
    p.add_argument("--hidden-doc", help="a plugin id whose docs the token may not read")
    p.add_argument("--resource", help="offered: the URI to read")
    p.add_argument("--prompt", help="offered: the prompt to render (with --args)")
    args = p.parse_args()
    if args.command == "conformance":
        asyncio.run(conformance(args))
    elif args.command == "metrics":
        asyncio.run(metrics(args))
    elif args.command == "scoped":
        asyncio.run(scoped(args))
    elif args.command == "offers":
        asyncio.run(offers(args))
    elif args.command == "offers-hidden":
        asyncio.run(offers_hidden(args))
    elif args.command == "offered":
        asyncio.run(offered(args))
    else:
        asyncio.run(load(args))


if __name__ == "__main__":
    sys.exit(main())
