/*
 * Building an email as bytes for SMTP DATA.
 *
 * Headers: From, To, Subject, Date, Message-ID, MIME-Version and the
 * top-level Content-Type. Every value the caller supplies is checked for
 * CR and LF first, so no value can end a header line and start another
 * (header injection). Non-ASCII display names and subjects become RFC 2047
 * encoded-words (UTF-8, base64), folded so no line exceeds 78 characters.
 *
 * Body: multipart/mixed { multipart/alternative { text/plain, text/html },
 * attachments... }. Text parts are quoted-printable, attachments base64 in
 * 76-character lines, every line ends in CRLF.
 *
 * Boundaries: "=_usher_" + 32 hex digits (BLAKE2b of the Message-ID) + a
 * suffix per level, so the same message always has the same boundaries. A
 * boundary line "--=_..." can never appear inside an encoded part: base64
 * uses only [A-Za-z0-9+/=] and '=' only as trailing padding, so "=_" is
 * impossible there; quoted-printable writes '=' only as "=XX" with two hex
 * digits or as "=" CRLF (a soft break), and '_' is not a hex digit. Our own
 * part headers never start with "--".
 */
#include "mail_message.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"

#define CRLF               "\r\n"
#define ENCODED_WORD_BYTES 36 /* input bytes per encoded-word: 48 base64 chars */
#define QP_LINE_MAX        76 /* including the "=" of a soft break */
#define B64_LINE           76
#define SUBJECT_RAW_MAX    900 /* longer ASCII subjects are encoded (and so folded) */

static int printable_ascii(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    }
    return 1;
}

/* local@domain, printable ASCII, no spaces or characters special in a header. */
static int valid_addr(const char *a)
{
    const char *at;

    if (a == NULL || *a == '\0' || strlen(a) > 254 || !printable_ascii(a))
        return 0;
    if (strpbrk(a, " <>()[],;:\\\"") != NULL)
        return 0;
    at = strchr(a, '@');
    return at != NULL && at != a && at[1] != '\0' && strchr(at + 1, '@') == NULL;
}

static int valid_message_id(const char *id)
{
    size_t n;

    if (id == NULL || !printable_ascii(id) || (n = strlen(id)) < 5 || n > 250)
        return 0;
    if (id[0] != '<' || id[n - 1] != '>' || strchr(id, '@') == NULL)
        return 0;
    for (size_t i = 1; i + 1 < n; i++) {
        if (strchr(" <>()[],;:\\\"", id[i]) != NULL)
            return 0;
    }
    return 1;
}

static int token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("!#$&-^_.+", c) != NULL;
}

/* type/subtype, both RFC 2045 tokens. */
static int valid_content_type(const char *t)
{
    const char *slash = t != NULL ? strchr(t, '/') : NULL;

    if (slash == NULL || slash == t || slash[1] == '\0' || strlen(t) > 127)
        return 0;
    for (const char *p = t; *p != '\0'; p++) {
        if (p != slash && !token_char(*p))
            return 0;
    }
    return 1;
}

static int has_crlf(const char *s)
{
    return s != NULL && strpbrk(s, "\r\n") != NULL;
}

usher_err usher_mail_message_id(char *buf, size_t len, int64_t job_id, const char *domain)
{
    int n;

    if (buf == NULL || len == 0 || domain == NULL || *domain == '\0')
        return USHER_ERR_INVALID;
    buf[0] = '\0';
    n = snprintf(buf, len, "<usher-job-%" PRId64 "@%s>", job_id, domain);
    if (n < 0 || (size_t)n >= len || strchr(domain, '@') != NULL || !valid_message_id(buf)) {
        buf[0] = '\0';
        return USHER_ERR_INVALID;
    }
    return USHER_OK;
}

/* Bytes in the UTF-8 sequence led by c (1 for a stray byte). */
static size_t utf8_len(unsigned char c)
{
    if ((c & 0xe0) == 0xc0)
        return 2;
    if ((c & 0xf0) == 0xe0)
        return 3;
    if ((c & 0xf8) == 0xf0)
        return 4;
    return 1;
}

/* RFC 2047 encoded-words for s, never splitting a UTF-8 character, folded. */
static void append_encoded_words(usher_buf *b, const char *s)
{
    size_t n = strlen(s), pos = 0, chunk, c;
    char b64[sodium_base64_ENCODED_LEN(ENCODED_WORD_BYTES + 4, sodium_base64_VARIANT_ORIGINAL)];

    while (pos < n) {
        chunk = 0;
        while (pos + chunk < n) {
            c = utf8_len((unsigned char)s[pos + chunk]);
            if (pos + chunk + c > n)
                c = n - pos - chunk;
            if (chunk > 0 && chunk + c > ENCODED_WORD_BYTES)
                break;
            chunk += c;
        }
        sodium_bin2base64(b64, sizeof b64, (const unsigned char *)s + pos, chunk,
                          sodium_base64_VARIANT_ORIGINAL);
        usher_buf_appendf(b, "%s=?UTF-8?B?%s?=", pos > 0 ? CRLF " " : "", b64);
        pos += chunk;
    }
}

/* A display name: a quoted-string when printable ASCII, else encoded-words. */
static void append_phrase(usher_buf *b, const char *name)
{
    if (!printable_ascii(name) || strstr(name, "=?") != NULL) {
        append_encoded_words(b, name);
        return;
    }
    usher_buf_append(b, "\"", 1);
    for (const char *p = name; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            usher_buf_append(b, "\\", 1);
        usher_buf_append(b, p, 1);
    }
    usher_buf_append(b, "\"", 1);
}

static void append_mailbox(usher_buf *b, const char *field, const char *name, const char *addr)
{
    usher_buf_appendf(b, "%s: ", field);
    if (name != NULL && *name != '\0') {
        append_phrase(b, name);
        usher_buf_appendf(b, " <%s>" CRLF, addr);
    } else {
        usher_buf_appendf(b, "%s" CRLF, addr);
    }
}

static void append_subject(usher_buf *b, const char *subject)
{
    usher_buf_append(b, "Subject: ", 9);
    if (printable_ascii(subject) && strstr(subject, "=?") == NULL &&
        strlen(subject) <= SUBJECT_RAW_MAX)
        usher_buf_append(b, subject, strlen(subject));
    else
        append_encoded_words(b, subject);
    usher_buf_append(b, CRLF, 2);
}

/* RFC 5322 date in UTC, independent of the locale. */
static void append_date(usher_buf *b, time_t t)
{
    static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL) {
        b->failed = true;
        return;
    }
    usher_buf_appendf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000" CRLF, days[tm.tm_wday],
                      tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                      tm.tm_sec);
}

/* Appends a QP token, breaking the line softly first when it would not fit. */
static void qp_put(usher_buf *b, size_t *col, const char *tok, size_t n)
{
    if (*col + n > QP_LINE_MAX - 1) {
        usher_buf_append(b, "=" CRLF, 3);
        *col = 0;
    }
    usher_buf_append(b, tok, n);
    *col += n;
}

/*
 * Quoted-printable; LF and CRLF in text both become CRLF hard breaks. No
 * CRLF is added at the end: the one before the next boundary belongs to it.
 */
static void append_qp(usher_buf *b, const char *text)
{
    size_t col = 0;
    char enc[4];

    for (const char *p = text; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        int at_eol = p[1] == '\0' || p[1] == '\n' || (p[1] == '\r' && p[2] == '\n');

        if (c == '\r' && p[1] == '\n')
            continue;
        if (c == '\n') {
            usher_buf_append(b, CRLF, 2);
            col = 0;
        } else if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_eol)) {
            qp_put(b, &col, p, 1);
        } else {
            snprintf(enc, sizeof enc, "=%02X", c);
            qp_put(b, &col, enc, 3);
        }
    }
}

/* Base64 in lines of 76 characters, each ended by CRLF. */
static USHER_MUSTCHECK usher_err append_base64(usher_buf *b, const unsigned char *data, size_t len)
{
    size_t enc_len = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    char *enc = usher_malloc(enc_len);
    size_t n;

    sodium_bin2base64(enc, enc_len, data, len, sodium_base64_VARIANT_ORIGINAL);
    n = strlen(enc);
    for (size_t i = 0; i < n; i += B64_LINE) {
        usher_buf_append(b, enc + i, n - i < B64_LINE ? n - i : B64_LINE);
        usher_buf_append(b, CRLF, 2);
    }
    free(enc);
    return USHER_OK;
}

/* name="x" when it can be quoted as is; else RFC 2231 name*=UTF-8''%XX. */
static void append_param(usher_buf *b, const char *param, const char *value)
{
    if (printable_ascii(value) && strpbrk(value, "\"\\") == NULL) {
        usher_buf_appendf(b, ";" CRLF " %s=\"%s\"", param, value);
        return;
    }
    usher_buf_appendf(b, ";" CRLF " %s*=UTF-8''", param);
    for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
        if (*p < 0x80 && token_char((char)*p) && *p != '%')
            usher_buf_append(b, (const char *)p, 1);
        else
            usher_buf_appendf(b, "%%%02X", *p);
    }
}

static USHER_MUSTCHECK usher_err validate(const usher_mail_message *m, char *errbuf, size_t errlen)
{
    const char *headers[] = { m->from_name, m->from_addr, m->to_name,
                              m->to_addr,   m->subject,   m->message_id };
    const char *names[] = {
        "from_name", "from_addr", "to_name", "to_addr", "subject", "message_id"
    };

    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        if (has_crlf(headers[i]))
            return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID, "%s contains CR or LF",
                                names[i]);
    }
    if (!valid_addr(m->from_addr))
        return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID, "invalid from address");
    if (!valid_addr(m->to_addr))
        return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID, "invalid to address");
    if (m->subject == NULL || m->text == NULL)
        return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID, "subject and text are required");
    if (!valid_message_id(m->message_id))
        return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID,
                            "invalid Message-ID (want <id@domain>)");
    if (m->attachment_count > 0 && m->attachments == NULL)
        return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID, "attachments missing");
    for (size_t i = 0; i < m->attachment_count; i++) {
        const usher_mail_attachment *a = &m->attachments[i];

        if (a->filename == NULL || *a->filename == '\0' || has_crlf(a->filename) ||
            strlen(a->filename) > 200)
            return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID,
                                "attachment %zu: filename empty, too long or contains CR or LF", i);
        if (!valid_content_type(a->content_type))
            return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID,
                                "attachment %zu: invalid content type", i);
        if (a->data == NULL && a->len > 0)
            return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID, "attachment %zu: no data", i);
    }
    return USHER_OK;
}

/* "=_usher_<32 hex of BLAKE2b(message_id)>": the same id, the same boundary. */
static USHER_MUSTCHECK usher_err derive_boundary(const char *message_id, char out[64])
{
    unsigned char hash[16];
    char hex[2 * sizeof(hash) + 1];

    if (crypto_generichash(hash, sizeof hash, (const unsigned char *)message_id, strlen(message_id),
                           NULL, 0) != 0)
        return USHER_ERR_INVALID;
    sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
    snprintf(out, 64, "=_usher_%s", hex);
    return USHER_OK;
}

static void append_headers(usher_buf *b, const usher_mail_message *m, const char *boundary)
{
    append_mailbox(b, "From", m->from_name, m->from_addr);
    append_mailbox(b, "To", m->to_name, m->to_addr);
    append_subject(b, m->subject);
    append_date(b, m->date);
    usher_buf_appendf(b, "Message-ID: %s" CRLF, m->message_id);
    usher_buf_append(b, "MIME-Version: 1.0" CRLF, 19);
    usher_buf_appendf(b, "Content-Type: multipart/mixed;" CRLF " boundary=\"%s_m\"" CRLF CRLF,
                      boundary);
    usher_buf_append(b, "This is a multi-part message in MIME format." CRLF, 46);
}

static void append_text_part(usher_buf *b, const char *boundary, const char *subtype,
                             const char *text)
{
    usher_buf_appendf(b,
                      CRLF "--%s_a" CRLF "Content-Type: text/%s; charset=UTF-8" CRLF
                           "Content-Transfer-Encoding: quoted-printable" CRLF CRLF,
                      boundary, subtype);
    append_qp(b, text);
}

static USHER_MUSTCHECK usher_err append_attachment(usher_buf *b, const char *boundary,
                                                   const usher_mail_attachment *a)
{
    usher_buf_appendf(b, CRLF "--%s_m" CRLF "Content-Type: %s", boundary, a->content_type);
    append_param(b, "name", a->filename);
    usher_buf_append(b, CRLF "Content-Disposition: attachment", 33);
    append_param(b, "filename", a->filename);
    usher_buf_append(b, CRLF "Content-Transfer-Encoding: base64" CRLF CRLF, 39);
    return append_base64(b, a->data != NULL ? a->data : (const unsigned char *)"", a->len);
}

static USHER_MUSTCHECK usher_err append_body(usher_buf *b, const usher_mail_message *m,
                                             const char *boundary)
{
    usher_err err;

    usher_buf_appendf(
        b, CRLF "--%s_m" CRLF "Content-Type: multipart/alternative;" CRLF " boundary=\"%s_a\"" CRLF,
        boundary, boundary);
    append_text_part(b, boundary, "plain", m->text);
    if (m->html != NULL)
        append_text_part(b, boundary, "html", m->html);
    usher_buf_appendf(b, CRLF "--%s_a--" CRLF, boundary);
    for (size_t i = 0; i < m->attachment_count; i++) {
        if ((err = append_attachment(b, boundary, &m->attachments[i])) != USHER_OK)
            return err;
    }
    usher_buf_appendf(b, CRLF "--%s_m--" CRLF, boundary);
    return USHER_OK;
}

usher_err usher_mail_message_build(const usher_mail_message *m, char **out, size_t *out_len,
                                   char *errbuf, size_t errlen)
{
    usher_buf b = { 0 };
    char boundary[64];
    usher_err err;

    *out = NULL;
    *out_len = 0;
    if (sodium_init() < 0)
        return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID, "libsodium failed to initialise");
    if ((err = validate(m, errbuf, errlen)) != USHER_OK)
        return err;
    if ((err = derive_boundary(m->message_id, boundary)) != USHER_OK)
        return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID,
                            "could not derive the MIME boundary");
    append_headers(&b, m, boundary);
    err = append_body(&b, m, boundary);
    if (err == USHER_OK && usher_buf_failed(&b))
        err = USHER_ERR_NOMEM;
    if (err != USHER_OK) {
        usher_buf_release(&b);
        if (errbuf != NULL && errlen > 0)
            snprintf(errbuf, errlen, "out of memory building the message");
        return err;
    }
    *out = b.data;
    *out_len = b.len;
    return USHER_OK;
}
