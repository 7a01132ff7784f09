/*
 * The connection budget (engine/conn_budget.c): a process fits at the
 * budget and is refused one past it, with every part named; 0 is no budget.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "conn_budget.h"

static usher_conn_need api_like(void)
{
    usher_conn_need need = { 0 };

    usher_conn_need_add(&need, 8, "%d loop threads x [api] db_connections %d", 2, 4);
    usher_conn_need_add(&need, 2, "offload threads");
    return need;
}

Test(conn_budget, the_parts_add_up_and_read_as_a_sum)
{
    usher_conn_need need = api_like();
    char text[256];

    cr_assert_eq(usher_conn_need_total(&need), 10);
    usher_conn_need_text(&need, text, sizeof(text));
    cr_assert_str_eq(text, "8: 2 loop threads x [api] db_connections 4 + 2: offload threads");
}

Test(conn_budget, a_process_at_its_budget_fits_and_one_past_it_is_refused_by_name)
{
    usher_config cfg = { 0 };
    usher_conn_need need = api_like();
    char why[512] = "";

    cfg.database_max_connections_per_process = 10;
    cr_assert_eq(usher_conn_budget_check(&cfg, "usher-api", &need, "lower it", why, sizeof(why)),
                 USHER_OK);
    cfg.database_max_connections_per_process = 9;
    cr_assert_eq(usher_conn_budget_check(&cfg, "usher-api", &need, "lower it", why, sizeof(why)),
                 USHER_ERR_CONFIG);
    cr_assert_str_eq(why, "usher-api would open 10 PostgreSQL connections (8: 2 loop threads x"
                          " [api] db_connections 4 + 2: offload threads), more than [database]"
                          " max_connections_per_process = 9: lower it");
}

Test(conn_budget, no_budget_refuses_nothing)
{
    usher_config cfg = { 0 };
    usher_conn_need need = { 0 };
    char why[64];

    usher_conn_need_add(&need, 100000, "children");
    cr_assert_eq(usher_conn_budget_check(&cfg, "usher-worker", &need, "", why, sizeof(why)),
                 USHER_OK);
}
