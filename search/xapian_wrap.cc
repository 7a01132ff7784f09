/*
 * The search index: Xapian 1.4 wrapped in the C API of xapian_wrap.h.
 *
 * Every entry point runs its body through guarded(), which catches
 * Xapian::Error, std::exception and everything else, translates it into a
 * usher_err and writes the message into the caller's errbuf: no exception
 * ever reaches C.
 *
 * A document is indexed twice per text field: with its field prefix (S
 * title, XB body, XS speakers, XN name, XE email) for "title:" style
 * queries, and without one for plain queries. Boolean terms carry the
 * identity (Q<type>:<id>, the key for replace and delete), the type (XT) and
 * the event (XV) for filtering. The document data is "type\nid\nevent_id",
 * what a hit returns. The stemming language is recorded in the index's
 * metadata by the writer, so searchers use the same stemmer without being
 * told.
 *
 * The searcher calls Database::reopen() before each query, so it sees every
 * commit made before the call; should the writer overwrite the revision it
 * reads mid-query (DatabaseModifiedError), it reopens and retries once.
 * reopen() does not reread a stub database file, and xapian-replicate
 * points its replica's stub (XAPIANDB) at a new directory after a full
 * copy and removes the old one: the searcher therefore remembers which
 * stub file it opened (device, inode, size, mtime; the replicator renames
 * a new one into place) and opens afresh when that changed.
 *
 * A rebuild replaces every document inside one Xapian transaction
 * (usher_index_replace_begin), committed as a single revision, so that
 * searchers and replicas go from the old index to the new one at once.
 */
#include <sys/stat.h>
#include <xapian.h>

#include <cerrno>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "alloc.h"
#include "xapian_wrap.h"

static const char LANGUAGE_KEY[] = "usher.language";
static const Xapian::doccount EXACT_TOTAL_UP_TO = 1000;

struct usher_index {
    Xapian::WritableDatabase db;
    Xapian::TermGenerator tg;
    bool replacing = false; /* inside usher_index_replace_begin's transaction */
};

/* Which stub file a searcher opened: a replica's XAPIANDB, replaced by rename. */
struct stub_identity {
    bool present;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
};

struct usher_search {
    std::string dir;
    stub_identity stub = {};
    Xapian::Database db;
    Xapian::QueryParser qp;
    std::string language;
};

/* Errors: every path into errbuf, none of which throws. */

__attribute__((format(printf, 4, 5))) static usher_err refuse(usher_err err, char *errbuf,
                                                              size_t errlen, const char *fmt, ...)
{
    if (errbuf != nullptr && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* Xapian::Error is not polymorphic in 1.4: its subclass is named by get_type(). */
static USHER_MUSTCHECK usher_err classify(const Xapian::Error &e)
{
    static const struct {
        const char *type;
        usher_err err;
    } table[] = {
        { "DatabaseLockError", USHER_ERR_CONFLICT },
        { "DatabaseNotFoundError", USHER_ERR_NOT_FOUND },
        { "QueryParserError", USHER_ERR_INVALID },
        { "InvalidArgumentError", USHER_ERR_INVALID },
        { "UnimplementedError", USHER_ERR_INVALID },
        { "InvalidOperationError", USHER_ERR_STATE },
    };
    /* A lock error is a busy index (CONFLICT: the caller may wait) only when
     * another writer holds the lock; Xapian raises the same type when locking
     * is not supported or descriptors ran out, which waiting does not cure. */
    if (strcmp(e.get_type(), "DatabaseLockError") == 0 &&
        e.get_msg().find("already locked") == std::string::npos)
        return USHER_ERR_IO;
    for (const auto &row : table) {
        if (strcmp(e.get_type(), row.type) == 0)
            return row.err;
    }
    return USHER_ERR_IO;
}

static USHER_MUSTCHECK usher_err xapian_failure(const Xapian::Error &e, char *errbuf, size_t errlen)
{
    usher_err err = classify(e);
    try {
        return refuse(err, errbuf, errlen, "%s", e.get_description().c_str());
    } catch (...) {
        return refuse(err, errbuf, errlen, "%s: %s", e.get_type(), e.get_msg().c_str());
    }
}

template <typename Body> static usher_err guarded(char *errbuf, size_t errlen, Body &&body) noexcept
{
    try {
        return body();
    } catch (const Xapian::Error &e) {
        try {
            return xapian_failure(e, errbuf, errlen);
        } catch (...) {
            return refuse(USHER_ERR_IO, errbuf, errlen, "%s", e.get_type());
        }
    } catch (const std::bad_alloc &) {
        usher_oom(0); /* the policy of alloc.h: out of memory aborts, in C++ too */
    } catch (const std::exception &e) {
        return refuse(USHER_ERR_IO, errbuf, errlen, "%s", e.what());
    } catch (...) {
        return refuse(USHER_ERR_IO, errbuf, errlen, "unknown exception in the search index");
    }
}

/* Terms and document data. */

static bool known_type_n(const char *type, size_t len)
{
    static const char *const types[] = { "event", "session", "attendee" };
    for (const char *known : types) {
        if (strlen(known) == len && strncmp(type, known, len) == 0)
            return true;
    }
    return false;
}

static bool known_type(const char *type)
{
    return type != nullptr && known_type_n(type, strlen(type));
}

/* "event,session": every comma-separated name a known type. */
static bool known_type_list(const char *list)
{
    for (;;) {
        size_t len = strcspn(list, ",");
        if (!known_type_n(list, len))
            return false;
        if (list[len] == '\0')
            return true;
        list += len + 1;
    }
}

static std::string id_term(const char *type, int64_t id)
{
    return std::string("Q") + type + ":" + std::to_string(id);
}

static std::string event_term(int64_t event_id)
{
    return "XV" + std::to_string(event_id);
}

/* "Xapian::Stem(english)" -> "english": one name for "en" and "english". */
static std::string canonical_language(const Xapian::Stem &stem)
{
    std::string desc = stem.get_description();
    size_t open = desc.find('(');
    size_t close = desc.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close <= open)
        return desc;
    return desc.substr(open + 1, close - open - 1);
}

static Xapian::Stem stemmer_for(const std::string &language)
{
    return Xapian::Stem(language.empty() ? std::string("none") : language);
}

/* The writer. */

static USHER_MUSTCHECK usher_err record_language(usher_index *ix, const std::string &language,
                                                 const char *dir, char *errbuf, size_t errlen)
{
    std::string recorded = ix->db.get_metadata(LANGUAGE_KEY);
    if (recorded.empty()) {
        ix->db.set_metadata(LANGUAGE_KEY, language);
        ix->db.commit();
        return USHER_OK;
    }
    if (recorded != language)
        return refuse(USHER_ERR_CONFIG, errbuf, errlen,
                      "index %s was built with language %s, not %s", dir, recorded.c_str(),
                      language.c_str());
    return USHER_OK;
}

extern "C" usher_err usher_index_keep_changesets(int n, char *errbuf, size_t errlen)
{
    char text[16];

    if (n < 0)
        return refuse(USHER_ERR_INVALID, errbuf, errlen, "index: %d changesets", n);
    if (n == 0)
        return USHER_OK;
    snprintf(text, sizeof text, "%d", n);
    /* Xapian reads it at every commit (GlassChanges::start). */
    if (setenv("XAPIAN_MAX_CHANGESETS", text, 1) != 0)
        return refuse(USHER_ERR_IO, errbuf, errlen, "index: setenv: %s", strerror(errno));
    return USHER_OK;
}

extern "C" usher_err usher_index_open_writer(const char *dir, const char *language,
                                             usher_index **out, char *errbuf, size_t errlen)
{
    if (out == nullptr || dir == nullptr || *dir == '\0' || language == nullptr)
        return refuse(USHER_ERR_INVALID, errbuf, errlen, "index: no directory or language");
    *out = nullptr;
    return guarded(errbuf, errlen, [&]() -> usher_err {
        Xapian::Stem stem(language); /* throws InvalidArgumentError if unknown */
        std::unique_ptr<usher_index> ix(new usher_index);
        /* No DB_RETRY_LOCK: a second writer fails at once, never waits. */
        ix->db = Xapian::WritableDatabase(dir, Xapian::DB_CREATE_OR_OPEN);
        usher_err err = record_language(ix.get(), canonical_language(stem), dir, errbuf, errlen);
        if (err != USHER_OK)
            return err;
        ix->tg.set_stemmer(stem);
        ix->tg.set_stemming_strategy(Xapian::TermGenerator::STEM_SOME);
        *out = ix.release();
        return USHER_OK;
    });
}

extern "C" usher_err usher_index_open_waiting(const char *dir, const char *language, int budget_ms,
                                              usher_index **out, char *errbuf, size_t errlen)
{
    int waited = 0, pause_ms = 10;
    usher_err err;

    while ((err = usher_index_open_writer(dir, language, out, errbuf, errlen)) ==
               USHER_ERR_CONFLICT &&
           waited + pause_ms <= budget_ms) {
        struct timespec ts = { 0, (long)pause_ms * 1000000 };

        nanosleep(&ts, nullptr);
        waited += pause_ms;
        pause_ms = pause_ms < 160 ? 2 * pause_ms : pause_ms;
    }
    return err;
}

extern "C" usher_err usher_index_replace_begin(usher_index *ix, char *errbuf, size_t errlen)
{
    if (ix == nullptr)
        return refuse(USHER_ERR_INVALID, errbuf, errlen, "index: no writer");
    if (ix->replacing)
        return refuse(USHER_ERR_STATE, errbuf, errlen, "index: a replacement is under way");
    return guarded(errbuf, errlen, [&]() -> usher_err {
        std::vector<Xapian::docid> ids;

        ix->db.begin_transaction(true);
        ix->replacing = true;
        /* Collected first: deleting while walking the posting list would move it. */
        for (Xapian::PostingIterator it = ix->db.postlist_begin(""); it != ix->db.postlist_end("");
             ++it)
            ids.push_back(*it);
        for (Xapian::docid id : ids)
            ix->db.delete_document(id);
        return USHER_OK;
    });
}

static USHER_MUSTCHECK usher_err check_doc(const usher_index_doc *doc, char *errbuf, size_t errlen)
{
    if (doc == nullptr || !known_type(doc->type))
        return refuse(USHER_ERR_INVALID, errbuf, errlen,
                      "index: type must be event, session or attendee");
    if (doc->id <= 0 || doc->event_id < 0)
        return refuse(USHER_ERR_INVALID, errbuf, errlen, "index: %s id %" PRId64 " out of range",
                      doc->type, doc->id);
    const char *fields[] = { doc->title, doc->body, doc->speakers, doc->name, doc->email };
    for (const char *text : fields) {
        if (text != nullptr && strnlen(text, USHER_INDEX_MAX_FIELD + 1) > USHER_INDEX_MAX_FIELD)
            return refuse(USHER_ERR_TOO_LARGE, errbuf, errlen,
                          "index: %s %" PRId64 " has a field over %d bytes", doc->type, doc->id,
                          USHER_INDEX_MAX_FIELD);
    }
    return USHER_OK;
}

static void index_field(Xapian::TermGenerator &tg, const char *text, const char *prefix)
{
    if (text == nullptr || *text == '\0')
        return;
    tg.index_text(text, 1, prefix);
    tg.increase_termpos();
    tg.index_text(text);
    tg.increase_termpos();
}

static Xapian::Document build_document(usher_index *ix, const usher_index_doc *d)
{
    Xapian::Document doc;
    ix->tg.set_document(doc);
    index_field(ix->tg, d->title, "S");
    index_field(ix->tg, d->body, "XB");
    index_field(ix->tg, d->speakers, "XS");
    index_field(ix->tg, d->name, "XN");
    index_field(ix->tg, d->email, "XE");
    doc.add_boolean_term(id_term(d->type, d->id));
    doc.add_boolean_term(std::string("XT") + d->type);
    if (d->event_id > 0)
        doc.add_boolean_term(event_term(d->event_id));
    doc.set_data(std::string(d->type) + "\n" + std::to_string(d->id) + "\n" +
                 std::to_string(d->event_id));
    return doc;
}

extern "C" usher_err usher_index_put(usher_index *ix, const usher_index_doc *doc, char *errbuf,
                                     size_t errlen)
{
    if (ix == nullptr)
        return refuse(USHER_ERR_INVALID, errbuf, errlen, "index: no writer");
    usher_err err = check_doc(doc, errbuf, errlen);
    if (err != USHER_OK)
        return err;
    return guarded(errbuf, errlen, [&]() -> usher_err {
        ix->db.replace_document(id_term(doc->type, doc->id), build_document(ix, doc));
        return USHER_OK;
    });
}

extern "C" usher_err usher_index_delete(usher_index *ix, const char *type, int64_t id, char *errbuf,
                                        size_t errlen)
{
    if (ix == nullptr || !known_type(type) || id <= 0)
        return refuse(USHER_ERR_INVALID, errbuf, errlen, "index: delete needs a type and an id");
    return guarded(errbuf, errlen, [&]() -> usher_err {
        ix->db.delete_document(id_term(type, id));
        return USHER_OK;
    });
}

extern "C" usher_err usher_index_commit(usher_index *ix, char *errbuf, size_t errlen)
{
    if (ix == nullptr)
        return refuse(USHER_ERR_INVALID, errbuf, errlen, "index: no writer");
    return guarded(errbuf, errlen, [&]() -> usher_err {
        if (ix->replacing) {
            ix->replacing = false; /* committed or not, the transaction is over */
            ix->db.commit_transaction();
        } else {
            ix->db.commit();
        }
        return USHER_OK;
    });
}

extern "C" usher_err usher_index_close(usher_index *ix, char *errbuf, size_t errlen)
{
    if (ix == nullptr)
        return USHER_OK;
    usher_err err = guarded(errbuf, errlen, [&]() -> usher_err {
        if (ix->replacing)
            ix->db.cancel_transaction(); /* an uncommitted replacement is abandoned */
        else
            ix->db.commit();
        ix->db.close(); /* releases the lock now */
        return USHER_OK;
    });
    delete ix; /* Xapian's destructors swallow their own errors */
    return err;
}

/* The searcher. */

static void configure_parser(usher_search *s)
{
    std::string language = s->db.get_metadata(LANGUAGE_KEY);
    if (language == s->language && !s->language.empty())
        return;
    s->qp.set_stemmer(stemmer_for(language));
    s->language = language.empty() ? "none" : language;
}

static stub_identity stub_of(const std::string &dir)
{
    stub_identity id = {};
    struct stat sb;

    if (stat((dir + "/XAPIANDB").c_str(), &sb) == 0) {
        id.present = true;
        id.dev = sb.st_dev;
        id.ino = sb.st_ino;
        id.size = sb.st_size;
        id.mtime = sb.st_mtim;
    }
    return id;
}

static bool same_stub(const stub_identity &a, const stub_identity &b)
{
    if (!a.present || !b.present)
        return a.present == b.present;
    return a.dev == b.dev && a.ino == b.ino && a.size == b.size &&
           a.mtime.tv_sec == b.mtime.tv_sec && a.mtime.tv_nsec == b.mtime.tv_nsec;
}

/* Opens s->dir from scratch: the stub is read before, so a switch after it is seen next time. */
static void open_afresh(usher_search *s)
{
    s->stub = stub_of(s->dir);
    s->db = Xapian::Database(s->dir);
    s->qp.set_database(s->db);
    configure_parser(s);
}

/* Brings s to the latest revision: afresh after a full copy, else reopen(). */
static void refresh(usher_search *s)
{
    if (!same_stub(stub_of(s->dir), s->stub)) {
        open_afresh(s);
        return;
    }
    try {
        if (s->db.reopen())
            configure_parser(s);
    } catch (const Xapian::DatabaseError &) {
        open_afresh(s); /* the copy it had open is gone */
    }
}

extern "C" usher_err usher_search_open(const char *dir, usher_search **out, char *errbuf,
                                       size_t errlen)
{
    if (out == nullptr || dir == nullptr || *dir == '\0')
        return refuse(USHER_ERR_INVALID, errbuf, errlen, "search: no directory");
    *out = nullptr;
    return guarded(errbuf, errlen, [&]() -> usher_err {
        std::unique_ptr<usher_search> s(new usher_search);
        s->dir = dir;
        s->stub = stub_of(s->dir);
        s->db = Xapian::Database(dir);
        s->qp.set_database(s->db);
        s->qp.set_stemming_strategy(Xapian::QueryParser::STEM_SOME);
        s->qp.set_default_op(Xapian::Query::OP_AND);
        s->qp.add_prefix("title", "S");
        s->qp.add_prefix("abstract", "XB");
        s->qp.add_prefix("speaker", "XS");
        s->qp.add_prefix("name", "XN");
        s->qp.add_prefix("email", "XE");
        configure_parser(s.get());
        *out = s.release();
        return USHER_OK;
    });
}

extern "C" void usher_search_close(usher_search *s)
{
    delete s;
}

struct search_request {
    const char *query;
    const char *type_filter;
    int64_t event_filter;
    size_t offset;
    size_t limit;
};

static bool blank(const char *text)
{
    for (; *text != '\0'; text++) {
        if (*text != ' ' && *text != '\t' && *text != '\n' && *text != '\r')
            return false;
    }
    return true;
}

/* Strict syntax first; what it rejects is read again as plain words. */
static Xapian::Query parse(usher_search *s, const char *query)
{
    if (blank(query))
        return Xapian::Query::MatchAll;
    try {
        return s->qp.parse_query(query, Xapian::QueryParser::FLAG_DEFAULT |
                                            Xapian::QueryParser::FLAG_PARTIAL);
    } catch (const Xapian::QueryParserError &) {
        return s->qp.parse_query(query, Xapian::QueryParser::FLAG_PARTIAL);
    }
}

/* "event,session" -> XTevent OR XTsession (the list was checked). */
static Xapian::Query type_query(const char *list)
{
    std::vector<Xapian::Query> types;
    for (;;) {
        size_t len = strcspn(list, ",");
        types.emplace_back("XT" + std::string(list, len));
        if (list[len] == '\0')
            break;
        list += len + 1;
    }
    return Xapian::Query(Xapian::Query::OP_OR, types.begin(), types.end());
}

static Xapian::Query filtered(Xapian::Query query, const search_request *req)
{
    std::vector<Xapian::Query> filters;
    if (req->type_filter != nullptr)
        filters.push_back(type_query(req->type_filter));
    if (req->event_filter > 0)
        filters.emplace_back(event_term(req->event_filter));
    if (filters.empty())
        return query;
    return Xapian::Query(Xapian::Query::OP_FILTER, query,
                         Xapian::Query(Xapian::Query::OP_AND, filters.begin(), filters.end()));
}

static void fill_hit(usher_search_hit *hit, const Xapian::MSetIterator &it)
{
    std::string data = it.get_document().get_data();
    size_t nl = data.find('\n');
    std::string type = data.substr(0, nl);
    const char *rest = nl == std::string::npos ? "" : data.c_str() + nl + 1;
    char *end = nullptr;

    memset(hit, 0, sizeof *hit);
    snprintf(hit->type, sizeof hit->type, "%s", type.c_str());
    hit->id = strtoll(rest, &end, 10);
    if (end != nullptr && *end == '\n')
        hit->event_id = strtoll(end + 1, nullptr, 10);
    hit->score = it.get_weight();
    hit->percent = it.get_percent();
}

static void run_query(usher_search *s, const search_request *req, usher_search_hit *hits,
                      size_t *nhits, size_t *total_estimate)
{
    Xapian::Enquire enquire(s->db);
    enquire.set_query(filtered(parse(s, req->query), req));
    Xapian::doccount check = Xapian::doccount(req->offset + req->limit);
    if (check < EXACT_TOTAL_UP_TO)
        check = EXACT_TOTAL_UP_TO;
    Xapian::MSet mset =
        enquire.get_mset(Xapian::doccount(req->offset), Xapian::doccount(req->limit), check);
    size_t n = 0;
    for (Xapian::MSetIterator it = mset.begin(); it != mset.end() && n < req->limit; ++it)
        fill_hit(&hits[n++], it);
    *nhits = n;
    if (total_estimate != nullptr)
        *total_estimate = mset.get_matches_estimated();
}

static USHER_MUSTCHECK usher_err check_request(const search_request *req,
                                               const usher_search_hit *hits, const size_t *nhits,
                                               char *errbuf, size_t errlen)
{
    if (req->query == nullptr || nhits == nullptr || (hits == nullptr && req->limit > 0))
        return refuse(USHER_ERR_INVALID, errbuf, errlen, "search: no query or result buffer");
    if (strnlen(req->query, USHER_SEARCH_MAX_QUERY + 1) > USHER_SEARCH_MAX_QUERY)
        return refuse(USHER_ERR_TOO_LARGE, errbuf, errlen, "search: query over %d bytes",
                      USHER_SEARCH_MAX_QUERY);
    if (req->limit > USHER_SEARCH_MAX_LIMIT || req->offset > USHER_SEARCH_MAX_OFFSET)
        return refuse(USHER_ERR_INVALID, errbuf, errlen,
                      "search: limit %zu or offset %zu over %d/%d", req->limit, req->offset,
                      USHER_SEARCH_MAX_LIMIT, USHER_SEARCH_MAX_OFFSET);
    if (req->type_filter != nullptr && !known_type_list(req->type_filter))
        return refuse(USHER_ERR_INVALID, errbuf, errlen, "search: unknown type filter %s",
                      req->type_filter);
    if (req->event_filter < 0)
        return refuse(USHER_ERR_INVALID, errbuf, errlen, "search: negative event filter");
    return USHER_OK;
}

extern "C" usher_err usher_search_query(usher_search *s, const char *query, const char *type_filter,
                                        int64_t event_filter, size_t offset, size_t limit,
                                        usher_search_hit *hits, size_t *nhits,
                                        size_t *total_estimate, char *errbuf, size_t errlen)
{
    search_request req = { query, type_filter, event_filter, offset, limit };
    if (s == nullptr)
        return refuse(USHER_ERR_INVALID, errbuf, errlen, "search: no searcher");
    usher_err err = check_request(&req, hits, nhits, errbuf, errlen);
    if (err != USHER_OK)
        return err;
    *nhits = 0;
    return guarded(errbuf, errlen, [&]() -> usher_err {
        refresh(s);
        try {
            run_query(s, &req, hits, nhits, total_estimate);
        } catch (const Xapian::DatabaseError &) {
            /* DatabaseModifiedError, or the replica's copy removed mid-query. */
            *nhits = 0;
            open_afresh(s);
            run_query(s, &req, hits, nhits, total_estimate);
        }
        return USHER_OK;
    });
}
