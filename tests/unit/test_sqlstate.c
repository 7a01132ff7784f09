/*
 * Which SQLSTATEs make a process drop its connection and find the primary
 * again (engine/sqlstate.h), and which leave the connection alone.
 */
#include <criterion/criterion.h>

#include "sqlstate.h"

Test(sqlstate, a_standby_refusing_a_write_is_a_lost_connection)
{
    cr_assert(usher_sqlstate_conn_lost("25006"));
}

Test(sqlstate, shutdowns_and_connection_exceptions_are_lost_connections)
{
    static const char *const lost[] = { "57P01", "57P02", "57P03", "08000", "08003",
                                        "08006", "08001", "08004", "08P01" };

    for (size_t i = 0; i < sizeof(lost) / sizeof(lost[0]); i++)
        cr_assert(usher_sqlstate_conn_lost(lost[i]), "%s", lost[i]);
}

Test(sqlstate, errors_of_the_statement_keep_the_connection)
{
    /* Unique and check violations, a serialization failure, a deadlock, a
     * conflict with recovery on a replica, too many connections, a query
     * cancelled, other class 25 and 57 codes, and nothing at all. */
    static const char *const kept[] = { "23505", "23514", "40001", "40P01", "53300",
                                        "57014", "25001", "25P02", "57P04", "22P02",
                                        "",      "08",    "080000" };

    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        cr_assert_not(usher_sqlstate_conn_lost(kept[i]), "%s", kept[i]);
    cr_assert_not(usher_sqlstate_conn_lost(NULL));
}
