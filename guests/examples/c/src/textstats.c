// textstats: word and line statistics for a piece of text, written in C.
//
// Uses three host capabilities: `log` (one line per call), `state` (running totals across calls) and `config`
// (`top_words`: how many frequent words to report, default 5). Built by `plughost build`: C bindings from wit/,
// zig cc for wasm32-wasi, then the WASI preview1 reactor adapter.
//
// Memory rules of the bindings: strings the host passes to an export are ours to free; everything an export returns
// is malloc'd (the bindings free it after the host copied it); results of imports are malloc'd and ours to free.
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "plugin.h"

typedef exports_plughost_plugin_tools_tool_error_t tool_error_t;
typedef exports_plughost_plugin_tools_output_t output_t;

static const char *STOP[] = {"a",  "an", "and", "the",  "of",   "to",   "in", "is",
                             "it", "on", "for", "that", "this", "with", "as", "at"};

static bool fail(tool_error_t *err, uint8_t tag, const char *message) {
    err->tag = tag;
    plugin_string_dup(&err->val.invalid_arguments, message);  // every string variant shares this slot
    return false;
}

static bool invalid(tool_error_t *err, const char *message) {
    return fail(err, EXPORTS_PLUGHOST_PLUGIN_TOOLS_TOOL_ERROR_INVALID_ARGUMENTS, message);
}

// Returns `json` (malloc'd) as JSON content plus structured output.
static bool json_output(char *json, size_t len, output_t *ret) {
    exports_plughost_plugin_tools_content_t *content = malloc(sizeof *content);
    content->tag = EXPORTS_PLUGHOST_PLUGIN_TOOLS_CONTENT_JSON;
    plugin_string_dup_n(&content->val.json, json, len);
    ret->content.ptr = content;
    ret->content.len = 1;
    ret->structured.is_some = true;
    ret->structured.val.ptr = (uint8_t *)json;
    ret->structured.val.len = len;
    return true;
}

static bool counter_get(const char *key, long long *value, tool_error_t *err) {
    plugin_string_t k;
    plugin_string_set(&k, key);
    plugin_option_list_u8_t got;
    plughost_plugin_state_state_error_t serr;
    if (!plughost_plugin_state_get(&k, &got, &serr)) {
        plughost_plugin_state_state_error_free(&serr);
        return fail(err, EXPORTS_PLUGHOST_PLUGIN_TOOLS_TOOL_ERROR_UNAVAILABLE, "state is unavailable");
    }
    *value = 0;
    if (got.is_some) {
        char buf[32] = {0};
        size_t len = got.val.len < sizeof buf - 1 ? got.val.len : sizeof buf - 1;
        memcpy(buf, got.val.ptr, len);
        *value = atoll(buf);
        plugin_list_u8_free(&got.val);
    }
    return true;
}

static bool counter_set(const char *key, long long value, tool_error_t *err) {
    plugin_string_t k;
    plugin_string_set(&k, key);
    char text[32];
    int n = snprintf(text, sizeof text, "%lld", value);
    plugin_list_u8_t bytes = {(uint8_t *)text, (size_t)n};
    plughost_plugin_state_state_error_t serr;
    if (!plughost_plugin_state_set(&k, &bytes, &serr)) {
        plughost_plugin_state_state_error_free(&serr);
        return fail(err, EXPORTS_PLUGHOST_PLUGIN_TOOLS_TOOL_ERROR_UNAVAILABLE, "state refused the write");
    }
    return true;
}

typedef struct {
    char *word;
    long count;
} entry;

static int by_word(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int by_count_then_word(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->count != y->count) return x->count < y->count ? 1 : -1;
    return strcmp(x->word, y->word);
}

static bool is_word_char(unsigned char c) {
    return isalnum(c) || c == '\'';
}

static bool is_stop(const char *w) {
    for (size_t i = 0; i < sizeof STOP / sizeof *STOP; i++)
        if (strcmp(STOP[i], w) == 0) return true;
    return false;
}

static long long config_top_words(void) {
    plugin_string_t key, value;
    plugin_string_set(&key, "top_words");
    if (!plughost_plugin_config_get(&key, &value)) return 5;
    char buf[32] = {0};
    memcpy(buf, value.ptr, value.len < 31 ? value.len : 31);
    plugin_string_free(&value);
    return atoll(buf);
}

static bool analyze(const char *args, size_t args_len, output_t *ret, tool_error_t *err) {
    char *text = NULL;
    size_t len = 0;
    if (json_get_string(args, args_len, "text", &text, &len) != JSON_OK)
        return invalid(err, "`text` (a string) is required");
    int64_t top = 0;
    json_status ts = json_get_int(args, args_len, "top", &top);
    if (ts == JSON_MISSING) top = config_top_words();
    else if (ts != JSON_OK || top < 0) {
        free(text);
        return invalid(err, "`top` must be a non-negative integer");
    }

    // Characters (code points), lines, and the words, lowercased.
    long characters = 0, lines = 0;
    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)text[i] & 0xC0) != 0x80) characters++;
        if (text[i] == '\n') lines++;
    }
    if (len > 0 && text[len - 1] != '\n') lines++;
    char **words = NULL;
    size_t nwords = 0, cap = 0;
    for (size_t i = 0; i < len;) {
        if (!is_word_char((unsigned char)text[i])) {
            i++;
            continue;
        }
        size_t start = i;
        while (i < len && is_word_char((unsigned char)text[i])) i++;
        if (nwords == cap) {
            cap = cap ? cap * 2 : 64;
            words = realloc(words, cap * sizeof *words);
        }
        char *w = malloc(i - start + 1);
        for (size_t j = start; j < i; j++) w[j - start] = (char)tolower((unsigned char)text[j]);
        w[i - start] = 0;
        words[nwords++] = w;
    }
    free(text);

    // Unique words and frequencies: sort, then count runs.
    qsort(words, nwords, sizeof *words, by_word);
    entry *freq = calloc(nwords ? nwords : 1, sizeof *freq);
    size_t nfreq = 0, unique = 0;
    for (size_t i = 0; i < nwords;) {
        size_t j = i;
        while (j < nwords && strcmp(words[i], words[j]) == 0) j++;
        unique++;
        if (!is_stop(words[i])) freq[nfreq++] = (entry){words[i], (long)(j - i)};
        i = j;
    }
    qsort(freq, nfreq, sizeof *freq, by_count_then_word);

    long long documents = 0, total = 0;
    bool ok = counter_get("documents", &documents, err) && counter_get("words", &total, err) &&
              counter_set("documents", documents + 1, err) && counter_set("words", total + (long long)nwords, err);
    if (ok) {
        char *out = NULL;
        size_t olen = 0;
        char num[160];
        int n = snprintf(num, sizeof num, "{\"characters\":%ld,\"words\":%zu,\"lines\":%ld,\"unique_words\":%zu,\"top_words\":[",
                         characters, nwords, lines, unique);
        json_append_raw(&out, &olen, num, (size_t)n);
        for (size_t i = 0; i < nfreq && i < (size_t)top; i++) {
            if (i) json_append_raw(&out, &olen, ",", 1);
            json_append_raw(&out, &olen, "{\"word\":", 8);
            json_append_string(&out, &olen, freq[i].word, strlen(freq[i].word));
            n = snprintf(num, sizeof num, ",\"count\":%ld}", freq[i].count);
            json_append_raw(&out, &olen, num, (size_t)n);
        }
        json_append_raw(&out, &olen, "]}", 2);
        json_output(out, olen, ret);

        char words_text[32], docs_text[32];
        snprintf(words_text, sizeof words_text, "%zu", nwords);
        snprintf(docs_text, sizeof docs_text, "%lld", documents + 1);
        plugin_string_t msg;
        plugin_string_set(&msg, "analyzed a document");
        plughost_plugin_log_pair_t pairs[2];
        plugin_string_set(&pairs[0].key, "words");
        plugin_string_set(&pairs[0].value, words_text);
        plugin_string_set(&pairs[1].key, "documents");
        plugin_string_set(&pairs[1].value, docs_text);
        plughost_plugin_log_list_pair_t fields = {pairs, 2};
        plughost_plugin_log_write(PLUGHOST_PLUGIN_LOG_LEVEL_INFO, &msg, &fields);
    }
    for (size_t i = 0; i < nwords; i++) free(words[i]);
    free(words);
    free(freq);
    return ok;
}

static bool totals(output_t *ret, tool_error_t *err) {
    long long documents = 0, words = 0;
    if (!counter_get("documents", &documents, err) || !counter_get("words", &words, err)) return false;
    char *out = malloc(96);
    int n = snprintf(out, 96, "{\"documents\":%lld,\"words\":%lld}", documents, words);
    return json_output(out, (size_t)n, ret);
}

static bool count_primes(const char *args, size_t args_len, output_t *ret, tool_error_t *err) {
    int64_t below = 0;
    if (json_get_int(args, args_len, "below", &below) != JSON_OK || below < 0)
        return invalid(err, "`below` must be a non-negative integer");
    long long count = 0;
    for (int64_t n = 2; n < below; n++) {
        int64_t d = 2;
        while (d * d <= n && n % d) d++;
        if (d * d > n) count++;
    }
    char *out = malloc(96);
    int n = snprintf(out, 96, "{\"below\":%lld,\"primes\":%lld}", (long long)below, count);
    return json_output(out, (size_t)n, ret);
}

typedef struct {
    const char *name, *description, *schema;
    bool read_only;
} tool_info;

static const tool_info TOOLS[] = {
    {"analyze", "Counts characters, words, lines and the most frequent words of a text; keeps running totals.",
     "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\",\"description\":\"The text to analyze.\"},"
     "\"top\":{\"type\":\"integer\",\"minimum\":0,\"description\":\"How many frequent words (default: config "
     "top_words, else 5).\"}},\"required\":[\"text\"]}",
     false},
    {"totals", "Documents and words analyzed so far.", "{\"type\":\"object\",\"properties\":{}}", true},
    {"count_primes", "Counts the primes below a number by trial division (CPU-bound: large inputs run out of fuel).",
     "{\"type\":\"object\",\"properties\":{\"below\":{\"type\":\"integer\",\"minimum\":0}},\"required\":[\"below\"]}",
     true},
};
#define NTOOLS (sizeof TOOLS / sizeof *TOOLS)

static void some_bool(plugin_option_bool_t *o, bool v) {
    o->is_some = true;
    o->val = v;
}

void exports_plughost_plugin_tools_describe(exports_plughost_plugin_tools_manifest_t *ret) {
    plugin_string_dup(&ret->id, "c-textstats");
    plugin_string_dup(&ret->name, "Text statistics (C)");
    plugin_string_dup(&ret->version, "0.1.0");
    plugin_string_dup(&ret->description, "Word and line statistics with running totals; the C example plugin.");
    exports_plughost_plugin_tools_tool_t *tools = calloc(NTOOLS, sizeof *tools);
    for (size_t i = 0; i < NTOOLS; i++) {
        plugin_string_dup(&tools[i].name, TOOLS[i].name);
        tools[i].title.is_some = false;
        plugin_string_dup(&tools[i].description, TOOLS[i].description);
        plugin_string_dup(&tools[i].input_schema, TOOLS[i].schema);
        tools[i].output_schema.is_some = false;
        some_bool(&tools[i].annotations.read_only, TOOLS[i].read_only);
        some_bool(&tools[i].annotations.destructive, false);
        some_bool(&tools[i].annotations.idempotent, TOOLS[i].read_only);
        some_bool(&tools[i].annotations.open_world, false);
    }
    ret->tools.ptr = tools;
    ret->tools.len = NTOOLS;
}

static bool named(plugin_string_t *s, const char *name) {
    return s->len == strlen(name) && memcmp(s->ptr, name, s->len) == 0;
}

bool exports_plughost_plugin_tools_call(plugin_string_t *tool, plugin_string_t *arguments, output_t *ret,
                                        tool_error_t *err) {
    const char *args = (const char *)arguments->ptr;
    size_t len = arguments->len;
    bool ok;
    if (json_check_object(args, len) != JSON_OK) ok = invalid(err, "arguments must be a JSON object");
    else if (named(tool, "analyze")) ok = analyze(args, len, ret, err);
    else if (named(tool, "totals")) ok = totals(ret, err);
    else if (named(tool, "count_primes")) ok = count_primes(args, len, ret, err);
    else {
        err->tag = EXPORTS_PLUGHOST_PLUGIN_TOOLS_TOOL_ERROR_UNKNOWN_TOOL;
        plugin_string_dup_n(&err->val.unknown_tool, (const char *)tool->ptr, tool->len);
        ok = false;
    }
    plugin_string_free(tool);
    plugin_string_free(arguments);
    return ok;
}
