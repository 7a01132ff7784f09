/*
 * The connection budget check of conn_budget.h: a sum of named parts
 * against one configured number, and a refusal that lists the parts so
 * that an operator sees where the connections go without reading code.
 */
#include "conn_budget.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>

void usher_conn_need_add(usher_conn_need *need, int count, const char *fmt, ...)
{
    va_list ap;

    assert(need->nparts < USHER_CONN_PARTS_MAX);
    need->part[need->nparts].count = count;
    va_start(ap, fmt);
    vsnprintf(need->part[need->nparts].what, sizeof(need->part[0].what), fmt, ap);
    va_end(ap);
    need->nparts++;
}

int usher_conn_need_total(const usher_conn_need *need)
{
    int total = 0;

    for (size_t i = 0; i < need->nparts; i++)
        total += need->part[i].count;
    return total;
}

void usher_conn_need_text(const usher_conn_need *need, char *out, size_t len)
{
    size_t used = 0;

    out[0] = '\0';
    for (size_t i = 0; i < need->nparts && used < len; i++)
        used += (size_t)snprintf(out + used, len - used, "%s%d: %s", i > 0 ? " + " : "",
                                 need->part[i].count, need->part[i].what);
}

usher_err usher_conn_budget_check(const usher_config *cfg, const char *program,
                                  const usher_conn_need *need, const char *remedy, char *why,
                                  size_t whylen)
{
    int total = usher_conn_need_total(need), budget = cfg->database_max_connections_per_process;
    char parts[USHER_CONN_PARTS_MAX * 112];

    if (budget == 0 || total <= budget)
        return USHER_OK;
    usher_conn_need_text(need, parts, sizeof(parts));
    snprintf(why, whylen,
             "%s would open %d PostgreSQL connections (%s), more than [database]"
             " max_connections_per_process = %d: %s",
             program, total, parts, budget, remedy);
    return USHER_ERR_CONFIG;
}
