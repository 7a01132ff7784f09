/*
 * The PostgreSQL connection budget of one process: [database]
 * max_connections_per_process. Each program adds up what its
 * configuration makes it open at most, part by part (usher-api: its loop
 * threads' pools and its blocking threads; usher-worker: its supervisor,
 * maintenance process and children), and refuses to start when the sum
 * exceeds the budget, naming every part and what to change. The README's
 * "Connection budget" gives the formulas and how to size max_connections
 * for a cluster. Pure: no I/O.
 */
#ifndef USHER_CONN_BUDGET_H
#define USHER_CONN_BUDGET_H

#include <stddef.h>

#include "config.h"
#include "error.h"

#define USHER_CONN_PARTS_MAX 4

/* What one process opens at most; zero-initialise, then usher_conn_need_add each part. */
typedef struct usher_conn_need {
    size_t nparts;
    struct {
        int count;
        char what[96]; /* e.g. "2 loop threads x [api] db_connections 4" */
    } part[USHER_CONN_PARTS_MAX];
} usher_conn_need;

/* Adds a part of count connections described by fmt (at most USHER_CONN_PARTS_MAX parts). */
__attribute__((format(printf, 3, 4))) void usher_conn_need_add(usher_conn_need *need, int count,
                                                               const char *fmt, ...);

/* The sum of the parts. */
int usher_conn_need_total(const usher_conn_need *need);

/* The parts as "N: WHAT + N: WHAT" into out. */
void usher_conn_need_text(const usher_conn_need *need, char *out, size_t len);

/*
 * USHER_OK when need fits cfg's budget (or there is none: 0); otherwise
 * USHER_ERR_CONFIG with why saying "PROGRAM would open N PostgreSQL
 * connections (PART + PART), more than [database]
 * max_connections_per_process = B: REMEDY".
 */
USHER_MUSTCHECK usher_err usher_conn_budget_check(const usher_config *cfg, const char *program,
                                                  const usher_conn_need *need, const char *remedy,
                                                  char *why, size_t whylen);

#endif
