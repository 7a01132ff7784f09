/*
 * The search index against a real Xapian database in a temporary directory:
 * stemming and search-as-you-type, field prefixes, filters, pagination,
 * replace and delete, a searcher seeing later commits, replacing the whole
 * index in one revision, the one-writer lock,
 * malformed queries and the limits of the C API.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xapian_wrap.h"

static char dir[64];
static usher_index *ix;
static char errbuf[256];

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void put(const char *type, int64_t id, int64_t event_id, const char *title, const char *body,
                const char *speakers)
{
    usher_index_doc d = { .type = type,
                          .id = id,
                          .event_id = event_id,
                          .title = title,
                          .body = body,
                          .speakers = speakers };
    cr_assert_eq(usher_index_put(ix, &d, errbuf, sizeof errbuf), USHER_OK, "put: %s", errbuf);
}

static void put_attendee(int64_t id, int64_t event_id, const char *name, const char *email)
{
    usher_index_doc d = {
        .type = "attendee", .id = id, .event_id = event_id, .name = name, .email = email
    };
    cr_assert_eq(usher_index_put(ix, &d, errbuf, sizeof errbuf), USHER_OK, "put: %s", errbuf);
}

static void commit(void)
{
    cr_assert_eq(usher_index_commit(ix, errbuf, sizeof errbuf), USHER_OK, "commit: %s", errbuf);
}

static void seed(void)
{
    put("event", 1, 1, "Open Source Summit", "A summit for open source developers", NULL);
    put("event", 2, 2, "Data Days", "Two days about databases", NULL);
    put("session", 10, 1, "Running a conference", "Lessons from organising volunteers and budgets",
        "Grace Hopper");
    put("session", 11, 1, "Analytical engines", "Computing history", "Ada Lovelace");
    put("session", 12, 2, "Sharding at scale", "Partitioning tables", "Edgar Codd");
    put("session", 13, 2, "Remembering Lovelace", "The first programmer", "Alan Turing");
    put_attendee(100, 1, "Ada Byron", "ada@example.org");
    put_attendee(101, 2, "Charles Babbage", "charles@example.org");
    commit();
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/usher-search-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(usher_index_open_writer(dir, "english", &ix, errbuf, sizeof errbuf), USHER_OK,
                 "open: %s", errbuf);
    seed();
}

static void teardown(void)
{
    cr_assert_eq(usher_index_close(ix, errbuf, sizeof errbuf), USHER_OK, "close: %s", errbuf);
    ix = NULL;
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(search, .init = setup, .fini = teardown);

typedef struct result {
    usher_search_hit hits[USHER_SEARCH_MAX_LIMIT];
    size_t n;
    size_t total;
} result;

static result search_page(const char *query, const char *type, int64_t event, size_t offset,
                          size_t limit)
{
    result r = { 0 };
    usher_search *s = NULL;
    cr_assert_eq(usher_search_open(dir, &s, errbuf, sizeof errbuf), USHER_OK, "open: %s", errbuf);
    usher_err err = usher_search_query(s, query, type, event, offset, limit, r.hits, &r.n, &r.total,
                                       errbuf, sizeof errbuf);
    cr_assert_eq(err, USHER_OK, "query '%s': %s", query, errbuf);
    usher_search_close(s);
    return r;
}

static result search(const char *query, const char *type, int64_t event)
{
    return search_page(query, type, event, 0, 20);
}

static bool has(const result *r, const char *type, int64_t id)
{
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->hits[i].type, type) == 0 && r->hits[i].id == id)
            return true;
    }
    return false;
}

Test(search, a_partial_word_finds_the_session_by_its_title)
{
    result r = search("runn", NULL, 0);
    cr_assert_eq(r.n, 1);
    cr_assert_eq(r.total, 1);
    cr_assert_str_eq(r.hits[0].type, "session");
    cr_assert_eq(r.hits[0].id, 10);
    cr_assert_eq(r.hits[0].event_id, 1);
    cr_assert_gt(r.hits[0].percent, 0);
}

Test(search, stemmed_words_from_the_abstract_and_title_match)
{
    result r = search("organise budget", NULL, 0);
    cr_assert_eq(r.n, 1);
    cr_assert_eq(r.hits[0].id, 10);
    r = search("conferences", NULL, 0);
    cr_assert_eq(r.n, 1);
    cr_assert_eq(r.hits[0].id, 10);
}

Test(search, speaker_prefix_matches_speakers_only)
{
    result plain = search("lovelace", NULL, 0);
    cr_assert_eq(plain.n, 2);
    cr_assert(has(&plain, "session", 11) && has(&plain, "session", 13));

    result r = search("speaker:lovelace", NULL, 0);
    cr_assert_eq(r.n, 1);
    cr_assert(has(&r, "session", 11));

    r = search("title:lovelace", NULL, 0);
    cr_assert_eq(r.n, 1);
    cr_assert(has(&r, "session", 13));
}

Test(search, name_and_email_prefixes_find_attendees)
{
    result r = search("name:babbage", NULL, 0);
    cr_assert_eq(r.n, 1);
    cr_assert(has(&r, "attendee", 101));
    r = search("email:charles", NULL, 0);
    cr_assert_eq(r.n, 1);
    cr_assert(has(&r, "attendee", 101));
}

Test(search, type_filter_excludes_other_types)
{
    result all = search("ada", NULL, 0);
    cr_assert_eq(all.n, 2);
    cr_assert(has(&all, "session", 11) && has(&all, "attendee", 100));

    result r = search("ada", "attendee", 0);
    cr_assert_eq(r.n, 1);
    cr_assert(has(&r, "attendee", 100));
    r = search("ada", "session", 0);
    cr_assert_eq(r.n, 1);
    cr_assert(has(&r, "session", 11));
    r = search("ada", "event", 0);
    cr_assert_eq(r.n, 0);

    r = search("", "event,session", 0);
    cr_assert_eq(r.n, 6);
    cr_assert(!has(&r, "attendee", 100) && !has(&r, "attendee", 101));
}

Test(search, event_filter_keeps_one_event)
{
    result r = search("", NULL, 2);
    cr_assert_eq(r.n, 4);
    cr_assert_eq(r.total, 4);
    cr_assert(has(&r, "event", 2) && has(&r, "session", 12) && has(&r, "session", 13) &&
              has(&r, "attendee", 101));

    r = search("", "session", 1);
    cr_assert_eq(r.n, 2);
    cr_assert(has(&r, "session", 10) && has(&r, "session", 11));

    r = search("lovelace", NULL, 1);
    cr_assert_eq(r.n, 1);
    cr_assert(has(&r, "session", 11));
}

Test(search, pages_cover_every_match_once_with_a_stable_total)
{
    for (int64_t id = 200; id < 225; id++) {
        char title[64];
        snprintf(title, sizeof title, "Workshop number %d", (int)id);
        put("session", id, 3, title, "hands on", NULL);
    }
    commit();

    bool seen[25] = { false };
    size_t expect[] = { 10, 10, 5, 0 };
    for (size_t page = 0; page < 4; page++) {
        result r = search_page("workshop", NULL, 0, page * 10, 10);
        cr_assert_eq(r.n, expect[page], "page %zu", page);
        cr_assert_eq(r.total, 25, "page %zu", page);
        for (size_t i = 0; i < r.n; i++) {
            int64_t k = r.hits[i].id - 200;
            cr_assert(k >= 0 && k < 25 && !seen[k], "id %lld", (long long)r.hits[i].id);
            seen[k] = true;
        }
    }
}

Test(search, putting_a_document_again_replaces_it)
{
    put("session", 10, 1, "Hosting a meetup", "Chairs and coffee", "Grace Hopper");
    commit();
    cr_assert_eq(search("running", NULL, 0).n, 0);
    cr_assert_eq(search("organising", NULL, 0).n, 0);
    result r = search("meetup", NULL, 0);
    cr_assert_eq(r.n, 1);
    cr_assert(has(&r, "session", 10));
    cr_assert_eq(search("", NULL, 0).total, 8);
}

Test(search, a_deleted_document_is_gone)
{
    cr_assert_eq(search("sharding", NULL, 0).n, 1);
    cr_assert_eq(usher_index_delete(ix, "session", 12, errbuf, sizeof errbuf), USHER_OK);
    cr_assert_eq(usher_index_delete(ix, "session", 999, errbuf, sizeof errbuf), USHER_OK);
    commit();
    cr_assert_eq(search("sharding", NULL, 0).n, 0);
    cr_assert_eq(search("", NULL, 0).total, 7);
}

Test(search, an_open_searcher_sees_later_commits)
{
    usher_search *s = NULL;
    usher_search_hit hits[5];
    size_t n = 99, total = 99;
    cr_assert_eq(usher_search_open(dir, &s, errbuf, sizeof errbuf), USHER_OK);

    put("session", 14, 1, "Keynote on quantum ticketing", NULL, NULL);
    cr_assert_eq(
        usher_search_query(s, "quantum", NULL, 0, 0, 5, hits, &n, &total, errbuf, sizeof errbuf),
        USHER_OK, "%s", errbuf);
    cr_assert_eq(n, 0, "uncommitted changes are invisible");

    commit();
    cr_assert_eq(
        usher_search_query(s, "quantum", NULL, 0, 0, 5, hits, &n, &total, errbuf, sizeof errbuf),
        USHER_OK, "%s", errbuf);
    cr_assert_eq(n, 1);
    cr_assert_eq(hits[0].id, 14);

    /* Many commits while the searcher keeps its handle. */
    for (int64_t id = 300; id < 310; id++) {
        put("session", id, 1, "Quantum again", NULL, NULL);
        commit();
    }
    cr_assert_eq(
        usher_search_query(s, "quantum", NULL, 0, 0, 5, hits, &n, &total, errbuf, sizeof errbuf),
        USHER_OK, "%s", errbuf);
    cr_assert_eq(total, 11);
    usher_search_close(s);
}

Test(search, a_replacement_is_one_revision_and_an_abandoned_one_changes_nothing)
{
    /* Abandoned: closing before the commit keeps the old index whole. */
    cr_assert_eq(usher_index_replace_begin(ix, errbuf, sizeof errbuf), USHER_OK, "%s", errbuf);
    cr_assert_eq(usher_index_replace_begin(ix, errbuf, sizeof errbuf), USHER_ERR_STATE);
    put("event", 3, 3, "Quantum fair", NULL, NULL);
    cr_assert_eq(usher_index_close(ix, errbuf, sizeof errbuf), USHER_OK, "%s", errbuf);
    cr_assert_eq(usher_index_open_writer(dir, "english", &ix, errbuf, sizeof errbuf), USHER_OK);
    cr_assert_eq(search("", NULL, 0).total, 8);
    cr_assert_eq(search("quantum", NULL, 0).total, 0);

    /* Committed: searchers see the old index until the commit, then only the new one. */
    cr_assert_eq(usher_index_replace_begin(ix, errbuf, sizeof errbuf), USHER_OK, "%s", errbuf);
    put("event", 3, 3, "Quantum fair", NULL, NULL);
    put("event", 1, 1, "Open Source Summit", NULL, NULL);
    cr_assert_eq(search("", NULL, 0).total, 8, "the replacement showed before its commit");
    commit();
    cr_assert_eq(search("", NULL, 0).total, 2);
    cr_assert_eq(search("quantum", NULL, 0).total, 1);
    cr_assert_eq(search("lovelace", NULL, 0).total, 0);
    /* The writer goes on as usual after it. */
    put("session", 10, 1, "Running a conference", NULL, NULL);
    commit();
    cr_assert_eq(search("", NULL, 0).total, 3);
}

Test(search, a_second_writer_is_refused_at_once)
{
    usher_index *second = NULL;
    time_t started = time(NULL);
    errbuf[0] = '\0';
    usher_err err = usher_index_open_writer(dir, "english", &second, errbuf, sizeof errbuf);
    cr_assert_eq(err, USHER_ERR_CONFLICT, "got %d: %s", err, errbuf);
    cr_assert_null(second);
    cr_assert_neq(errbuf[0], '\0');
    cr_assert_leq(time(NULL) - started, 2);

    /* Once the first one closes, the lock is free. */
    cr_assert_eq(usher_index_close(ix, errbuf, sizeof errbuf), USHER_OK);
    ix = NULL;
    cr_assert_eq(usher_index_open_writer(dir, "english", &ix, errbuf, sizeof errbuf), USHER_OK,
                 "%s", errbuf);
}

Test(search, malformed_queries_are_read_leniently_or_refused)
{
    const char *queries[] = { "\"running a",
                              "title:(",
                              "(((",
                              "AND",
                              "NOT",
                              "speaker:",
                              "\"",
                              "*",
                              "title:\"unclosed",
                              "OR OR",
                              ")",
                              "-",
                              "a AND (b OR",
                              "\xff\xfe broken utf8" };
    usher_search *s = NULL;
    usher_search_hit hits[10];
    size_t n, total;
    cr_assert_eq(usher_search_open(dir, &s, errbuf, sizeof errbuf), USHER_OK);
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        usher_err err = usher_search_query(s, queries[i], NULL, 0, 0, 10, hits, &n, &total, errbuf,
                                           sizeof errbuf);
        cr_assert(err == USHER_OK || err == USHER_ERR_INVALID, "'%s': %d", queries[i], err);
    }
    cr_assert_eq(usher_search_query(s, "\"running a", NULL, 0, 0, 10, hits, &n, &total, errbuf,
                                    sizeof errbuf),
                 USHER_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(hits[0].id, 10);
    usher_search_close(s);
}

Test(search, unknown_or_changed_language_is_refused)
{
    char other[128];
    usher_index *w = NULL;
    snprintf(other, sizeof other, "%s/other", dir);
    cr_assert_eq(usher_index_open_writer(other, "klingon", &w, errbuf, sizeof errbuf),
                 USHER_ERR_INVALID);
    cr_assert_null(w);

    cr_assert_eq(usher_index_close(ix, errbuf, sizeof errbuf), USHER_OK);
    ix = NULL;
    cr_assert_eq(usher_index_open_writer(dir, "german", &w, errbuf, sizeof errbuf),
                 USHER_ERR_CONFIG);
    cr_assert_null(w);
    cr_assert_eq(usher_index_open_writer(dir, "en", &ix, errbuf, sizeof errbuf), USHER_OK,
                 "en is english: %s", errbuf);
}

Test(search, a_language_of_none_matches_exact_words_only)
{
    char other[128];
    usher_index *w = NULL;
    usher_search *s = NULL;
    usher_search_hit hits[5];
    size_t n, total;
    usher_index_doc d = { .type = "session", .id = 1, .title = "Running a conference" };
    snprintf(other, sizeof other, "%s/plain", dir);
    cr_assert_eq(usher_index_open_writer(other, "none", &w, errbuf, sizeof errbuf), USHER_OK);
    cr_assert_eq(usher_index_put(w, &d, errbuf, sizeof errbuf), USHER_OK);
    cr_assert_eq(usher_index_close(w, errbuf, sizeof errbuf), USHER_OK);

    cr_assert_eq(usher_search_open(other, &s, errbuf, sizeof errbuf), USHER_OK);
    cr_assert_eq(usher_search_query(s, "conferences run", NULL, 0, 0, 5, hits, &n, &total, errbuf,
                                    sizeof errbuf),
                 USHER_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(usher_search_query(s, "conference running", NULL, 0, 0, 5, hits, &n, &total,
                                    errbuf, sizeof errbuf),
                 USHER_OK);
    cr_assert_eq(n, 1);
    usher_search_close(s);
}

Test(search, limits_and_bad_arguments_are_refused)
{
    usher_search *s = NULL;
    usher_search_hit hits[USHER_SEARCH_MAX_LIMIT + 1];
    size_t n, total;
    char long_query[USHER_SEARCH_MAX_QUERY + 2];
    memset(long_query, 'a', sizeof long_query - 1);
    long_query[sizeof long_query - 1] = '\0';

    cr_assert_eq(usher_search_open(dir, &s, errbuf, sizeof errbuf), USHER_OK);
    cr_assert_eq(usher_search_query(s, "ada", NULL, 0, 0, USHER_SEARCH_MAX_LIMIT + 1, hits, &n,
                                    &total, errbuf, sizeof errbuf),
                 USHER_ERR_INVALID);
    cr_assert_eq(usher_search_query(s, "ada", NULL, 0, USHER_SEARCH_MAX_OFFSET + 1, 10, hits, &n,
                                    &total, errbuf, sizeof errbuf),
                 USHER_ERR_INVALID);
    cr_assert_eq(
        usher_search_query(s, "ada", "bogus", 0, 0, 10, hits, &n, &total, errbuf, sizeof errbuf),
        USHER_ERR_INVALID);
    cr_assert_eq(
        usher_search_query(s, long_query, NULL, 0, 0, 10, hits, &n, &total, errbuf, sizeof errbuf),
        USHER_ERR_TOO_LARGE);
    usher_search_close(s);

    char missing[128];
    snprintf(missing, sizeof missing, "%s/missing", dir);
    cr_assert_eq(usher_search_open(missing, &s, errbuf, sizeof errbuf), USHER_ERR_NOT_FOUND, "%s",
                 errbuf);
    cr_assert_null(s);

    usher_index_doc bad = { .type = "speaker", .id = 1, .title = "x" };
    cr_assert_eq(usher_index_put(ix, &bad, errbuf, sizeof errbuf), USHER_ERR_INVALID);
    bad.type = "session";
    bad.id = 0;
    cr_assert_eq(usher_index_put(ix, &bad, errbuf, sizeof errbuf), USHER_ERR_INVALID);
    cr_assert_eq(usher_index_close(NULL, errbuf, sizeof errbuf), USHER_OK);
    usher_search_close(NULL);
}
