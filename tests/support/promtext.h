/*
 * A strict reader of the Prometheus text exposition format (0.0.4) for
 * tests: every line must be a comment, a HELP/TYPE line or a sample with a
 * valid name, well-escaped labels and a number; a family's TYPE comes
 * before its samples, once; samples of a family are contiguous and never
 * repeat; a histogram's buckets are cumulative and its +Inf bucket equals
 * its _count.
 */
#ifndef USHER_PROMTEXT_H
#define USHER_PROMTEXT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct promtext promtext;

/* Parses text; NULL with the first problem (and its line) in why. */
promtext *promtext_parse(const char *text, char *why, size_t whylen);
void promtext_free(promtext *p);

/*
 * The value of the sample name{labels}, labels written as they appear
 * between the braces ("" for none), or -1 when there is no such sample.
 */
double promtext_value(const promtext *p, const char *name, const char *labels);

/* The sum of every sample named name whose labels contain needle ("" = all). */
double promtext_sum(const promtext *p, const char *name, const char *needle);

size_t promtext_samples(const promtext *p);

#endif
