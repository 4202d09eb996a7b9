#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *p;
    const char *end;
} cur;

static void ws(cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int hexval(char h) {
    if (h >= '0' && h <= '9') return h - '0';
    if (h >= 'a' && h <= 'f') return h - 'a' + 10;
    if (h >= 'A' && h <= 'F') return h - 'A' + 10;
    return -1;
}

static bool put_utf8(char *out, size_t *o, uint32_t cp) {
    if (cp < 0x80) {
        out[(*o)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*o)++] = (char)(0xC0 | (cp >> 6));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out[(*o)++] = (char)(0xE0 | (cp >> 12));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x110000) {
        out[(*o)++] = (char)(0xF0 | (cp >> 18));
        out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        return false;
    }
    return true;
}

static bool hex4(cur *c, uint32_t *v) {
    if (c->end - c->p < 4) return false;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(c->p[i]);
        if (h < 0) return false;
        *v = (*v << 4) | (uint32_t)h;
    }
    c->p += 4;
    return true;
}

// Parses a string at c->p (which is at the opening quote). With out != NULL, writes the unescaped bytes
// (the caller sized it: unescaped is never longer than escaped).
static bool parse_string(cur *c, char *out, size_t *out_len) {
    if (c->p >= c->end || *c->p != '"') return false;
    c->p++;
    size_t o = 0;
    while (c->p < c->end) {
        char ch = *c->p++;
        if (ch == '"') {
            if (out_len) *out_len = o;
            return true;
        }
        if ((unsigned char)ch < 0x20) return false;
        if (ch != '\\') {
            if (out) out[o] = ch;
            o++;
            continue;
        }
        if (c->p >= c->end) return false;
        char e = *c->p++;
        char lit = 0;
        switch (e) {
            case '"': lit = '"'; break;
            case '\\': lit = '\\'; break;
            case '/': lit = '/'; break;
            case 'b': lit = '\b'; break;
            case 'f': lit = '\f'; break;
            case 'n': lit = '\n'; break;
            case 'r': lit = '\r'; break;
            case 't': lit = '\t'; break;
            case 'u': {
                uint32_t cp;
                if (!hex4(c, &cp)) return false;
                if (cp >= 0xD800 && cp < 0xDC00) {
                    uint32_t lo;
                    if (c->end - c->p < 2 || c->p[0] != '\\' || c->p[1] != 'u') return false;
                    c->p += 2;
                    if (!hex4(c, &lo) || lo < 0xDC00 || lo > 0xDFFF) return false;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp < 0xE000) {
                    return false;
                }
                char tmp[4];
                size_t n = 0;
                put_utf8(tmp, &n, cp);
                for (size_t i = 0; i < n; i++) {
                    if (out) out[o] = tmp[i];
                    o++;
                }
                continue;
            }
            default: return false;
        }
        if (out) out[o] = lit;
        o++;
    }
    return false;
}

static bool skip_value(cur *c, int depth);

static bool skip_literal(cur *c, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0) return false;
    c->p += n;
    return true;
}

static bool skip_number(cur *c) {
    const char *start = c->p;
    if (c->p < c->end && *c->p == '-') c->p++;
    if (c->p >= c->end) return false;
    if (*c->p == '0') {
        c->p++;
    } else if (*c->p >= '1' && *c->p <= '9') {
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
    } else {
        return false;
    }
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') return false;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-')) c->p++;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') return false;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
    }
    return c->p > start;
}

static bool skip_container(cur *c, char close, int depth) {
    bool object = close == '}';
    c->p++;
    ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return true;
    }
    for (;;) {
        ws(c);
        if (object) {
            if (!parse_string(c, NULL, NULL)) return false;
            ws(c);
            if (c->p >= c->end || *c->p != ':') return false;
            c->p++;
        }
        if (!skip_value(c, depth + 1)) return false;
        ws(c);
        if (c->p >= c->end) return false;
        if (*c->p == ',') {
            c->p++;
            continue;
        }
        if (*c->p == close) {
            c->p++;
            return true;
        }
        return false;
    }
}

static bool skip_value(cur *c, int depth) {
    if (depth > 64) return false;
    ws(c);
    if (c->p >= c->end) return false;
    switch (*c->p) {
        case '"': return parse_string(c, NULL, NULL);
        case '{': return skip_container(c, '}', depth);
        case '[': return skip_container(c, ']', depth);
        case 't': return skip_literal(c, "true");
        case 'f': return skip_literal(c, "false");
        case 'n': return skip_literal(c, "null");
        default: return skip_number(c);
    }
}

json_status json_check_object(const char *json, size_t len) {
    cur c = {json, json + len};
    ws(&c);
    if (c.p >= c.end || *c.p != '{') return JSON_INVALID;
    if (!skip_value(&c, 0)) return JSON_INVALID;
    ws(&c);
    return c.p == c.end ? JSON_OK : JSON_INVALID;
}

// Positions c at the value of top-level `key`.
static json_status find(const char *json, size_t len, const char *key, cur *c) {
    if (json_check_object(json, len) != JSON_OK) return JSON_INVALID;
    c->p = json;
    c->end = json + len;
    ws(c);
    c->p++;  // '{'
    size_t klen = strlen(key);
    for (;;) {
        ws(c);
        if (*c->p == '}') return JSON_MISSING;
        const char *kstart = c->p;
        size_t n = 0;
        parse_string(c, NULL, &n);
        // Compare unescaped: decode into a small buffer only when lengths match.
        bool match = false;
        if (n == klen) {
            char *tmp = malloc(n + 1);
            if (!tmp) return JSON_INVALID;
            cur k = {kstart, c->end};
            parse_string(&k, tmp, NULL);
            match = memcmp(tmp, key, n) == 0;
            free(tmp);
        }
        ws(c);
        c->p++;  // ':'
        ws(c);
        if (match) return JSON_OK;
        skip_value(c, 1);
        ws(c);
        if (*c->p == ',') c->p++;
    }
}

json_status json_get_string(const char *json, size_t len, const char *key, char **out, size_t *out_len) {
    cur c;
    json_status s = find(json, len, key, &c);
    if (s != JSON_OK) return s;
    if (*c.p != '"') return JSON_WRONG_TYPE;
    const char *start = c.p;
    if (!parse_string(&c, NULL, NULL)) return JSON_INVALID;
    char *buf = malloc((size_t)(c.p - start) + 1);
    if (!buf) return JSON_INVALID;
    cur again = {start, c.end};
    size_t n = 0;
    parse_string(&again, buf, &n);
    buf[n] = 0;
    *out = buf;
    if (out_len) *out_len = n;
    return JSON_OK;
}

json_status json_get_int(const char *json, size_t len, const char *key, int64_t *out) {
    cur c;
    json_status s = find(json, len, key, &c);
    if (s != JSON_OK) return s;
    const char *start = c.p;
    if (!skip_number(&c)) return JSON_WRONG_TYPE;
    int64_t v = 0;
    bool neg = *start == '-';
    for (const char *p = neg ? start + 1 : start; p < c.p; p++) {
        if (*p < '0' || *p > '9') return JSON_WRONG_TYPE;  // a fraction or exponent: not an integer
        if (v > (INT64_MAX - (*p - '0')) / 10) return JSON_WRONG_TYPE;
        v = v * 10 + (*p - '0');
    }
    *out = neg ? -v : v;
    return JSON_OK;
}

bool json_append_raw(char **buf, size_t *blen, const char *s, size_t n) {
    char *nb = realloc(*buf, *blen + n + 1);
    if (!nb) return false;
    memcpy(nb + *blen, s, n);
    *blen += n;
    nb[*blen] = 0;
    *buf = nb;
    return true;
}

bool json_append_string(char **buf, size_t *blen, const char *s, size_t n) {
    if (!json_append_raw(buf, blen, "\"", 1)) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[8];
        const char *piece = NULL;
        size_t plen = 0;
        switch (ch) {
            case '"': piece = "\\\""; plen = 2; break;
            case '\\': piece = "\\\\"; plen = 2; break;
            case '\n': piece = "\\n"; plen = 2; break;
            case '\r': piece = "\\r"; plen = 2; break;
            case '\t': piece = "\\t"; plen = 2; break;
            default:
                if (ch < 0x20) {
                    snprintf(esc, sizeof esc, "\\u%04x", ch);
                    piece = esc;
                    plen = 6;
                }
        }
        bool ok = piece ? json_append_raw(buf, blen, piece, plen) : json_append_raw(buf, blen, (const char *)&s[i], 1);
        if (!ok) return false;
    }
    return json_append_raw(buf, blen, "\"", 1);
}
