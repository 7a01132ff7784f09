/*
 * Tickets, badges and the document store, checked with the real tools a
 * person would use: pdftotext reads the text back, pdftoppm + zbarimg scan
 * the QR code, pdfinfo counts pages, sha256sum hashes stored documents.
 * Needs poppler-utils and zbar-tools; no database.
 */
#define _GNU_SOURCE /* memmem */
#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "docstore_dir.h"
#include "pdf_render.h"

static char dir[64];

static void setup(void)
{
    strcpy(dir, "/tmp/usher-pdf-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(pdf, .init = setup, .fini = teardown);

static const usher_ticket zoe = {
    .event_name = "Ωmega Conf 2026 — Tag 1",
    .venue = "Messe Berlin, Halle 7",
    .starts_at = "Sat 5 Dec 2026, 18:00 (Europe/Berlin)",
    .attendee_name = "Zoë Ångström",
    .ticket_type = "Frühbucher VIP",
    .ticket_code = "UT1.4kq9Zp_x-3Hq7.b2JWs8Vt",
};

/* Runs cmd, captures stdout into out; returns the exit status. */
static int run(const char *cmd, char *out, size_t len)
{
    FILE *p = popen(cmd, "r");
    size_t got;
    int status;

    cr_assert_not_null(p, "popen %s", cmd);
    got = fread(out, 1, len - 1, p);
    out[got] = '\0';
    status = pclose(p);
    cr_assert(WIFEXITED(status), "%s did not exit", cmd);
    return WEXITSTATUS(status);
}

/* The page count pdfinfo reports for path. */
static long pages_of(const char *path)
{
    char cmd[512], out[4096], *p;

    snprintf(cmd, sizeof(cmd), "pdfinfo '%s'", path);
    cr_assert_eq(run(cmd, out, sizeof(out)), 0, "%s", out);
    p = strstr(out, "\nPages:");
    cr_assert_not_null(p, "%s", out);
    return strtol(p + strlen("\nPages:"), NULL, 10);
}

/* Writes a PDF into the test directory as name; the path goes to path. */
static void save(const char *name, const unsigned char *pdf, size_t len, char *path, size_t plen)
{
    FILE *f;

    snprintf(path, plen, "%s/%s", dir, name);
    f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(pdf, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static void render_ticket(const usher_ticket *t, usher_page_size size, const char *name, char *path,
                          size_t plen)
{
    unsigned char *pdf = NULL;
    size_t len = 0;
    char err[256] = "";

    cr_assert_eq(usher_pdf_ticket(t, size, &pdf, &len, err, sizeof(err)), USHER_OK, "%s", err);
    cr_assert_gt(len, 1000);
    cr_assert_eq(memcmp(pdf, "%PDF-", 5), 0);
    save(name, pdf, len, path, plen);
    free(pdf);
}

static void text_of(const char *path, char *out, size_t len)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "pdftotext -enc UTF-8 '%s' - 2>&1", path);
    cr_assert_eq(run(cmd, out, len), 0, "%s", out);
}

Test(pdf, ticket_text_holds_every_field_in_utf8)
{
    char path[256], text[16384];

    render_ticket(&zoe, USHER_PAGE_A6, "t.pdf", path, sizeof(path));
    text_of(path, text, sizeof(text));
    cr_assert(strstr(text, "Zoë Ångström") != NULL, "%s", text);
    cr_assert(strstr(text, "Ωmega Conf 2026 — Tag 1") != NULL, "%s", text);
    cr_assert(strstr(text, "Messe Berlin, Halle 7") != NULL, "%s", text);
    cr_assert(strstr(text, "Sat 5 Dec 2026, 18:00 (Europe/Berlin)") != NULL, "%s", text);
    cr_assert(strstr(text, "Frühbucher VIP") != NULL, "%s", text);
    cr_assert(strstr(text, zoe.ticket_code) != NULL, "%s", text);
}

Test(pdf, polish_greek_and_cyrillic_names_render)
{
    const char *names[] = { "Łukasz Żółć", "Σωκράτης", "Пётр Чайковский" };
    char path[256], text[16384];
    size_t i;

    for (i = 0; i < 3; i++) {
        usher_ticket t = zoe;
        t.attendee_name = names[i];
        render_ticket(&t, USHER_PAGE_A4, "n.pdf", path, sizeof(path));
        text_of(path, text, sizeof(text));
        cr_assert(strstr(text, names[i]) != NULL, "%s not in: %s", names[i], text);
    }
}

/* Rasterises the PDF and returns what zbarimg decodes. */
static void scan(const char *path, char *out, size_t len)
{
    char cmd[768];

    snprintf(cmd, sizeof(cmd), "pdftoppm -r 150 -png -singlefile '%s' '%s/scan' 2>&1", path, dir);
    cr_assert_eq(run(cmd, out, len), 0, "%s", out);
    snprintf(cmd, sizeof(cmd), "zbarimg --raw -q '%s/scan.png' 2>/dev/null", dir);
    cr_assert_eq(run(cmd, out, len), 0, "zbarimg found no code");
}

Test(pdf, qr_code_decodes_to_exactly_the_ticket_code_on_a6_and_a4)
{
    char path[256], out[4096], want[600];

    snprintf(want, sizeof(want), "%s\n", zoe.ticket_code);
    render_ticket(&zoe, USHER_PAGE_A6, "a6.pdf", path, sizeof(path));
    scan(path, out, sizeof(out));
    cr_assert_str_eq(out, want);
    render_ticket(&zoe, USHER_PAGE_A4, "a4.pdf", path, sizeof(path));
    scan(path, out, sizeof(out));
    cr_assert_str_eq(out, want);
}

Test(pdf, a_long_ticket_code_still_scans)
{
    char path[256], out[4096], code[301], want[310];
    usher_ticket t = zoe;
    size_t i;

    for (i = 0; i < 300; i++)
        code[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[(i * 7) % 64];
    code[300] = '\0';
    t.ticket_code = code;
    snprintf(want, sizeof(want), "%s\n", code);
    render_ticket(&t, USHER_PAGE_A6, "long.pdf", path, sizeof(path));
    scan(path, out, sizeof(out));
    cr_assert_str_eq(out, want);
}

Test(pdf, page_sizes_are_a4_and_a6)
{
    char path[256], out[4096], cmd[512];

    render_ticket(&zoe, USHER_PAGE_A4, "a4.pdf", path, sizeof(path));
    snprintf(cmd, sizeof(cmd), "pdfinfo '%s'", path);
    cr_assert_eq(run(cmd, out, sizeof(out)), 0);
    cr_assert(strstr(out, "595.276 x 841.89 pts (A4)") != NULL, "%s", out);
    cr_assert_eq(pages_of(path), 1);
    render_ticket(&zoe, USHER_PAGE_A6, "a6.pdf", path, sizeof(path));
    snprintf(cmd, sizeof(cmd), "pdfinfo '%s'", path);
    cr_assert_eq(run(cmd, out, sizeof(out)), 0);
    cr_assert(strstr(out, "297.638 x 419.528 pts") != NULL, "%s", out);
}

Test(pdf, the_same_input_gives_identical_bytes)
{
    unsigned char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    usher_badge people[3] = { { "Zoë", "ACME", "Speaker" },
                              { "Пётр", NULL, NULL },
                              { "Σ", "", "" } };
    char err[256] = "";

    cr_assert_eq(usher_pdf_ticket(&zoe, USHER_PAGE_A6, &a, &alen, err, sizeof(err)), USHER_OK);
    cr_assert_eq(usher_pdf_ticket(&zoe, USHER_PAGE_A6, &b, &blen, err, sizeof(err)), USHER_OK);
    cr_assert_eq(alen, blen);
    cr_assert_eq(memcmp(a, b, alen), 0, "two renders of one ticket differ");
    free(a);
    free(b);
    cr_assert_eq(usher_pdf_badges(people, 3, &a, &alen, err, sizeof(err)), USHER_OK, "%s", err);
    cr_assert_eq(usher_pdf_badges(people, 3, &b, &blen, err, sizeof(err)), USHER_OK, "%s", err);
    cr_assert_eq(alen, blen);
    cr_assert_eq(memcmp(a, b, alen), 0, "two renders of one badge sheet differ");
    free(a);
    free(b);
}

/* A render every thread must reproduce. */
typedef struct expected_pdf {
    const unsigned char *pdf;
    size_t len;
} expected_pdf;

/* Thread body: renders zoe 20 times; returns arg if every render matched it, else NULL. */
static void *render_many(void *arg)
{
    const expected_pdf *want = arg;

    for (int i = 0; i < 20; i++) {
        unsigned char *pdf = NULL;
        size_t len = 0;
        char err[256] = "";
        int same;
        if (usher_pdf_ticket(&zoe, USHER_PAGE_A6, &pdf, &len, err, sizeof(err)) != USHER_OK)
            return NULL;
        same = len == want->len && memcmp(pdf, want->pdf, len) == 0;
        free(pdf);
        if (!same)
            return NULL;
    }
    return arg;
}

/* Renders t on A6 into a malloc'd buffer, asserting success. */
static unsigned char *ticket_bytes(const usher_ticket *t, size_t *len)
{
    unsigned char *pdf = NULL;
    char err[256] = "";

    cr_assert_eq(usher_pdf_ticket(t, USHER_PAGE_A6, &pdf, len, err, sizeof(err)), USHER_OK, "%s",
                 err);
    return pdf;
}

Test(pdf, a_ticket_is_the_same_after_other_tickets_and_in_parallel_threads)
{
    usher_ticket other = zoe;
    unsigned char *a, *b;
    size_t alen, blen;
    pthread_t threads[4];
    expected_pdf want;

    a = ticket_bytes(&zoe, &alen);
    other.attendee_name = "Пётр Чайковский";
    other.event_name = "Another event, with glyphs the first one lacks: QXJ ÿ";
    free(ticket_bytes(&other, &blen));
    b = ticket_bytes(&zoe, &blen);
    cr_assert_eq(alen, blen);
    cr_assert_eq(memcmp(a, b, alen), 0, "a render after another ticket differs");
    free(b);
    want = (expected_pdf){ a, alen };
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, render_many, &want), 0);
    for (int i = 0; i < 4; i++) {
        void *same;
        cr_assert_eq(pthread_join(threads[i], &same), 0);
        cr_assert_not_null(same, "a render in thread %d differs", i);
    }
    free(a);
}

/*
 * The fonts pdffonts lists for path: each must be embedded as a subset
 * (columns emb and sub), and both DejaVu faces must be there.
 */
static void assert_subset_fonts(const char *path)
{
    char cmd[512], out[8192], *line, *lines = NULL, *words;
    int fonts = 0, past_header = 0;

    snprintf(cmd, sizeof(cmd), "pdffonts '%s' 2>&1", path);
    cr_assert_eq(run(cmd, out, sizeof(out)), 0, "%s", out);
    cr_assert(strstr(out, "+DejaVuSans ") != NULL, "%s", out);
    cr_assert(strstr(out, "+DejaVuSans-Bold ") != NULL, "%s", out);
    for (line = strtok_r(out, "\n", &lines); line != NULL; line = strtok_r(NULL, "\n", &lines)) {
        char *tok[16];
        int n = 0;
        if (!past_header) {
            past_header = strncmp(line, "----", 4) == 0;
            continue;
        }
        for (char *t = strtok_r(line, " ", &words); t != NULL && n < 16;
             t = strtok_r(NULL, " ", &words))
            tok[n++] = t;
        /* ... emb sub uni object-number generation */
        cr_assert_geq(n, 7, "short pdffonts line");
        cr_assert_str_eq(tok[n - 5], "yes", "%s is not embedded", tok[0]);
        cr_assert_str_eq(tok[n - 4], "yes", "%s is not a subset", tok[0]);
        cr_assert_str_eq(tok[n - 3], "yes", "%s has no ToUnicode map", tok[0]);
        fonts++;
    }
    cr_assert_geq(fonts, 2);
}

Test(pdf, ticket_fonts_are_embedded_subsets_and_the_ticket_is_small)
{
    unsigned char *pdf;
    size_t len;
    char path[256];

    pdf = ticket_bytes(&zoe, &len);
    cr_assert_lt(len, 40 * 1024, "an A6 ticket of %zu bytes", len);
    save("sub.pdf", pdf, len, path, sizeof(path));
    free(pdf);
    assert_subset_fonts(path);
    render_ticket(&zoe, USHER_PAGE_A4, "sub4.pdf", path, sizeof(path));
    assert_subset_fonts(path);
}

/* The big-endian 16-bit number at p. */
static unsigned be16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/*
 * Inflates the embedded TrueType font (FontFile2: the stream whose dictionary
 * has /Length1) at or after *at in pdf, into out; returns its size and moves
 * *at past it, or 0 when there is none.
 */
static size_t next_font_program(const unsigned char *pdf, size_t len, size_t *at,
                                unsigned char *out, size_t cap)
{
    const char *key = memmem(pdf + *at, len - *at, "/Length1 ", 9), *data;
    z_stream z = { 0 };
    size_t n;

    if (key == NULL)
        return 0;
    data = memmem(key, len - (size_t)((const unsigned char *)key - pdf), "stream\n", 7);
    cr_assert_not_null(data, "a /Length1 dictionary without its stream");
    data += 7;
    cr_assert_eq(inflateInit(&z), Z_OK);
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)(len - (size_t)((const unsigned char *)data - pdf));
    z.next_out = out;
    z.avail_out = (uInt)cap;
    cr_assert_eq(inflate(&z, Z_FINISH), Z_STREAM_END, "a font stream that does not inflate");
    n = cap - z.avail_out;
    *at = (size_t)((const unsigned char *)data - pdf) + z.total_in;
    cr_assert_eq(inflateEnd(&z), Z_OK);
    return n;
}

/*
 * The fonts are read without their hinting (pdf_ticket_fonts.c): no embedded
 * subset holds the TrueType instructions' tables (fpgm, prep, cvt) or glyph
 * instructions (maxp), and this ticket is 12 KB, against 22 KB with DejaVu's
 * hinting.
 */
Test(pdf, ticket_fonts_are_embedded_without_hinting)
{
    static unsigned char font[256 * 1024];
    unsigned char *pdf;
    size_t len, at = 0, n;
    int fonts = 0;

    pdf = ticket_bytes(&zoe, &len);
    while ((n = next_font_program(pdf, len, &at, font, sizeof(font))) > 0) {
        unsigned tables;

        cr_assert_geq(n, 12, "a font program of %zu bytes", n);
        tables = be16(font + 4);
        cr_assert_geq(n, 12 + 16 * (size_t)tables, "a truncated table directory");
        cr_assert_gt(tables, 0);
        for (unsigned i = 0; i < tables; i++) {
            const unsigned char *entry = font + 12 + 16 * i; /* tag, checksum, offset, length */
            const char *tag = (const char *)entry;

            /* and no glyph's own instructions: maxp's maxSizeOfInstructions is 0 */
            if (memcmp(tag, "maxp", 4) == 0) {
                size_t off = (size_t)be16(entry + 8) << 16 | be16(entry + 10);

                cr_assert_leq(off + 28, n, "a truncated maxp table");
                cr_assert_eq(be16(font + off + 26), 0, "font %d: glyph instructions up to %u bytes",
                             fonts, be16(font + off + 26));
            }

            cr_assert(memcmp(tag, "fpgm", 4) != 0 && memcmp(tag, "prep", 4) != 0 &&
                          memcmp(tag, "cvt ", 4) != 0,
                      "font %d carries hinting: table '%.4s'", fonts, tag);
        }
        fonts++;
    }
    free(pdf);
    /* regular and bold, and a subset of its own for the characters beyond WinAnsi (Ω) */
    cr_assert_geq(fonts, 2, "%d embedded TrueType fonts, expected regular and bold", fonts);
    cr_assert_lt(len, 14 * 1024, "an A6 ticket of %zu bytes (22.2 KB with the hinting)", len);
}

/* Deflates in at level with deflateInit2, or with deflateInit if !init2; returns the size. */
static size_t deflate_with(const unsigned char *in, size_t n, unsigned char *out, size_t cap,
                           int level, bool init2)
{
    z_stream z = { 0 };

    if (init2)
        cr_assert_eq(deflateInit2(&z, level, Z_DEFLATED, MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    else
        cr_assert_eq(deflateInit(&z, level), Z_OK);
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    cr_assert_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    cr_assert_eq(deflateEnd(&z), Z_OK);
    return cap - z.avail_out;
}

/*
 * cairo and libharu start their streams with deflateInit at zlib's default
 * level: in a binary that renders tickets that is level 1 (pdf_ticket_page.c),
 * while deflateInit2 keeps the level it is given.
 */
Test(pdf, pdf_streams_deflate_at_the_fastest_level)
{
    static unsigned char in[64 * 1024], a[80 * 1024], b[80 * 1024], c[80 * 1024];
    size_t na, nb, nc;
    static const char *const words[] = { "Usher ", "ticket ", "stream ", "font ",  "glyph ",
                                         "Zoë ",   "door ",   "seat ",   "0 0 m ", "BT ET " };
    uint32_t x = 12345;

    /* Text of words in a pseudo-random order: levels 1 and 6 find different matches. */
    for (size_t i = 0; i < sizeof(in);) {
        const char *w;

        x = x * 1103515245u + 12345u;
        w = words[(x >> 16) % 10];
        for (size_t k = 0; w[k] != '\0' && i < sizeof(in); k++)
            in[i++] = (unsigned char)w[k];
    }
    na = deflate_with(in, sizeof(in), a, sizeof(a), Z_DEFAULT_COMPRESSION, false);
    nb = deflate_with(in, sizeof(in), b, sizeof(b), Z_BEST_SPEED, true);
    nc = deflate_with(in, sizeof(in), c, sizeof(c), 6, true); /* zlib's default level */
    cr_assert(na == nb && memcmp(a, b, na) == 0, "deflateInit did not deflate at level 1");
    cr_assert(na != nc || memcmp(a, c, na) != 0, "levels 1 and 6 gave the same bytes: no test");
}

Test(pdf, a_character_the_font_lacks_still_extracts_as_itself)
{
    usher_ticket t = zoe;
    char path[256], text[16384];

    /* DejaVu Sans has no CJK: the glyphs are the font's missing-glyph box */
    t.attendee_name = "山田 太郎 (Zoë)";
    render_ticket(&t, USHER_PAGE_A6, "cjk.pdf", path, sizeof(path));
    text_of(path, text, sizeof(text));
    cr_assert(strstr(text, "山田 太郎 (Zoë)") != NULL, "%s", text);
    cr_assert(strstr(text, zoe.ticket_code) != NULL, "%s", text);
}

Test(pdf, eleven_badges_fill_two_sheets_with_every_name)
{
    static const char *names[11] = { "Zoë Ångström", "Łukasz Żółć",       "Σωκράτης",
                                     "Пётр",         "Ada Lovelace",      "Grace Hopper",
                                     "Édith Piaf",   "Søren Kierkegaard", "Ναταλία",
                                     "Ольга",        "Ümit Öztürk" };
    usher_badge badges[11];
    unsigned char *pdf = NULL;
    size_t len = 0, i;
    char err[256] = "", path[256], text[32768], cmd[512];

    for (i = 0; i < 11; i++)
        badges[i] = (usher_badge){ names[i], "Usher GmbH", i % 2 ? "Speaker" : "Attendee" };
    cr_assert_eq(usher_pdf_badges(badges, 11, &pdf, &len, err, sizeof(err)), USHER_OK, "%s", err);
    save("badges.pdf", pdf, len, path, sizeof(path));
    free(pdf);
    text_of(path, text, sizeof(text));
    for (i = 0; i < 11; i++)
        cr_assert(strstr(text, names[i]) != NULL, "%s not in: %s", names[i], text);
    cr_assert_eq(pages_of(path), 2);
    snprintf(cmd, sizeof(cmd), "pdfinfo '%s'", path);
    cr_assert_eq(run(cmd, text, sizeof(text)), 0);
    cr_assert(strstr(text, "595.276 x 841.89 pts (A4)") != NULL, "%s", text);
}

/* Asserts every word pdftotext -bbox finds lies inside the page. */
static void assert_words_inside(const char *path, double width, double height, int min_words)
{
    char cmd[512], *out = malloc(1 << 20), *p;
    int words = 0;

    cr_assert_not_null(out);
    snprintf(cmd, sizeof(cmd), "pdftotext -bbox '%s' - 2>&1", path);
    cr_assert_eq(run(cmd, out, 1 << 20), 0, "%s", out);
    for (p = strstr(out, "<word "); p != NULL; p = strstr(p + 1, "<word ")) {
        double x0, y0, x1, y1;
        cr_assert_eq(sscanf(p, "<word xMin=\"%lf\" yMin=\"%lf\" xMax=\"%lf\" yMax=\"%lf\"", &x0,
                            &y0, &x1, &y1),
                     4, "%.80s", p);
        cr_assert(x0 >= 0 && y0 >= 0 && x1 <= width && y1 <= height, "word off the page: %.200s",
                  p);
        words++;
    }
    cr_assert_geq(words, min_words);
    free(out);
}

Test(pdf, a_300_character_name_stays_on_the_page)
{
    char name[700], path[256], text[16384];
    usher_ticket t = zoe;
    usher_badge b = { name, "Organisation", "Role" };
    unsigned char *pdf = NULL;
    size_t len = 0, i;
    char err[256] = "";

    /* 300 characters, mixing one- and two-byte UTF-8 */
    for (i = 0, name[0] = '\0'; i < 30; i++)
        strcat(name, i % 2 ? "Ångströmxy" : "Wolfeschle");
    t.attendee_name = name;
    render_ticket(&t, USHER_PAGE_A6, "long.pdf", path, sizeof(path));
    text_of(path, text, sizeof(text));
    cr_assert(strstr(text, "WolfeschleÅngström") != NULL, "%s", text);
    cr_assert(strstr(text, zoe.venue) != NULL, "%s", text);
    assert_words_inside(path, 297.638, 419.528, 10);

    cr_assert_eq(usher_pdf_badges(&b, 1, &pdf, &len, err, sizeof(err)), USHER_OK, "%s", err);
    save("longbadge.pdf", pdf, len, path, sizeof(path));
    free(pdf);
    text_of(path, text, sizeof(text));
    cr_assert(strstr(text, "WolfeschleÅngström") != NULL, "%s", text);
    assert_words_inside(path, 595.276, 841.89, 3);
}

Test(pdf, missing_or_bad_fields_are_refused_with_the_field_named)
{
    unsigned char *pdf = NULL;
    size_t len = 0;
    char err[256];
    usher_ticket t = zoe;
    usher_badge b = { NULL, "Org", "Role" };

    t.attendee_name = NULL;
    cr_assert_eq(usher_pdf_ticket(&t, USHER_PAGE_A4, &pdf, &len, err, sizeof(err)),
                 USHER_ERR_INVALID);
    cr_assert_str_eq(err, "attendee_name is missing or empty");
    t = zoe;
    t.ticket_code = "";
    cr_assert_eq(usher_pdf_ticket(&t, USHER_PAGE_A4, &pdf, &len, err, sizeof(err)),
                 USHER_ERR_INVALID);
    cr_assert_str_eq(err, "ticket_code is missing or empty");
    t = zoe;
    t.venue = "bad \xff byte";
    cr_assert_eq(usher_pdf_ticket(&t, USHER_PAGE_A4, &pdf, &len, err, sizeof(err)),
                 USHER_ERR_INVALID);
    cr_assert_str_eq(err, "venue is not valid UTF-8");
    cr_assert_eq(usher_pdf_ticket(&zoe, (usher_page_size)7, &pdf, &len, err, sizeof(err)),
                 USHER_ERR_INVALID);
    cr_assert_eq(usher_pdf_badges(&b, 1, &pdf, &len, err, sizeof(err)), USHER_ERR_INVALID);
    cr_assert_str_eq(err, "badge 0 name is missing or empty");
    cr_assert_eq(usher_pdf_badges(&b, 0, &pdf, &len, err, sizeof(err)), USHER_ERR_INVALID);
    cr_assert_null(pdf);
}

Test(pdf, a_missing_font_is_an_io_error_naming_the_file)
{
    unsigned char *pdf = NULL;
    size_t len = 0;
    char err[512] = "";
    usher_err rc;

    cr_assert_eq(usher_pdf_set_fonts("/nonexistent/Font.ttf", NULL), USHER_OK);
    rc = usher_pdf_ticket(&zoe, USHER_PAGE_A6, &pdf, &len, err, sizeof(err));
    cr_assert_eq(usher_pdf_set_fonts(NULL, NULL), USHER_OK);
    cr_assert_eq(rc, USHER_ERR_IO, "%s", err);
    cr_assert(strstr(err, "/nonexistent/Font.ttf") != NULL, "%s", err);
    cr_assert_null(pdf);
    cr_assert_eq(usher_pdf_ticket(&zoe, USHER_PAGE_A6, &pdf, &len, err, sizeof(err)), USHER_OK,
                 "%s", err);
    free(pdf);
}

Test(pdf, a_file_that_is_no_font_is_invalid_naming_the_file)
{
    unsigned char *pdf = NULL;
    size_t len = 0;
    char err[512] = "", path[256];
    usher_err rc;

    save("not-a-font.ttf", (const unsigned char *)"%PDF-1.4 not a font", 19, path, sizeof(path));
    cr_assert_eq(usher_pdf_set_fonts(NULL, path), USHER_OK);
    rc = usher_pdf_ticket(&zoe, USHER_PAGE_A6, &pdf, &len, err, sizeof(err));
    cr_assert_eq(usher_pdf_set_fonts(NULL, NULL), USHER_OK);
    cr_assert_eq(rc, USHER_ERR_INVALID, "%s", err);
    cr_assert(strstr(err, path) != NULL, "%s", err);
    cr_assert_null(pdf);
}

static int count_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    cr_assert_not_null(d, "%s", path);
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.' || strncmp(e->d_name, ".tmp", 4) == 0;
    closedir(d);
    return n;
}

Test(pdf, docstore_put_is_idempotent_and_named_by_sha256)
{
    usher_docstore_ref a, b;
    char root[128], err[256] = "", path[512], cmd[600], out[256], leaf[256];
    unsigned char *pdf = NULL;
    size_t len = 0;
    struct stat st;

    cr_assert_eq(usher_pdf_ticket(&zoe, USHER_PAGE_A6, &pdf, &len, err, sizeof(err)), USHER_OK);
    snprintf(root, sizeof(root), "%s/docs/store", dir);
    cr_assert_eq(usher_docstore_dir_put(root, pdf, len, &a, err, sizeof(err)), USHER_OK, "%s", err);
    cr_assert_eq(usher_docstore_dir_put(root, pdf, len, &b, err, sizeof(err)), USHER_OK, "%s", err);
    free(pdf);
    cr_assert_str_eq(a.relpath, b.relpath);
    cr_assert_str_eq(a.sha256, b.sha256);
    cr_assert_eq(a.size, len);
    cr_assert_eq(strlen(a.sha256), 64);
    cr_assert_eq(strncmp(a.relpath, a.sha256, 2), 0);
    cr_assert_eq(strncmp(a.relpath + 3, a.sha256 + 2, 2), 0);
    cr_assert_str_eq(a.relpath + 6, a.sha256);

    cr_assert_eq(usher_docstore_path(root, a.sha256, path, sizeof(path)), USHER_OK);
    snprintf(leaf, sizeof(leaf), "%s/%s", root, a.relpath);
    cr_assert_str_eq(path, leaf);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq((size_t)st.st_size, len);
    cr_assert_eq(st.st_mode & 0777, 0644);
    *strrchr(leaf, '/') = '\0';
    cr_assert_eq(count_entries(leaf), 1, "one file, no temporaries, in %s", leaf);

    snprintf(cmd, sizeof(cmd), "sha256sum '%s'", path);
    cr_assert_eq(run(cmd, out, sizeof(out)), 0);
    cr_assert_eq(strncmp(out, a.sha256, 64), 0, "sha256sum says %s, store says %s", out, a.sha256);
}

Test(pdf, docstore_hashes_known_bytes_and_rejects_bad_names)
{
    usher_docstore_ref r;
    char err[256] = "", path[256];

    cr_assert_eq(usher_docstore_dir_put(dir, "abc", 3, &r, err, sizeof(err)), USHER_OK, "%s", err);
    cr_assert_str_eq(r.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    cr_assert_str_eq(r.relpath,
                     "ba/78/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    cr_assert_eq(r.size, 3);
    cr_assert_eq(usher_docstore_path(dir, "BA7816", path, sizeof(path)), USHER_ERR_INVALID);
    cr_assert_eq(usher_docstore_path(dir, "../etc/passwd", path, sizeof(path)), USHER_ERR_INVALID);
    cr_assert_eq(usher_docstore_path(dir, r.sha256, path, 20), USHER_ERR_INVALID);
    cr_assert_eq(usher_docstore_dir_put("/proc/usher-no", "abc", 3, &r, err, sizeof(err)),
                 USHER_ERR_IO);
    cr_assert(strstr(err, "cannot create directory /proc/usher-no") != NULL, "%s", err);
}
