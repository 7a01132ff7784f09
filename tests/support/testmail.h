/*
 * Counting the mails the stack's SMTP sink delivered ($USHER_MAILDIR/new),
 * per attendee: a test gives attendee i the address PREFIXi@..., and asks
 * how many mails each one got.
 */
#ifndef USHER_TESTMAIL_H
#define USHER_TESTMAIL_H

/*
 * Fills counts[0..n) with the number of mails whose To: names PREFIXi@
 * for i < n; returns their total.
 */
int testmail_count(const char *prefix, int *counts, int n);

/* testmail_count of the mails whose Subject: header contains subject. */
int testmail_count_subject(const char *prefix, const char *subject, int *counts, int n);

#endif
