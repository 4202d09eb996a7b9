// {{id}}: a plughost plugin written in C (built by `plughost build`: C bindings from wit/, zig cc for wasm32-wasi,
// then wrapped into a component with the WASI preview1 reactor adapter).
//
// The host calls `describe` once to learn the tools, then `call(tool, arguments)` for every call, each time in a
// fresh sandbox. Host capabilities are the `plughost_plugin_<interface>_<function>` functions in
// build/bindings/plugin.h (generated from wit/world.wit). Contract 0.2.0 adds a resource and a prompt (the
// `exports_plughost_plugin_resources_*` and `exports_plughost_plugin_prompts_*` functions at the end): listed once
// at load, each read or render then runs like a tool call.
//
// Memory rules of the bindings: strings the host passes to an export are yours to free; everything an export
// returns must be malloc'd (the bindings free it after the host copied it); results of imports are malloc'd and
// yours to free.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "plugin.h"

typedef exports_plughost_plugin_tools_tool_error_t tool_error_t;

static bool fail(tool_error_t *err, uint8_t tag, const char *message) {
    err->tag = tag;
    plugin_string_dup(&err->val.invalid_arguments, message);  // every string variant shares this slot
    return false;
}

static void log_info(const char *message, const char *key, const char *value) {
    plugin_string_t msg;
    plugin_string_set(&msg, message);
    plughost_plugin_log_pair_t pair;
    plugin_string_set(&pair.key, key);
    plugin_string_set(&pair.value, value);
    plughost_plugin_log_list_pair_t fields = {&pair, 1};
    plughost_plugin_log_write(PLUGHOST_PLUGIN_LOG_LEVEL_INFO, &msg, &fields);
}

// A counter kept in state as decimal text (0 when unset); false (with *err set) when the state store refuses.
static bool read_counter(const char *key, long long *value, tool_error_t *err) {
    plugin_string_t k;
    plugin_string_set(&k, key);
    plugin_option_list_u8_t got;
    plughost_plugin_state_state_error_t serr;
    if (!plughost_plugin_state_get(&k, &got, &serr)) {
        plughost_plugin_state_state_error_free(&serr);
        return fail(err, EXPORTS_PLUGHOST_PLUGIN_TOOLS_TOOL_ERROR_UNAVAILABLE, "state is unavailable");
    }
    long long n = 0;
    if (got.is_some) {
        char buf[32] = {0};
        size_t len = got.val.len < sizeof buf - 1 ? got.val.len : sizeof buf - 1;
        memcpy(buf, got.val.ptr, len);
        n = atoll(buf);
        plugin_list_u8_free(&got.val);
    }
    *value = n;
    return true;
}

// Adds one to the counter; false (with *err set) when the state store refuses.
static bool bump_counter(const char *key, long long *value, tool_error_t *err) {
    long long n = 0;
    if (!read_counter(key, &n, err)) return false;
    plugin_string_t k;
    plugin_string_set(&k, key);
    plughost_plugin_state_state_error_t serr;
    n += 1;
    char text[32];
    int tlen = snprintf(text, sizeof text, "%lld", n);
    plugin_list_u8_t value_bytes = {(uint8_t *)text, (size_t)tlen};
    if (!plughost_plugin_state_set(&k, &value_bytes, &serr)) {
        plughost_plugin_state_state_error_free(&serr);
        return fail(err, EXPORTS_PLUGHOST_PLUGIN_TOOLS_TOOL_ERROR_UNAVAILABLE, "state refused the write");
    }
    *value = n;
    return true;
}

static bool hello(const char *args, size_t args_len, exports_plughost_plugin_tools_output_t *ret, tool_error_t *err) {
    char *name = NULL;
    if (json_get_string(args, args_len, "name", &name, NULL) != JSON_OK) {
        return fail(err, EXPORTS_PLUGHOST_PLUGIN_TOOLS_TOOL_ERROR_INVALID_ARGUMENTS, "`name` (a string) is required");
    }
    plugin_string_t key, greeting;
    plugin_string_set(&key, "greeting");
    bool configured = plughost_plugin_config_get(&key, &greeting);

    long long count = 0;
    if (!bump_counter("greetings", &count, err)) {
        free(name);
        if (configured) plugin_string_free(&greeting);
        return false;
    }
    char count_text[32];
    snprintf(count_text, sizeof count_text, "%lld", count);
    log_info("greeted someone", "count", count_text);

    const char *g = configured ? (const char *)greeting.ptr : "Hello";
    int glen = configured ? (int)greeting.len : 5;
    size_t cap = (size_t)glen + strlen(name) + 64;
    char *text = malloc(cap);
    int n = snprintf(text, cap, "%.*s, %s! (greeting #%lld)", glen, g, name, count);
    free(name);
    if (configured) plugin_string_free(&greeting);

    exports_plughost_plugin_tools_content_t *content = malloc(sizeof *content);
    content->tag = EXPORTS_PLUGHOST_PLUGIN_TOOLS_CONTENT_TEXT;
    content->val.text.ptr = (uint8_t *)text;
    content->val.text.len = (size_t)n;
    ret->content.ptr = content;
    ret->content.len = 1;
    ret->structured.is_some = false;
    return true;
}

static const char HELLO_SCHEMA[] =
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"description\":\"Who to greet.\"}},"
    "\"required\":[\"name\"]}";

static void some_bool(plugin_option_bool_t *o, bool v) {
    o->is_some = true;
    o->val = v;
}

void exports_plughost_plugin_tools_describe(exports_plughost_plugin_tools_manifest_t *ret) {
    plugin_string_dup(&ret->id, "{{id}}");
    plugin_string_dup(&ret->name, "{{id}}");
    plugin_string_dup(&ret->version, "0.1.0");
    plugin_string_dup(&ret->description, "Greets people and counts the greetings.");
    exports_plughost_plugin_tools_tool_t *tool = calloc(1, sizeof *tool);
    plugin_string_dup(&tool->name, "hello");
    tool->title.is_some = true;
    plugin_string_dup(&tool->title.val, "Hello");
    plugin_string_dup(&tool->description, "Greets someone by name (the greeting comes from config `greeting`).");
    plugin_string_dup(&tool->input_schema, HELLO_SCHEMA);
    tool->output_schema.is_some = false;
    some_bool(&tool->annotations.read_only, false);
    some_bool(&tool->annotations.destructive, false);
    some_bool(&tool->annotations.idempotent, false);
    some_bool(&tool->annotations.open_world, false);
    ret->tools.ptr = tool;
    ret->tools.len = 1;
}

bool exports_plughost_plugin_tools_call(plugin_string_t *tool, plugin_string_t *arguments,
                                        exports_plughost_plugin_tools_output_t *ret, tool_error_t *err) {
    bool ok;
    if (json_check_object((const char *)arguments->ptr, arguments->len) != JSON_OK) {
        ok = fail(err, EXPORTS_PLUGHOST_PLUGIN_TOOLS_TOOL_ERROR_INVALID_ARGUMENTS, "arguments must be a JSON object");
    } else if (tool->len == 5 && memcmp(tool->ptr, "hello", 5) == 0) {
        ok = hello((const char *)arguments->ptr, arguments->len, ret, err);
    } else {
        err->tag = EXPORTS_PLUGHOST_PLUGIN_TOOLS_TOOL_ERROR_UNKNOWN_TOOL;
        plugin_string_dup_n(&err->val.unknown_tool, (const char *)tool->ptr, tool->len);
        ok = false;
    }
    plugin_string_free(tool);
    plugin_string_free(arguments);
    return ok;
}

// ---- Contract 0.2.0: a resource and a prompt (the `export …@0.2.0` lines of wit/world.wit) ----------------------

static void some_string(plugin_option_string_t *o, const char *s) {
    o->is_some = true;
    plugin_string_dup(&o->val, s);
}

static bool is(const plugin_string_t *s, const char *text) {
    size_t n = strlen(text);
    return s->len == n && memcmp(s->ptr, text, n) == 0;
}

// The resources, listed once at load: `greetings` (clients read plughost://plugins/{{id}}/r/greetings).
void exports_plughost_plugin_resources_list(exports_plughost_plugin_resources_listing_t *ret) {
    exports_plughost_plugin_resources_resource_t *r = calloc(1, sizeof *r);
    plugin_string_dup(&r->path, "greetings");
    plugin_string_dup(&r->name, "greetings");
    some_string(&r->description, "How many greetings so far.");
    some_string(&r->mime_type, "text/plain");
    ret->resources.ptr = r;
    ret->resources.len = 1;
    ret->templates.ptr = NULL;
    ret->templates.len = 0;
}

// Reads a listed path (the host never asks for another); a read is a call: fuel, memory, grants, ledger.
bool exports_plughost_plugin_resources_read(plugin_string_t *path, exports_plughost_plugin_resources_list_contents_t *ret,
                                            tool_error_t *err) {
    bool known = is(path, "greetings");
    plugin_string_free(path);
    if (!known) return fail(err, EXPORTS_PLUGHOST_PLUGIN_TOOLS_TOOL_ERROR_NOT_FOUND, "no such resource");
    long long count = 0;
    if (!read_counter("greetings", &count, err)) return false;
    char *text = malloc(64);
    int n = snprintf(text, 64, "%lld greetings so far", count);
    exports_plughost_plugin_resources_contents_t *c = calloc(1, sizeof *c);
    plugin_string_dup(&c->path, "greetings");
    some_string(&c->mime_type, "text/plain");
    c->body.tag = EXPORTS_PLUGHOST_PLUGIN_RESOURCES_BODY_TEXT;
    c->body.val.text.ptr = (uint8_t *)text;
    c->body.val.text.len = (size_t)n;
    ret->ptr = c;
    ret->len = 1;
    return true;
}

// The prompts, listed once at load: `welcome` with one required argument (clients render {{id}}__welcome).
void exports_plughost_plugin_prompts_list(exports_plughost_plugin_prompts_list_prompt_t *ret) {
    exports_plughost_plugin_prompts_argument_t *arg = calloc(1, sizeof *arg);
    plugin_string_dup(&arg->name, "name");
    some_string(&arg->description, "Who to welcome.");
    arg->required = true;
    exports_plughost_plugin_prompts_prompt_t *p = calloc(1, sizeof *p);
    plugin_string_dup(&p->name, "welcome");
    some_string(&p->description, "Writes a welcome note for someone.");
    p->arguments.ptr = arg;
    p->arguments.len = 1;
    ret->ptr = p;
    ret->len = 1;
}

// Renders a prompt (the host checked its required arguments are there; all arguments are strings).
bool exports_plughost_plugin_prompts_get(plugin_string_t *name, exports_plughost_plugin_prompts_list_pair_t *arguments,
                                         exports_plughost_plugin_prompts_rendered_t *ret, tool_error_t *err) {
    const plugin_string_t *who = NULL;
    for (size_t i = 0; i < arguments->len; i++) {
        if (is(&arguments->ptr[i].key, "name")) who = &arguments->ptr[i].value;
    }
    bool ok;
    if (!is(name, "welcome")) {
        ok = fail(err, EXPORTS_PLUGHOST_PLUGIN_TOOLS_TOOL_ERROR_NOT_FOUND, "no such prompt");
    } else if (who == NULL) {
        ok = fail(err, EXPORTS_PLUGHOST_PLUGIN_TOOLS_TOOL_ERROR_INVALID_ARGUMENTS, "`name` is required");
    } else {
        size_t cap = who->len + 64;
        char *text = malloc(cap);
        int n = snprintf(text, cap, "Write a short welcome note for %.*s.", (int)who->len, (const char *)who->ptr);
        exports_plughost_plugin_prompts_message_t *m = calloc(1, sizeof *m);
        m->role = EXPORTS_PLUGHOST_PLUGIN_PROMPTS_ROLE_USER;
        m->text.ptr = (uint8_t *)text;
        m->text.len = (size_t)n;
        ret->description.is_some = false;
        ret->messages.ptr = m;
        ret->messages.len = 1;
        ok = true;
    }
    plugin_string_free(name);
    exports_plughost_plugin_prompts_list_pair_free(arguments);
    return ok;
}
