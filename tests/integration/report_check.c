/*
 * The readers behind report_check.h. The CSV parser is deliberately
 * strict: a bare quote, a lone LF between records or a missing final CRLF
 * fails the test, so the writer is held to RFC 4180 and not to what a
 * forgiving reader would accept.
 */
#include "report_check.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "docstore.h"

static void push(csv_records *r, usher_buf *b)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 256;
        r->rec = realloc(r->rec, r->cap * sizeof(*r->rec));
        cr_assert_not_null(r->rec);
    }
    cr_assert(!usher_buf_failed(b));
    r->rec[r->n] = strdup(usher_buf_str(b));
    cr_assert_not_null(r->rec[r->n]);
    r->n++;
    usher_buf_release(b);
}

/* Parses the field at s[*i] into b. */
static void parse_field(const char *s, size_t len, size_t *i, usher_buf *b)
{
    if (*i < len && s[*i] == '"') {
        for ((*i)++;; (*i)++) {
            cr_assert_lt(*i, len, "unterminated quoted field");
            if (s[*i] == '"' && *i + 1 < len && s[*i + 1] == '"')
                (*i)++;
            else if (s[*i] == '"')
                break;
            usher_buf_append(b, &s[*i], 1);
        }
        (*i)++;
        cr_assert(*i == len || s[*i] == ',' || s[*i] == '\r', "text after a closing quote at %zu",
                  *i);
        return;
    }
    for (; *i < len && s[*i] != ',' && s[*i] != '\r' && s[*i] != '\n'; (*i)++) {
        cr_assert_neq(s[*i], '"', "a quote inside an unquoted field at byte %zu", *i);
        usher_buf_append(b, &s[*i], 1);
    }
}

csv_records csv_parse(const char *s, size_t len)
{
    csv_records out = { 0 };
    size_t i = 0;

    while (i < len) {
        usher_buf b = { 0 };
        for (;;) {
            parse_field(s, len, &i, &b);
            if (i < len && s[i] == ',') {
                usher_buf_append(&b, "\x1f", 1);
                i++;
                continue;
            }
            cr_assert(i + 1 < len && s[i] == '\r' && s[i + 1] == '\n',
                      "record %zu does not end with CRLF (byte %zu)", out.n, i);
            i += 2;
            break;
        }
        push(&out, &b);
    }
    return out;
}

csv_records csv_expected(const PGresult *res, const char *header)
{
    csv_records out = { 0 };
    usher_buf b = { 0 };

    usher_buf_append(&b, header, strlen(header));
    push(&out, &b);
    for (int row = 0; row < PQntuples(res); row++) {
        for (int col = 0; col < PQnfields(res); col++) {
            const char *v = PQgetvalue(res, row, col);
            if (col > 0)
                usher_buf_append(&b, "\x1f", 1);
            if (v[0] != '\0' && strchr("=+-@\t\r", v[0]) != NULL)
                usher_buf_append(&b, "'", 1);
            usher_buf_append(&b, v, strlen(v));
        }
        push(&out, &b);
    }
    return out;
}

void csv_assert_same(const csv_records *got, const csv_records *want)
{
    cr_assert_eq(got->n, want->n, "%zu records in the CSV, %zu expected", got->n, want->n);
    for (size_t i = 0; i < want->n; i++)
        cr_assert_str_eq(got->rec[i], want->rec[i], "record %zu differs", i);
}

void csv_records_free(csv_records *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->rec[i]);
    free(r->rec);
}

char *read_checked_file(const char *path, long size, const char *sha256, size_t *len)
{
    unsigned char hash[crypto_hash_sha256_BYTES];
    char hex[2 * crypto_hash_sha256_BYTES + 1];
    FILE *f = fopen(path, "rb");
    char *data;
    long got;

    cr_assert_not_null(f, "%s is not on disk", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    got = ftell(f);
    cr_assert_eq(got, size, "%s has %ld bytes, not the %ld on record", path, got, size);
    rewind(f);
    data = malloc((size_t)size + 1);
    cr_assert_not_null(data);
    cr_assert_eq(fread(data, 1, (size_t)size, f), (size_t)size);
    data[size] = '\0';
    fclose(f);
    crypto_hash_sha256(hash, (unsigned char *)data, (unsigned long long)size);
    sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
    cr_assert_str_eq(hex, sha256, "the sha256 on record is not that of %s", path);
    *len = (size_t)size;
    return data;
}

char *read_checked_document(const usher_config *cfg, usher_store *st, const char *sha256, long size,
                            size_t *len)
{
    unsigned char hash[crypto_hash_sha256_BYTES];
    char hex[2 * crypto_hash_sha256_BYTES + 1], err[256] = "";
    char *data = malloc((size_t)size + 1);

    cr_assert_not_null(data);
    cr_assert_eq(usher_docstore_read(cfg, st, sha256, 0, (size_t)size, data, err, sizeof(err)),
                 USHER_OK, "document %s (%ld bytes) is not in the store: %s", sha256, size, err);
    data[size] = '\0';
    crypto_hash_sha256(hash, (unsigned char *)data, (unsigned long long)size);
    sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
    cr_assert_str_eq(hex, sha256, "the sha256 on record is not that of the stored bytes");
    *len = (size_t)size;
    return data;
}

/* Runs cmd and keeps its output in out; fails the test unless it exits 0. */
static void run(const char *cmd, char *out, size_t len)
{
    FILE *p = popen(cmd, "r");
    size_t got;

    cr_assert_not_null(p);
    got = fread(out, 1, len - 1, p);
    out[got] = '\0';
    cr_assert_eq(pclose(p), 0, "%s: %s", cmd, out);
}

long pdf_page_count(const char *path)
{
    char cmd[512], out[4096];
    const char *line;

    snprintf(cmd, sizeof(cmd), "pdfinfo '%s' 2>&1", path);
    run(cmd, out, sizeof(out));
    line = strstr(out, "\nPages:");
    cr_assert_not_null(line, "%s", out);
    return strtol(line + strlen("\nPages:"), NULL, 10);
}

void pdf_page_text(const char *path, long page, char *out, size_t len)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "pdftotext -enc UTF-8 -f %ld -l %ld '%s' - 2>&1", page, page, path);
    run(cmd, out, len);
}
