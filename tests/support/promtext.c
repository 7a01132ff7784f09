#include "promtext.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct sample {
    char *name, *labels, *family;
    double value;
} sample;

typedef struct family {
    char *name, *type;
    bool seen_samples, closed;
} family;

struct promtext {
    sample *samples;
    size_t n, cap;
    family *families;
    size_t nf, capf;
};

static bool fail(char *why, size_t len, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool fail(char *why, size_t len, int line, const char *fmt, ...)
{
    va_list ap;
    int off = snprintf(why, len, "line %d: ", line);

    va_start(ap, fmt);
    if (off > 0 && (size_t)off < len)
        vsnprintf(why + off, len - (size_t)off, fmt, ap);
    va_end(ap);
    return false;
}

static bool name_char(char c, bool first, bool colon)
{
    return isalpha((unsigned char)c) || c == '_' || (colon && c == ':') ||
           (!first && isdigit((unsigned char)c));
}

static size_t name_len(const char *s, bool colon)
{
    size_t i = 0;

    while (name_char(s[i], i == 0, colon))
        i++;
    return i;
}

static family *find_family(promtext *p, const char *name)
{
    for (size_t i = 0; i < p->nf; i++) {
        if (strcmp(p->families[i].name, name) == 0)
            return &p->families[i];
    }
    return NULL;
}

/* The family a sample belongs to: a histogram's _bucket/_sum/_count map to it. */
static family *family_of(promtext *p, const char *name)
{
    static const char *const suffixes[] = { "_bucket", "_sum", "_count" };
    family *f = find_family(p, name);
    char base[256];

    if (f != NULL)
        return f;
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(name), k = strlen(suffixes[i]);

        if (n > k && n - k < sizeof(base) && strcmp(name + n - k, suffixes[i]) == 0) {
            memcpy(base, name, n - k);
            base[n - k] = '\0';
            f = find_family(p, base);
            if (f != NULL && strcmp(f->type, "histogram") == 0)
                return f;
        }
    }
    return NULL;
}

static bool add_family(promtext *p, const char *name, const char *type)
{
    if (p->nf == p->capf) {
        size_t cap = p->capf ? p->capf * 2 : 16;
        family *more = realloc(p->families, cap * sizeof(*more));

        if (more == NULL)
            return false;
        p->families = more;
        p->capf = cap;
    }
    p->families[p->nf++] = (family){ strdup(name), strdup(type), false, false };
    return true;
}

/* Checks the label list between braces; false with why on a bad one. */
static bool check_labels(const char *s, size_t len, char *why, size_t whylen, int line)
{
    size_t i = 0;

    while (i < len) {
        size_t n = name_len(s + i, false);

        if (n == 0)
            return fail(why, whylen, line, "bad label name at '%.*s'", (int)(len - i), s + i);
        i += n;
        if (i + 1 >= len || s[i] != '=' || s[i + 1] != '"')
            return fail(why, whylen, line, "label without =\"value\"");
        for (i += 2; i < len && s[i] != '"'; i++) {
            if (s[i] == '\\') {
                if (i + 1 >= len || (s[i + 1] != '\\' && s[i + 1] != '"' && s[i + 1] != 'n'))
                    return fail(why, whylen, line, "bad escape in a label value");
                i++;
            } else if (s[i] == '\n') {
                return fail(why, whylen, line, "raw newline in a label value");
            }
        }
        if (i >= len)
            return fail(why, whylen, line, "unterminated label value");
        i++;
        if (i < len && s[i] != ',')
            return fail(why, whylen, line, "labels must be separated by commas");
        if (i < len)
            i++;
    }
    return true;
}

static bool parse_value(const char *s, double *v)
{
    char *end;

    if (strcmp(s, "+Inf") == 0 || strcmp(s, "Inf") == 0) {
        *v = INFINITY;
        return true;
    }
    if (strcmp(s, "-Inf") == 0) {
        *v = -INFINITY;
        return true;
    }
    if (strcmp(s, "NaN") == 0) {
        *v = NAN;
        return true;
    }
    *v = strtod(s, &end);
    return end != s && (*end == '\0' || *end == ' ');
}

static bool parse_comment(promtext *p, char *line, int lineno, char *why, size_t whylen)
{
    char kind[8], name[256], rest[64];

    if (strncmp(line, "# HELP ", 7) != 0 && strncmp(line, "# TYPE ", 7) != 0)
        return true; /* an ordinary comment */
    if (sscanf(line, "# %7s %255s %63s", kind, name, rest) < 2)
        return fail(why, whylen, lineno, "malformed %s line", kind);
    if (name_len(name, true) != strlen(name))
        return fail(why, whylen, lineno, "bad metric name '%s'", name);
    if (strcmp(kind, "TYPE") != 0)
        return true;
    if (strcmp(rest, "counter") != 0 && strcmp(rest, "gauge") != 0 &&
        strcmp(rest, "histogram") != 0 && strcmp(rest, "summary") != 0 &&
        strcmp(rest, "untyped") != 0)
        return fail(why, whylen, lineno, "unknown type '%s'", rest);
    if (find_family(p, name) != NULL)
        return fail(why, whylen, lineno, "second TYPE for %s", name);
    return add_family(p, name, rest) || fail(why, whylen, lineno, "out of memory");
}

static bool parse_sample(promtext *p, char *line, int lineno, char *why, size_t whylen,
                         size_t *current)
{
    size_t n = name_len(line, true);
    static char none[] = "";
    char *labels = none, *value, *close;
    family *f;
    sample *s;

    if (n == 0)
        return fail(why, whylen, lineno, "not a sample: '%s'", line);
    if (line[n] == '{') {
        close = strrchr(line + n, '}');
        if (close == NULL)
            return fail(why, whylen, lineno, "unterminated labels");
        *close = '\0';
        labels = line + n + 1;
        if (!check_labels(labels, strlen(labels), why, whylen, lineno))
            return false;
        value = close + 1;
    } else {
        value = line + n;
    }
    if (*value != ' ')
        return fail(why, whylen, lineno, "no space before the value");
    line[n] = '\0';
    f = family_of(p, line);
    if (f == NULL)
        return fail(why, whylen, lineno, "sample %s before any TYPE of its family", line);
    /* current is an index (families move when a TYPE line grows the array): nf = none. */
    if (f->closed || (*current < p->nf && &p->families[*current] != f && f->seen_samples))
        return fail(why, whylen, lineno, "samples of %s are not contiguous", f->name);
    if (*current < p->nf && &p->families[*current] != f)
        p->families[*current].closed = true;
    *current = (size_t)(f - p->families);
    f->seen_samples = true;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        sample *more = realloc(p->samples, cap * sizeof(*more));

        if (more == NULL)
            return fail(why, whylen, lineno, "out of memory");
        p->samples = more;
        p->cap = cap;
    }
    s = &p->samples[p->n];
    if (!parse_value(value + 1, &s->value))
        return fail(why, whylen, lineno, "bad value '%s'", value + 1);
    if (promtext_value(p, line, labels) != -1)
        return fail(why, whylen, lineno, "duplicate sample %s{%s}", line, labels);
    s->name = strdup(line);
    s->labels = strdup(labels);
    s->family = f->name;
    p->n++;
    return true;
}

/* Per histogram label set: buckets cumulative, +Inf == _count. */
static bool check_histograms(const promtext *p, char *why, size_t whylen)
{
    for (size_t i = 0; i < p->n; i++) {
        const sample *c = &p->samples[i];
        size_t len = strlen(c->name);
        double last = -1;
        bool inf = false;
        char bucket[300];

        if (len < 7 || strcmp(c->name + len - 6, "_count") != 0)
            continue;
        snprintf(bucket, sizeof(bucket), "%.*s_bucket", (int)(len - 6), c->name);
        for (size_t j = 0; j < p->n; j++) {
            const sample *b = &p->samples[j];
            const char *le = strstr(b->labels, "le=\"");
            size_t prefix = le != NULL ? (size_t)(le - b->labels) : 0;

            if (strcmp(b->name, bucket) != 0 || le == NULL)
                continue;
            /* Same label set apart from le (le is last, after a comma when others exist). */
            if (!(strlen(c->labels) == (prefix ? prefix - 1 : 0) &&
                  strncmp(b->labels, c->labels, prefix ? prefix - 1 : 0) == 0))
                continue;
            if (b->value < last)
                return fail(why, whylen, 0, "%s{%s} is below the bucket before it", b->name,
                            b->labels);
            last = b->value;
            if (strncmp(le, "le=\"+Inf\"", 9) == 0) {
                inf = true;
                if (b->value != c->value)
                    return fail(why, whylen, 0, "%s{%s}: +Inf bucket %g != count %g", b->name,
                                b->labels, b->value, c->value);
            }
        }
        if (!inf)
            return fail(why, whylen, 0, "%s{%s} has no +Inf bucket", c->name, c->labels);
    }
    return true;
}

promtext *promtext_parse(const char *text, char *why, size_t whylen)
{
    promtext *p = calloc(1, sizeof(*p));
    char *copy = strdup(text), *save = NULL, *line;
    size_t current = SIZE_MAX;
    int lineno = 0;
    bool ok = p != NULL && copy != NULL;

    if (!ok)
        snprintf(why, whylen, "out of memory");
    for (line = ok ? strtok_r(copy, "\n", &save) : NULL; ok && line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (line[0] == '\0')
            continue;
        ok = line[0] == '#' ? parse_comment(p, line, lineno, why, whylen)
                            : parse_sample(p, line, lineno, why, whylen, &current);
    }
    if (ok && text[0] != '\0' && text[strlen(text) - 1] != '\n')
        ok = fail(why, whylen, lineno, "the text does not end with a newline");
    if (ok)
        ok = check_histograms(p, why, whylen);
    free(copy);
    if (!ok) {
        promtext_free(p);
        return NULL;
    }
    return p;
}

void promtext_free(promtext *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->samples[i].name);
        free(p->samples[i].labels);
    }
    for (size_t i = 0; i < p->nf; i++) {
        free(p->families[i].name);
        free(p->families[i].type);
    }
    free(p->samples);
    free(p->families);
    free(p);
}

double promtext_value(const promtext *p, const char *name, const char *labels)
{
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->samples[i].name, name) == 0 && strcmp(p->samples[i].labels, labels) == 0)
            return p->samples[i].value;
    }
    return -1;
}

double promtext_sum(const promtext *p, const char *name, const char *needle)
{
    double sum = 0;

    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->samples[i].name, name) == 0 && strstr(p->samples[i].labels, needle) != NULL)
            sum += p->samples[i].value;
    }
    return sum;
}

size_t promtext_samples(const promtext *p)
{
    return p->n;
}
