/*
 * Counting the mails the stack's SMTP sink delivered ($USHER_MAILDIR/new),
 * per attendee: a test gives attendee i the address PREFIXi@..., and asks
 * how many mails each one got.
 */
#ifndef USHER_TESTMAIL_H
#define USHER_TESTMAIL_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Fills counts[0..n) with the number of mails whose To: names PREFIXi@
 * for i < n; returns their total.
 */
int testmail_count(const char *prefix, int *counts, int n);

/* testmail_count of the mails whose Subject: header contains subject. */
int testmail_count_subject(const char *prefix, const char *subject, int *counts, int n);

/*
 * The text/plain part, quoted-printable decoded (cut to len), of a mail to
 * PREFIXi@ whose Subject: header contains subject (NULL: any); false when
 * there is none.
 */
bool testmail_text(const char *prefix, int i, const char *subject, char *out, size_t len);

#endif
