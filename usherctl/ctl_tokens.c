/*
 * usherctl organizer and token: who may call usher-api. A token's text is
 * printed once, on creation, and never again (only its hash is kept).
 */
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "ctl.h"
#include "token.h"

int ctl_organizer(usher_store *st, int argc, char **argv)
{
    const char *args[2];
    int64_t id;
    usher_err err;

    if (ctl_parse(argc, argv, (const ctl_option[]){ { NULL, NULL, NULL } }, args, 2) != 2 ||
        strcmp(args[0], "create") != 0) {
        fprintf(stderr, "usherctl: usage: organizer create NAME\n");
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

int ctl_token(usher_store *st, int argc, char **argv)
{
    const char *role = NULL, *organizer = NULL, *event = NULL, *name = NULL;
    const ctl_option opts[] = { { "--role", &role, NULL },
                                { "--organizer", &organizer, NULL },
                                { "--event", &event, NULL },
                                { "--name", &name, NULL },
                                { NULL, NULL, NULL } };
    const char *args[2];
    int n = ctl_parse(argc, argv, opts, args, 2);
    long long id;
    usher_err err;

    if (n == 1 && strcmp(args[0], "create") == 0)
        return token_create(st, role, organizer, event, name);
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
                    " [--name N] | token revoke ID\n");
    return 2;
}
