/*
 * usherctl organizer and token: who may call usher-api. A token's text is
 * printed once, on creation, and never again (only its hash is kept); the
 * lists show every other field, read page by page with the statements
 * usher-api's admin routes run (platform/token.h).
 */
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "ctl.h"
#include "inttext.h"
#include "token.h"

#define LIST_PAGE 1000

/* A JSON field as text for a table cell ("-" for null); buf (USHER_INT_TEXT_MAX) for integers. */
static const char *cell(json_t *row, const char *name, char *buf)
{
    json_t *v = json_object_get(row, name);

    if (json_is_integer(v) && buf != NULL)
        return usher_int_text((int64_t)json_integer_value(v), buf);
    if (json_is_string(v))
        return json_string_value(v);
    return "-";
}

/*
 * Every row of a list statement whose parameters are params[0..n) with the
 * cursor at params[cursor_at] and the page size last; the rows of the
 * array named field, appended to *rows (which the caller owns).
 */
static usher_err list_all(usher_store *st, const char *sql, const char **params, int n,
                          int cursor_at, const char *field, json_t *rows)
{
    char cursor[USHER_INT_TEXT_MAX], page[USHER_INT_TEXT_MAX];
    usher_err err;

    params[cursor_at] = NULL;
    params[n - 1] = usher_int_text(LIST_PAGE, page);
    for (;;) {
        json_t *out, *next;

        err = usher_store_query_json(st, sql, n, params, &out);
        if (err != USHER_OK)
            return err;
        json_array_extend(rows, json_object_get(out, field));
        next = json_object_get(out, "next_cursor");
        params[cursor_at] = json_is_integer(next)
                                ? usher_int_text((int64_t)json_integer_value(next), cursor)
                                : NULL;
        json_decref(out);
        if (params[cursor_at] == NULL)
            return USHER_OK;
    }
}

static int organizer_list(usher_store *st, bool as_json)
{
    const char *params[2];
    json_t *rows = json_array(), *o;
    char id[USHER_INT_TEXT_MAX], events[USHER_INT_TEXT_MAX], tokens[USHER_INT_TEXT_MAX];
    size_t i;
    usher_err err = list_all(st, usher_organizer_list_sql, params, 2, 0, "organizers", rows);

    if (err != USHER_OK) {
        json_decref(rows);
        return ctl_fail(st, err, "organizer list");
    }
    if (as_json) {
        ctl_print_json(rows);
        return 0;
    }
    printf("%-8s %-7s %-6s %-25s %s\n", "ID", "EVENTS", "TOKENS", "CREATED", "NAME");
    json_array_foreach(rows, i, o)
    {
        printf("%-8s %-7s %-6s %-25s %s\n", cell(o, "id", id), cell(o, "events", events),
               cell(o, "live_tokens", tokens), cell(o, "created_at", NULL), cell(o, "name", NULL));
    }
    json_decref(rows);
    return 0;
}

int ctl_organizer(usher_store *st, int argc, char **argv)
{
    bool as_json = false;
    const ctl_option opts[] = { { "--json", NULL, &as_json }, { NULL, NULL, NULL } };
    const char *args[2];
    int n = ctl_parse(argc, argv, opts, args, 2);
    int64_t id;
    usher_err err;

    if (n == 1 && strcmp(args[0], "list") == 0)
        return organizer_list(st, as_json);
    if (n != 2 || strcmp(args[0], "create") != 0) {
        fprintf(stderr, "usherctl: usage: organizer create NAME | organizer list [--json]\n");
        return 2;
    }
    err = usher_organizer_create(st, args[1], &id);
    if (err != USHER_OK)
        return ctl_fail(st, err, "organizer create");
    printf("%lld\n", (long long)id);
    return 0;
}

static int token_create(usher_store *st, const char *role_name, const char *organizer,
                        const char *event, const char *name)
{
    long long org_id = 0, event_id = 0;
    char token[USHER_TOKEN_MAX];
    usher_role role = usher_role_parse(role_name);
    int64_t id;
    usher_err err;

    if (role == USHER_ROLE_NONE) {
        fprintf(stderr, "usherctl: --role must be admin, organizer or scanner\n");
        return 2;
    }
    if ((organizer != NULL && ctl_int("--organizer", organizer, 1, INT64_MAX, &org_id) != 0) ||
        (event != NULL && ctl_int("--event", event, 1, INT64_MAX, &event_id) != 0))
        return 2;
    err = usher_token_create(st, role, org_id, event_id, name, token, &id);
    if (err != USHER_OK)
        return ctl_fail(st, err, "token create");
    /* The token on stdout alone, so scripts can capture it; the id aside. */
    printf("%s\n", token);
    fprintf(stderr, "token %lld (%s) created; it is shown only now\n", (long long)id, role_name);
    return 0;
}

static void print_tokens(json_t *rows)
{
    char id[USHER_INT_TEXT_MAX], org[USHER_INT_TEXT_MAX], event[USHER_INT_TEXT_MAX];
    json_t *t;
    size_t i;

    printf("%-8s %-9s %-9s %-9s %-25s %-25s %-25s %s\n", "ID", "ROLE", "ORGANIZER", "EVENT",
           "CREATED", "LAST_USED", "REVOKED", "NAME");
    json_array_foreach(rows, i, t)
    {
        printf("%-8s %-9s %-9s %-9s %-25s %-25s %-25s %s\n", cell(t, "id", id),
               cell(t, "role", NULL), cell(t, "organizer_id", org), cell(t, "event_id", event),
               cell(t, "created_at", NULL), cell(t, "last_used_at", NULL),
               cell(t, "revoked_at", NULL), cell(t, "name", NULL));
    }
}

/* token list [--role R] [--organizer ID] [--revoked | --live] [--json] */
static int token_list(usher_store *st, const char *role, const char *organizer, bool revoked,
                      bool live, bool as_json)
{
    long long org_id = 0;
    char org[USHER_INT_TEXT_MAX];
    const char *params[5];
    json_t *rows;
    usher_err err;

    if (role != NULL && usher_role_parse(role) == USHER_ROLE_NONE) {
        fprintf(stderr, "usherctl: --role must be admin, organizer or scanner\n");
        return 2;
    }
    if ((organizer != NULL && ctl_int("--organizer", organizer, 1, INT64_MAX, &org_id) != 0))
        return 2;
    if (revoked && live) {
        fprintf(stderr, "usherctl: --revoked and --live exclude each other\n");
        return 2;
    }
    params[0] = role;
    params[1] = organizer != NULL ? usher_int_text(org_id, org) : NULL;
    params[2] = revoked ? "true" : live ? "false" : NULL;
    rows = json_array();
    err = list_all(st, usher_token_list_sql, params, 5, 3, "tokens", rows);
    if (err != USHER_OK) {
        json_decref(rows);
        return ctl_fail(st, err, "token list");
    }
    if (as_json) {
        ctl_print_json(rows);
        return 0;
    }
    print_tokens(rows);
    json_decref(rows);
    return 0;
}

int ctl_token(usher_store *st, int argc, char **argv)
{
    const char *role = NULL, *organizer = NULL, *event = NULL, *name = NULL;
    bool revoked = false, live = false, as_json = false;
    const ctl_option opts[] = {
        { "--role", &role, NULL },       { "--organizer", &organizer, NULL },
        { "--event", &event, NULL },     { "--name", &name, NULL },
        { "--revoked", NULL, &revoked }, { "--live", NULL, &live },
        { "--json", NULL, &as_json },    { NULL, NULL, NULL }
    };
    const char *args[2];
    int n = ctl_parse(argc, argv, opts, args, 2);
    long long id;
    usher_err err;

    if (n == 1 && strcmp(args[0], "create") == 0)
        return token_create(st, role, organizer, event, name);
    if (n == 1 && strcmp(args[0], "list") == 0)
        return token_list(st, role, organizer, revoked, live, as_json);
    if (n == 2 && strcmp(args[0], "revoke") == 0) {
        if (ctl_int("token id", args[1], 1, INT64_MAX, &id) != 0)
            return 2;
        err = usher_token_revoke(st, id);
        if (err != USHER_OK)
            return ctl_fail(st, err, "token revoke");
        printf("revoked %lld\n", id);
        return 0;
    }
    fprintf(stderr, "usherctl: usage: token create --role R [--organizer ID] [--event ID]"
                    " [--name N] | token list [--role R] [--organizer ID] [--revoked|--live]"
                    " [--json] | token revoke ID\n");
    return 2;
}
