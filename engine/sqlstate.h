/*
 * What a failed statement's SQLSTATE says about the connection it ran on.
 * After a failover the connection a process holds may still be open but
 * no longer worth anything: the server is shutting down (57P01, FATAL and
 * then closed), or it is a standby now, demoted or never promoted, where
 * every write fails with 25006 read_only_sql_transaction. Whoever holds a
 * connection asks usher_sqlstate_conn_lost() and, when it says so, closes
 * the connection and opens another: with a multi-host URL and
 * target_session_attrs=read-write, libpq finds the primary.
 */
#ifndef USHER_SQLSTATE_H
#define USHER_SQLSTATE_H

#include <stdbool.h>

/*
 * True for the SQLSTATEs after which the connection must be replaced:
 * class 08 (connection exception), 57P01 admin_shutdown, 57P02
 * crash_shutdown, 57P03 cannot_connect_now and 25006
 * read_only_sql_transaction. NULL or "" is false.
 */
bool usher_sqlstate_conn_lost(const char *sqlstate);

#endif
