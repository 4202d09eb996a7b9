// A tiny JSON reader for tool arguments (a flat object) and a string escaper for output. Enough for plugins whose
// arguments are strings, numbers and booleans; use a full library (e.g. cJSON) for nested documents.
#ifndef PLUGHOST_JSON_H
#define PLUGHOST_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    JSON_OK = 0,
    JSON_MISSING,    // no such key
    JSON_WRONG_TYPE, // the key holds another type
    JSON_INVALID,    // the document is not a JSON object
} json_status;

// Checks that `json` (len bytes) is one JSON object, and nothing else.
json_status json_check_object(const char *json, size_t len);
// The string value of top-level `key`, unescaped, in a malloc'd NUL-terminated buffer (*out_len without the NUL).
json_status json_get_string(const char *json, size_t len, const char *key, char **out, size_t *out_len);
// The integer value of top-level `key`.
json_status json_get_int(const char *json, size_t len, const char *key, int64_t *out);
// Appends `s` (n bytes) as a quoted JSON string to the malloc'd buffer *buf (length *blen); returns false on OOM.
bool json_append_string(char **buf, size_t *blen, const char *s, size_t n);
// Appends raw bytes.
bool json_append_raw(char **buf, size_t *blen, const char *s, size_t n);

#endif
