/*
 * The SQLSTATEs that mean "replace this connection" (sqlstate.h). A table,
 * so that adding one is a line: exact codes, and classes given by their
 * two first characters.
 */
#include "sqlstate.h"

#include <stddef.h>
#include <string.h>

static const char *const lost_codes[] = {
    "57P01", /* admin_shutdown: a fast shutdown, or the postmaster died */
    "57P02", /* crash_shutdown: another backend crashed */
    "57P03", /* cannot_connect_now: starting up, shutting down, or in recovery */
    "25006", /* read_only_sql_transaction: this server is a standby now */
};

static const char *const lost_classes[] = {
    "08", /* connection_exception */
};

bool usher_sqlstate_conn_lost(const char *sqlstate)
{
    if (sqlstate == NULL || strlen(sqlstate) != 5)
        return false;
    for (size_t i = 0; i < sizeof(lost_codes) / sizeof(lost_codes[0]); i++) {
        if (strcmp(sqlstate, lost_codes[i]) == 0)
            return true;
    }
    for (size_t i = 0; i < sizeof(lost_classes) / sizeof(lost_classes[0]); i++) {
        if (strncmp(sqlstate, lost_classes[i], 2) == 0)
            return true;
    }
    return false;
}
