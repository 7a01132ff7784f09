/*
 * The JSON Schema subset of jsonschema.h. Compiling walks the schema once
 * and checks every keyword's name and the shape of its value (and the depth),
 * so validating can walk schema and value side by side and trust what it
 * reads; the compiled form is a private copy of the schema. Validation stops
 * at the first violation and writes "path: rule" into the caller's buffer,
 * building each child's path ("payload.tags[2]") in a buffer of its frame.
 */
#include "jsonschema.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#define PATH_CAP 256

struct usher_jsonschema {
    json_t *root; /* owned, checked by compile_node */
};

/* What a keyword's value must be. */
typedef enum value_shape {
    ANY_VALUE,   /* const */
    TEXT,        /* annotations */
    LIST,        /* examples */
    BOOLEAN,     /* additionalProperties */
    COUNT,       /* an integer >= 0 */
    NUMBER,      /* minimum, maximum */
    TYPE_NAMES,  /* type */
    SCHEMA,      /* items */
    SCHEMA_MAP,  /* properties */
    SCHEMA_LIST, /* oneOf */
    NAME_LIST,   /* required: distinct strings */
    VALUE_LIST,  /* enum: at least one value */
} value_shape;

static const struct keyword {
    const char *name;
    value_shape shape;
} keywords[] = {
    { "$schema", TEXT },          { "$id", TEXT },           { "title", TEXT },
    { "description", TEXT },      { "examples", LIST },      { "type", TYPE_NAMES },
    { "properties", SCHEMA_MAP }, { "required", NAME_LIST }, { "additionalProperties", BOOLEAN },
    { "items", SCHEMA },          { "enum", VALUE_LIST },    { "const", ANY_VALUE },
    { "minLength", COUNT },       { "maxLength", COUNT },    { "minimum", NUMBER },
    { "maximum", NUMBER },        { "minItems", COUNT },     { "maxItems", COUNT },
    { "oneOf", SCHEMA_LIST },
};

static const char *const type_names[] = { "null",   "boolean", "object", "array",
                                          "number", "integer", "string" };

/* Appends printf-style text to the NUL-terminated buf of cap bytes, truncating. */
__attribute__((format(printf, 3, 4))) static void append(char *buf, size_t cap, const char *fmt,
                                                         ...)
{
    size_t used = strnlen(buf, cap);
    va_list ap;

    if (used + 1 >= cap)
        return;
    va_start(ap, fmt);
    vsnprintf(buf + used, cap - used, fmt, ap);
    va_end(ap);
}

/* Writes a child's path into sub (PATH_CAP bytes); a path too long is cut short. */
__attribute__((format(printf, 2, 3))) static void join_path(char *sub, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sub, PATH_CAP, fmt, ap);
    va_end(ap);
}

/* Writes "path: message" into err; returns false, for `return fail(...)`. */
__attribute__((format(printf, 4, 5))) static bool fail(char *err, size_t errlen, const char *path,
                                                       const char *fmt, ...)
{
    va_list ap;
    size_t used;

    snprintf(err, errlen, "%s: ", path);
    used = strnlen(err, errlen);
    if (used + 1 < errlen) {
        va_start(ap, fmt);
        vsnprintf(err + used, errlen - used, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* ---- compiling ---------------------------------------------------------- */

static bool compile_node(json_t *schema, const char *path, int depth, char *err, size_t errlen);

static bool is_type_name(json_t *name)
{
    for (size_t i = 0; json_is_string(name) && i < sizeof(type_names) / sizeof(type_names[0]);
         i++) {
        if (strcmp(json_string_value(name), type_names[i]) == 0)
            return true;
    }
    return false;
}

/* True when list is an array of distinct strings, each passing ok (if given). */
static bool distinct_strings(json_t *list, bool (*ok)(json_t *))
{
    size_t n = json_array_size(list);

    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(list, i);

        if (!json_is_string(item) || (ok != NULL && !ok(item)))
            return false;
        for (size_t j = 0; j < i; j++) {
            if (json_equal(item, json_array_get(list, j)))
                return false;
        }
    }
    return json_is_array(list);
}

static bool compile_subschemas(value_shape shape, json_t *value, const char *path, int depth,
                               char *err, size_t errlen)
{
    char sub[PATH_CAP];
    const char *name;
    json_t *item;
    size_t i;

    if (shape == SCHEMA)
        return compile_node(value, path, depth + 1, err, errlen);
    if (shape == SCHEMA_MAP) {
        json_object_foreach(value, name, item)
        {
            join_path(sub, "%s/%s", path, name);
            if (!compile_node(item, sub, depth + 1, err, errlen))
                return false;
        }
        return true;
    }
    json_array_foreach(value, i, item)
    {
        join_path(sub, "%s/%zu", path, i);
        if (!compile_node(item, sub, depth + 1, err, errlen))
            return false;
    }
    return true;
}

/* Checks the value of one keyword (and the schemas inside it). */
static bool compile_keyword(const struct keyword *k, json_t *value, const char *path, int depth,
                            char *err, size_t errlen)
{
    bool ok = true;

    switch (k->shape) {
    case ANY_VALUE:
        break;
    case TEXT:
        ok = json_is_string(value);
        break;
    case LIST:
        ok = json_is_array(value);
        break;
    case BOOLEAN:
        ok = json_is_boolean(value);
        break;
    case COUNT:
        ok = json_is_integer(value) && json_integer_value(value) >= 0;
        break;
    case NUMBER:
        ok = json_is_number(value);
        break;
    case TYPE_NAMES:
        ok = is_type_name(value) ||
             (json_array_size(value) > 0 && distinct_strings(value, is_type_name));
        break;
    case NAME_LIST:
        ok = distinct_strings(value, NULL);
        break;
    case VALUE_LIST:
        ok = json_array_size(value) > 0;
        break;
    case SCHEMA:
    case SCHEMA_MAP:
    case SCHEMA_LIST:
        ok = k->shape == SCHEMA_LIST ? json_array_size(value) > 0 : json_is_object(value);
        if (ok)
            return compile_subschemas(k->shape, value, path, depth, err, errlen);
        break;
    }
    if (!ok)
        return fail(err, errlen, path, "invalid value of \"%s\"", k->name);
    return true;
}

static const struct keyword *find_keyword(const char *name)
{
    for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
        if (strcmp(keywords[i].name, name) == 0)
            return &keywords[i];
    }
    return NULL;
}

/* With additionalProperties false, a required name missing from properties is a typo. */
static bool required_are_listed(json_t *schema, const char *path, char *err, size_t errlen)
{
    json_t *properties = json_object_get(schema, "properties");
    json_t *name;
    size_t i;

    if (!json_is_false(json_object_get(schema, "additionalProperties")))
        return true;
    json_array_foreach(json_object_get(schema, "required"), i, name)
    {
        if (json_object_get(properties, json_string_value(name)) == NULL)
            return fail(err, errlen, path,
                        "required property \"%s\" is not in properties, and"
                        " additionalProperties is false",
                        json_string_value(name));
    }
    return true;
}

static bool compile_node(json_t *schema, const char *path, int depth, char *err, size_t errlen)
{
    char sub[PATH_CAP];
    const char *name;
    json_t *value;

    if (depth > USHER_JSONSCHEMA_MAX_DEPTH)
        return fail(err, errlen, path, "schemas nest deeper than %d", USHER_JSONSCHEMA_MAX_DEPTH);
    if (!json_is_object(schema))
        return fail(err, errlen, path, "a schema must be an object");
    json_object_foreach(schema, name, value)
    {
        const struct keyword *k = find_keyword(name);

        if (k == NULL)
            return fail(err, errlen, path, "unknown keyword \"%s\"", name);
        join_path(sub, "%s/%s", path, name);
        if (!compile_keyword(k, value, sub, depth, err, errlen))
            return false;
    }
    return required_are_listed(schema, path, err, errlen);
}

usher_err usher_jsonschema_compile(json_t *schema, usher_jsonschema **out, char *err, size_t errlen)
{
    char scratch[1];
    usher_jsonschema *compiled;

    *out = NULL;
    if (err == NULL || errlen == 0) {
        err = scratch;
        errlen = sizeof(scratch);
    }
    err[0] = '\0';
    if (!compile_node(schema, "#", 1, err, errlen))
        return USHER_ERR_INVALID;
    compiled = usher_calloc(1, sizeof(*compiled));
    compiled->root = usher_need(json_deep_copy(schema));
    *out = compiled;
    return USHER_OK;
}

void usher_jsonschema_free(usher_jsonschema *schema)
{
    if (schema == NULL)
        return;
    json_decref(schema->root);
    free(schema);
}

/* ---- validating --------------------------------------------------------- */

static bool validate_node(json_t *schema, json_t *value, const char *path, char *err,
                          size_t errlen);

/* The JSON Schema type name of value ("integer" for a number without fraction). */
static const char *type_of(json_t *value)
{
    static const char *const names[] = {
        [JSON_OBJECT] = "object",   [JSON_ARRAY] = "array", [JSON_STRING] = "string",
        [JSON_INTEGER] = "integer", [JSON_REAL] = "number", [JSON_TRUE] = "boolean",
        [JSON_FALSE] = "boolean",   [JSON_NULL] = "null",
    };

    return names[json_typeof(value)];
}

/* Writes value as compact JSON into buf (cap > 4), or "..." when it does not fit. */
static const char *describe(json_t *value, char *buf, size_t cap)
{
    size_t n = json_dumpb(value, buf, cap - 1, JSON_COMPACT | JSON_ENCODE_ANY);

    if (n == 0 || n >= cap)
        snprintf(buf, cap, "...");
    else
        buf[n] = '\0';
    return buf;
}

static bool type_matches(json_t *name, json_t *value)
{
    const char *want = json_string_value(name);

    if (strcmp(want, "number") == 0)
        return json_is_number(value);
    return strcmp(want, type_of(value)) == 0;
}

static bool check_type(json_t *type, json_t *value, const char *path, char *err, size_t errlen)
{
    json_t *name;
    size_t i;

    if (type == NULL || (json_is_string(type) && type_matches(type, value)))
        return true;
    json_array_foreach(type, i, name)
    {
        if (type_matches(name, value))
            return true;
    }
    fail(err, errlen, path, "expected ");
    if (json_is_string(type))
        append(err, errlen, "%s", json_string_value(type));
    json_array_foreach(type, i, name)
    {
        append(err, errlen, "%s%s", i == 0 ? "" : " or ", json_string_value(name));
    }
    append(err, errlen, ", got %s", type_of(value));
    return false;
}

static bool check_values(json_t *schema, json_t *value, const char *path, char *err, size_t errlen)
{
    json_t *constant = json_object_get(schema, "const");
    json_t *choices = json_object_get(schema, "enum");
    json_t *choice;
    char shown[128];
    size_t i;

    if (constant != NULL && !json_equal(constant, value))
        return fail(err, errlen, path, "must be %s (const)",
                    describe(constant, shown, sizeof(shown)));
    if (choices == NULL)
        return true;
    json_array_foreach(choices, i, choice)
    {
        if (json_equal(choice, value))
            return true;
    }
    fail(err, errlen, path, "must be one of ");
    json_array_foreach(choices, i, choice)
    {
        append(err, errlen, "%s%s", i == 0 ? "" : ", ", describe(choice, shown, sizeof(shown)));
    }
    append(err, errlen, " (enum)");
    return false;
}

/* The number of Unicode code points of a (valid UTF-8) JSON string. */
static size_t code_points(json_t *string)
{
    const unsigned char *p = (const unsigned char *)json_string_value(string);
    size_t len = json_string_length(string), n = 0;

    for (size_t i = 0; i < len; i++)
        n += (p[i] & 0xC0) != 0x80; /* continuation bytes start 10xxxxxx */
    return n;
}

/* Checks a count (what: "length", "item count") against the bounds named min and max. */
static bool check_count(json_t *schema, size_t count, const char *min, const char *max,
                        const char *what, const char *path, char *err, size_t errlen)
{
    json_t *low = json_object_get(schema, min), *high = json_object_get(schema, max);

    if (low != NULL && count < (size_t)json_integer_value(low))
        return fail(err, errlen, path, "%s %zu is below %s %lld", what, count, min,
                    (long long)json_integer_value(low));
    if (high != NULL && count > (size_t)json_integer_value(high))
        return fail(err, errlen, path, "%s %zu is above %s %lld", what, count, max,
                    (long long)json_integer_value(high));
    return true;
}

/* <0, 0 or >0 as a is below, equal to or above b; exact when both are integers. */
static int compare_numbers(json_t *a, json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);

        return (x > y) - (x < y);
    }
    return (json_number_value(a) > json_number_value(b)) -
           (json_number_value(a) < json_number_value(b));
}

static bool check_number(json_t *schema, json_t *value, const char *path, char *err, size_t errlen)
{
    json_t *low = json_object_get(schema, "minimum"), *high = json_object_get(schema, "maximum");
    char bound[64], got[64];

    if (low != NULL && compare_numbers(value, low) < 0)
        return fail(err, errlen, path, "%s is below minimum %s", describe(value, got, sizeof(got)),
                    describe(low, bound, sizeof(bound)));
    if (high != NULL && compare_numbers(value, high) > 0)
        return fail(err, errlen, path, "%s is above maximum %s", describe(value, got, sizeof(got)),
                    describe(high, bound, sizeof(bound)));
    return true;
}

static bool check_array(json_t *schema, json_t *value, const char *path, char *err, size_t errlen)
{
    json_t *items = json_object_get(schema, "items");
    char sub[PATH_CAP];
    json_t *item;
    size_t i;

    if (!check_count(schema, json_array_size(value), "minItems", "maxItems", "item count", path,
                     err, errlen))
        return false;
    json_array_foreach(value, i, item)
    {
        join_path(sub, "%s[%zu]", path, i);
        if (items != NULL && !validate_node(items, item, sub, err, errlen))
            return false;
    }
    return true;
}

static bool check_object(json_t *schema, json_t *value, const char *path, char *err, size_t errlen)
{
    json_t *properties = json_object_get(schema, "properties");
    json_t *required = json_object_get(schema, "required");
    bool closed = json_is_false(json_object_get(schema, "additionalProperties"));
    char sub[PATH_CAP];
    const char *name;
    json_t *item;
    size_t i;

    json_array_foreach(required, i, item)
    {
        if (json_object_get(value, json_string_value(item)) == NULL)
            return fail(err, errlen, path, "missing required property \"%s\"",
                        json_string_value(item));
    }
    json_object_foreach(value, name, item)
    {
        if (closed && json_object_get(properties, name) == NULL)
            return fail(err, errlen, path,
                        "property \"%.80s\" is not allowed (additionalProperties: false)", name);
    }
    json_object_foreach(properties, name, item)
    {
        json_t *present = json_object_get(value, name);

        join_path(sub, "%s.%s", path, name);
        if (present != NULL && !validate_node(item, present, sub, err, errlen))
            return false;
    }
    return true;
}

/*
 * Exactly one branch must match. When none does, err lists every branch's
 * reason: "payload: matches none of oneOf: (1) ...; (2) ...".
 */
static bool check_one_of(json_t *branches, json_t *value, const char *path, char *err,
                         size_t errlen)
{
    size_t matched = 0;
    json_t *branch;
    size_t i;

    fail(err, errlen, path, "matches none of oneOf:");
    json_array_foreach(branches, i, branch)
    {
        size_t mark = strnlen(err, errlen), used;

        append(err, errlen, "%s(%zu) ", i == 0 ? " " : "; ", i + 1);
        used = strnlen(err, errlen);
        if (validate_node(branch, value, path, err + used, errlen - used)) {
            matched++;
            err[mark] = '\0';
        }
    }
    if (matched == 1) {
        err[0] = '\0';
        return true;
    }
    if (matched > 1)
        return fail(err, errlen, path, "matches %zu schemas of oneOf, expected exactly one",
                    matched);
    return false;
}

static bool validate_node(json_t *schema, json_t *value, const char *path, char *err, size_t errlen)
{
    json_t *one_of = json_object_get(schema, "oneOf");

    if (!check_type(json_object_get(schema, "type"), value, path, err, errlen) ||
        !check_values(schema, value, path, err, errlen))
        return false;
    if (json_is_string(value) && !check_count(schema, code_points(value), "minLength", "maxLength",
                                              "length", path, err, errlen))
        return false;
    if (json_is_number(value) && !check_number(schema, value, path, err, errlen))
        return false;
    if (json_is_array(value) && !check_array(schema, value, path, err, errlen))
        return false;
    if (json_is_object(value) && !check_object(schema, value, path, err, errlen))
        return false;
    return one_of == NULL || check_one_of(one_of, value, path, err, errlen);
}

usher_err usher_jsonschema_validate(const usher_jsonschema *schema, json_t *value, const char *name,
                                    char *err, size_t errlen)
{
    char scratch[1];

    if (err == NULL || errlen == 0) {
        err = scratch;
        errlen = sizeof(scratch);
    }
    err[0] = '\0';
    if (value == NULL)
        return usher_errbuf(err, errlen, USHER_ERR_PAYLOAD, "%s: no value", name);
    return validate_node(schema->root, value, name, err, errlen) ? USHER_OK : USHER_ERR_PAYLOAD;
}
