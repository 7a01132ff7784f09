/*
 * The JSON Schema subset of engine/jsonschema.h, keyword by keyword, and the
 * job payload schemas shipped in schemas/jobs/ (workers/job_schemas.h): each
 * compiles, accepts its own examples and refuses a broken payload with the
 * message a dead job would show.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job_handlers.h"
#include "job_schemas.h"
#include "jsonschema.h"

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *value = json_loads(text, JSON_DECODE_ANY, &jerr);

    cr_assert_not_null(value, "%s: %s", text, jerr.text);
    return value;
}

static usher_jsonschema *compile(const char *text)
{
    json_t *schema = parse(text);
    usher_jsonschema *compiled = NULL;
    char err[256] = "";

    cr_assert_eq(usher_jsonschema_compile(schema, &compiled, err, sizeof(err)), USHER_OK, "%s: %s",
                 text, err);
    json_decref(schema);
    return compiled;
}

/* Compiling text fails with exactly the message expected. */
static void refused_schema(const char *text, const char *expected)
{
    json_t *schema = parse(text);
    usher_jsonschema *compiled = NULL;
    char err[256] = "";

    cr_assert_eq(usher_jsonschema_compile(schema, &compiled, err, sizeof(err)), USHER_ERR_INVALID,
                 "%s was accepted", text);
    cr_assert_null(compiled);
    cr_assert_str_eq(err, expected);
    json_decref(schema);
}

/* Validates value_text against schema_text; the message, or "" when valid. */
static void check(const char *schema_text, const char *value_text, const char *expected)
{
    usher_jsonschema *schema = compile(schema_text);
    json_t *value = parse(value_text);
    char err[512] = "";
    usher_err rc = usher_jsonschema_validate(schema, value, "payload", err, sizeof(err));

    cr_assert_eq(rc, expected[0] == '\0' ? USHER_OK : USHER_ERR_PAYLOAD, "%s against %s: %s",
                 value_text, schema_text, err);
    cr_assert_str_eq(err, expected, "%s against %s", value_text, schema_text);
    json_decref(value);
    usher_jsonschema_free(schema);
}

#define ACCEPTS(schema, value) check(schema, value, "")

Test(jsonschema, type_tells_integer_from_number_and_names_both_sides)
{
    ACCEPTS("{\"type\": \"integer\"}", "7");
    check("{\"type\": \"integer\"}", "\"7\"", "payload: expected integer, got string");
    check("{\"type\": \"integer\"}", "7.0", "payload: expected integer, got number");
    ACCEPTS("{\"type\": \"number\"}", "7");
    ACCEPTS("{\"type\": \"number\"}", "7.5");
    check("{\"type\": \"number\"}", "null", "payload: expected number, got null");
    ACCEPTS("{\"type\": \"boolean\"}", "false");
    check("{\"type\": \"boolean\"}", "0", "payload: expected boolean, got integer");
    ACCEPTS("{\"type\": \"object\"}", "{}");
    check("{\"type\": \"object\"}", "[]", "payload: expected object, got array");
    ACCEPTS("{\"type\": \"array\"}", "[]");
    ACCEPTS("{\"type\": \"null\"}", "null");
    check("{\"type\": \"string\"}", "true", "payload: expected string, got boolean");
}

Test(jsonschema, type_may_list_several_types)
{
    ACCEPTS("{\"type\": [\"string\", \"null\"]}", "null");
    ACCEPTS("{\"type\": [\"string\", \"null\"]}", "\"x\"");
    check("{\"type\": [\"string\", \"null\"]}", "3",
          "payload: expected string or null, got integer");
}

Test(jsonschema, required_names_the_missing_property)
{
    const char *schema = "{\"required\": [\"registration_id\", \"template\"]}";

    ACCEPTS(schema, "{\"registration_id\": 1, \"template\": \"t\"}");
    check(schema, "{\"registration_id\": 1}", "payload: missing required property \"template\"");
    ACCEPTS(schema, "7"); /* required applies to objects only */
}

Test(jsonschema, properties_check_nested_values_and_name_their_path)
{
    const char *schema = "{\"properties\": {\"owner\": {\"properties\": {"
                         "\"registration_id\": {\"type\": \"integer\"}}}}}";

    ACCEPTS(schema, "{\"owner\": {\"registration_id\": 3}}");
    ACCEPTS(schema, "{\"other\": \"x\"}");
    check(schema, "{\"owner\": {\"registration_id\": \"abc\"}}",
          "payload.owner.registration_id: expected integer, got string");
}

Test(jsonschema, additional_properties_false_refuses_unlisted_names)
{
    const char *closed = "{\"properties\": {\"a\": {}}, \"additionalProperties\": false}";

    ACCEPTS(closed, "{\"a\": 1}");
    check(closed, "{\"a\": 1, \"then_emial\": true}",
          "payload: property \"then_emial\" is not allowed (additionalProperties: false)");
    ACCEPTS("{\"properties\": {\"a\": {}}, \"additionalProperties\": true}", "{\"b\": 1}");
}

Test(jsonschema, items_check_every_element_and_name_its_index)
{
    const char *schema = "{\"properties\": {\"tags\": {\"items\": {\"type\": \"string\"}}}}";

    ACCEPTS(schema, "{\"tags\": [\"a\", \"b\"]}");
    check(schema, "{\"tags\": [\"a\", 2]}", "payload.tags[1]: expected string, got integer");
    check("{\"items\": {\"required\": [\"id\"]}}", "[{\"id\": 1}, {}]",
          "payload[1]: missing required property \"id\"");
}

Test(jsonschema, enum_and_const_list_what_is_allowed)
{
    ACCEPTS("{\"enum\": [\"A6\", \"A4\"]}", "\"A4\"");
    check("{\"enum\": [\"A6\", \"A4\"]}", "\"Letter\"",
          "payload: must be one of \"A6\", \"A4\" (enum)");
    check("{\"enum\": [1, null]}", "\"1\"", "payload: must be one of 1, null (enum)");
    ACCEPTS("{\"const\": {\"a\": [1]}}", "{\"a\": [1]}");
    check("{\"const\": 2}", "3", "payload: must be 2 (const)");
}

Test(jsonschema, string_length_counts_code_points_not_bytes)
{
    const char *schema = "{\"minLength\": 2, \"maxLength\": 3}";

    ACCEPTS(schema, "\"\xc3\xa9t\xc3\xa9\"");     /* "été": 3 code points, 5 bytes */
    ACCEPTS(schema, "\"\xf0\x9f\x98\x80!\"");     /* an emoji (4 bytes) and "!" */
    ACCEPTS(schema, "\"\\u65e5\\u672c\\u8a9e\""); /* 日本語, 9 bytes */
    check(schema, "\"\xc3\xa9\"", "payload: length 1 is below minLength 2");
    check(schema, "\"abcd\"", "payload: length 4 is above maxLength 3");
    check("{\"minLength\": 1}", "\"\"", "payload: length 0 is below minLength 1");
    ACCEPTS(schema, "12345"); /* length applies to strings only */
}

Test(jsonschema, minimum_and_maximum_are_inclusive_and_exact_for_large_integers)
{
    ACCEPTS("{\"minimum\": 1, \"maximum\": 10}", "1");
    ACCEPTS("{\"minimum\": 1, \"maximum\": 10}", "10");
    check("{\"minimum\": 1}", "0", "payload: 0 is below minimum 1");
    check("{\"maximum\": 10}", "10.5", "payload: 10.5 is above maximum 10");
    check("{\"minimum\": 0.5}", "0", "payload: 0 is below minimum 0.5");
    /* 2^53 + 1 equals 2^53 as a double; compared as integers it is above. */
    check("{\"maximum\": 9007199254740992}", "9007199254740993",
          "payload: 9007199254740993 is above maximum 9007199254740992");
}

Test(jsonschema, min_and_max_items_bound_arrays)
{
    ACCEPTS("{\"minItems\": 1, \"maxItems\": 2}", "[1, 2]");
    check("{\"minItems\": 1}", "[]", "payload: item count 0 is below minItems 1");
    check("{\"maxItems\": 2}", "[1, 2, 3]", "payload: item count 3 is above maxItems 2");
}

Test(jsonschema, one_of_wants_exactly_one_match_and_explains_each_miss)
{
    const char *schema =
        "{\"oneOf\": ["
        "{\"required\": [\"registration_id\"]},"
        "{\"required\": [\"to\"], \"properties\": {\"to\": {\"type\": \"string\"}}}]}";

    ACCEPTS(schema, "{\"registration_id\": 1}");
    ACCEPTS(schema, "{\"to\": \"a@example.org\"}");
    check(schema, "{\"to\": 5}",
          "payload: matches none of oneOf: (1) payload: missing required property"
          " \"registration_id\"; (2) payload.to: expected string, got integer");
    check(schema, "{\"registration_id\": 1, \"to\": \"a@example.org\"}",
          "payload: matches 2 schemas of oneOf, expected exactly one");
}

Test(jsonschema, the_first_violation_is_reported_in_a_bounded_buffer)
{
    usher_jsonschema *schema = compile("{\"enum\": [\"a long value\", \"another long value\"]}");
    json_t *value = json_string("x");
    char err[16] = "";

    cr_assert_eq(usher_jsonschema_validate(schema, value, "payload", err, sizeof(err)),
                 USHER_ERR_PAYLOAD);
    cr_assert_str_eq(err, "payload: must b");
    cr_assert_eq(usher_jsonschema_validate(schema, value, "payload", NULL, 0), USHER_ERR_PAYLOAD);
    cr_assert_eq(usher_jsonschema_validate(schema, NULL, "payload", err, sizeof(err)),
                 USHER_ERR_PAYLOAD);
    json_decref(value);
    usher_jsonschema_free(schema);
}

Test(jsonschema, unknown_keywords_and_malformed_values_are_refused_when_compiling)
{
    refused_schema("{\"properties\": {\"page\": {\"enun\": [\"A6\"]}}}",
                   "#/properties/page: unknown keyword \"enun\"");
    refused_schema("{\"pattern\": \"^a\"}", "#: unknown keyword \"pattern\"");
    refused_schema("{\"$ref\": \"#/x\"}", "#: unknown keyword \"$ref\"");
    refused_schema("{\"type\": \"integr\"}", "#/type: invalid value of \"type\"");
    refused_schema("{\"type\": [\"string\", \"string\"]}", "#/type: invalid value of \"type\"");
    refused_schema("{\"type\": []}", "#/type: invalid value of \"type\"");
    refused_schema("{\"minLength\": -1}", "#/minLength: invalid value of \"minLength\"");
    refused_schema("{\"maxItems\": 1.5}", "#/maxItems: invalid value of \"maxItems\"");
    refused_schema("{\"minimum\": \"1\"}", "#/minimum: invalid value of \"minimum\"");
    refused_schema("{\"required\": [\"a\", \"a\"]}", "#/required: invalid value of \"required\"");
    refused_schema("{\"additionalProperties\": {}}",
                   "#/additionalProperties: invalid value of \"additionalProperties\"");
    refused_schema("{\"enum\": []}", "#/enum: invalid value of \"enum\"");
    refused_schema("{\"oneOf\": [{}, 3]}", "#/oneOf/1: a schema must be an object");
    refused_schema("{\"items\": true}", "#/items: invalid value of \"items\"");
    refused_schema("{\"title\": 3}", "#/title: invalid value of \"title\"");
    refused_schema("[]", "#: a schema must be an object");
    refused_schema("{\"properties\": {\"template\": {}}, \"required\": [\"templat\"],"
                   " \"additionalProperties\": false}",
                   "#: required property \"templat\" is not in properties,"
                   " and additionalProperties is false");
}

Test(jsonschema, annotations_are_accepted_and_ignored)
{
    ACCEPTS("{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\", \"$id\": \"x\","
            " \"title\": \"t\", \"description\": \"d\", \"examples\": [1]}",
            "\"anything\"");
}

/* {"items": {"items": ... {}}} with depth schemas in all. */
static char *nested_schema(int depth)
{
    size_t cap = (size_t)depth * 16 + 1;
    char *text = calloc(1, cap);

    cr_assert_not_null(text);
    for (int i = 1; i < depth; i++)
        strcat(text, "{\"items\": ");
    strcat(text, "{\"type\": \"integer\"}");
    for (int i = 1; i < depth; i++)
        strcat(text, "}");
    return text;
}

Test(jsonschema, schemas_nest_at_most_the_depth_bound)
{
    char *deepest = nested_schema(USHER_JSONSCHEMA_MAX_DEPTH);
    char *too_deep = nested_schema(USHER_JSONSCHEMA_MAX_DEPTH + 1);
    char expected[512] = "#";
    usher_jsonschema *schema = compile(deepest);
    json_t *value = json_integer(1);
    char err[512] = "";

    for (int i = 1; i < USHER_JSONSCHEMA_MAX_DEPTH + 1; i++)
        strcat(expected, "/items");
    snprintf(expected + strlen(expected), sizeof(expected) - strlen(expected),
             ": schemas nest deeper than %d", USHER_JSONSCHEMA_MAX_DEPTH);
    refused_schema(too_deep, expected);
    /* Validation recurses along the schema only, however deep the value. */
    for (int i = 1; i < USHER_JSONSCHEMA_MAX_DEPTH + 1000; i++)
        value = json_pack("[o]", value);
    cr_assert_not_null(value);
    cr_assert_eq(usher_jsonschema_validate(schema, value, "payload", err, sizeof(err)),
                 USHER_ERR_PAYLOAD);
    cr_assert(strstr(err, "[0][0][0]") != NULL && strstr(err, "expected integer, got array"), "%s",
              err);
    json_decref(value);
    usher_jsonschema_free(schema);
    free(deepest);
    free(too_deep);
}

/* ---- the shipped job schemas -------------------------------------------- */

/* For each shipped kind, a payload its schema refuses, and the reason given. */
static const struct broken_payload {
    const char *kind, *payload, *error;
} broken[] = {
    { "pdf.ticket", "{\"registration_id\": \"abc\"}",
      "payload.registration_id: expected integer, got string" },
    { "pdf.badge", "{\"event_id\": 0}", "payload.event_id: 0 is below minimum 1" },
    { "email.send", "{\"registration_id\": 1}",
      "payload: matches none of oneOf: (1) payload: missing required property \"template\";"
      " (2) payload: missing required property \"to\"" },
    { "notify.inbox", "{\"registration_id\": 1, \"title\": \"\"}",
      "payload.title: length 0 is below minLength 1" },
    { "notify.webhook", "{\"endpoint_id\": 1}", "payload: missing required property \"event\"" },
    { "message.fanout", "{\"message_id\": 0}", "payload.message_id: 0 is below minimum 1" },
    { "schedule.fire", "{\"schedule_id\": \"7\"}",
      "payload.schedule_id: expected integer, got string" },
    { "index.document", "{\"type\": \"room\", \"id\": 1}",
      "payload.type: must be one of \"event\", \"session\", \"attendee\" (enum)" },
    { "analytics.rollup", "{\"event_id\": 1, \"metric\": \"checkins\"}",
      "payload.metric: must be one of \"registration\", \"cancellation\", \"checkin\","
      " \"session_access\" (enum)" },
    { "report.attendees", "{\"report_id\": 1, \"scope\": \"all\"}",
      "payload: matches none of oneOf: (1) payload: property \"scope\" is not allowed"
      " (additionalProperties: false); (2) payload: property \"report_id\" is not allowed"
      " (additionalProperties: false)" },
    { "report.checkins", "{\"scope\": \"some\"}",
      "payload: matches none of oneOf: (1) payload: missing required property \"report_id\";"
      " (2) payload.scope: must be \"all\" (const)" },
};

static const struct broken_payload *broken_example(const char *kind)
{
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        if (strcmp(broken[i].kind, kind) == 0)
            return &broken[i];
    }
    return NULL;
}

Test(job_schemas, every_handler_kind_has_a_schema)
{
    char err[512] = "";

    cr_assert_eq(usher_job_schemas_load(err, sizeof(err)), USHER_OK, "%s", err);
    for (size_t i = 0; usher_job_handlers[i].kind != NULL; i++)
        cr_assert_not_null(usher_job_schema_find(usher_job_handlers[i].kind),
                           "no schemas/jobs/%s.schema.json", usher_job_handlers[i].kind);
}

/* The kind of schema file i ("pdf.ticket" of "pdf.ticket.schema.json"), into kind. */
static void kind_of_file(size_t i, char kind[64])
{
    const char *name = usher_job_schema_files[i].name;
    size_t n = strlen(name) - strlen(USHER_JOB_SCHEMA_SUFFIX);

    cr_assert(n > 0 && n < 64 && strcmp(name + n, USHER_JOB_SCHEMA_SUFFIX) == 0, "%s", name);
    memcpy(kind, name, n);
    kind[n] = '\0';
}

Test(job_schemas, every_shipped_schema_accepts_its_examples)
{
    for (size_t i = 0; usher_job_schema_files[i].name != NULL; i++) {
        char kind[64];
        json_t *schema = parse((const char *)usher_job_schema_files[i].data);
        json_t *examples = json_object_get(schema, "examples"), *example;
        char err[512] = "";
        size_t j;

        kind_of_file(i, kind);
        cr_assert_gt(json_array_size(examples), 0, "%s.schema.json has no examples", kind);
        json_array_foreach(examples, j, example)
        {
            cr_assert_eq(usher_job_schema_check(kind, example, err, sizeof(err)), USHER_OK,
                         "example %zu of %s: %s", j + 1, kind, err);
        }
        json_decref(schema);
    }
}

Test(job_schemas, every_shipped_schema_refuses_a_broken_payload_clearly)
{
    for (size_t i = 0; usher_job_schema_files[i].name != NULL; i++) {
        const struct broken_payload *b;
        char kind[64], err[512];
        json_t *payload;

        kind_of_file(i, kind);
        b = broken_example(kind);
        cr_assert_not_null(b, "add a broken payload of %s to this test", kind);
        payload = parse(b->payload);
        cr_assert_eq(usher_job_schema_check(kind, payload, err, sizeof(err)), USHER_ERR_PAYLOAD,
                     "%s accepted %s", kind, b->payload);
        cr_assert_str_eq(err, b->error, "%s", kind);
        json_decref(payload);
    }
}

Test(job_schemas, email_send_takes_one_shape_or_the_other_not_both)
{
    json_t *both = parse("{\"registration_id\": 1, \"to\": \"a@example.org\", \"template\": \"t\","
                         " \"vars\": {}}");
    char err[512] = "";

    cr_assert_eq(usher_job_schema_check("email.send", both, err, sizeof(err)), USHER_ERR_PAYLOAD);
    cr_assert(strstr(err, "property \"to\" is not allowed") != NULL, "%s", err);
    cr_assert(strstr(err, "property \"registration_id\" is not allowed") != NULL, "%s", err);
    json_decref(both);
}

Test(job_schemas, kinds_without_a_schema_pass_unchecked)
{
    json_t *payload = parse("{\"anything\": [1, \"two\"]}");
    char err[512] = "";

    cr_assert_eq(usher_job_schema_check("test.noop", payload, err, sizeof(err)), USHER_OK, "%s",
                 err);
    cr_assert_null(usher_job_schema_find("test.noop"));
    json_decref(payload);
}
