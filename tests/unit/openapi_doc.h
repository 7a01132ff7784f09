/*
 * A reader of the paths: block of schemas/openapi.yaml, for
 * tests/unit/test_openapi.c. It is deliberately small and strict: it reads
 * the block line by line, with path keys at indent 2, methods at indent 4
 * and operation keys at indent 6, and refuses a layout it does not
 * understand rather than guess (a YAML library would hide an indentation
 * slip that moves an operation out of its path).
 */
#ifndef USHER_TEST_OPENAPI_DOC_H
#define USHER_TEST_OPENAPI_DOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define OPENAPI_OPS_MAX    128
#define OPENAPI_STATUS_MAX 600

typedef struct openapi_op {
    char path[160];
    char method[8]; /* upper case, as api_route_method() spells it */
    int line;
    bool roles_set; /* x-usher-roles was given */
    unsigned roles; /* API_PUBLIC for [public] */
    bool request_body;
    bool body_json;  /* requestBody content lists application/json */
    bool body_other; /* ... a media type other than JSON: a raw upload */
    bool responses;
    bool security_bearer;   /* security lists "- bearer: []" */
    bool security_optional; /* security lists "- {}": a token may be left out */
    bool status[OPENAPI_STATUS_MAX];
} openapi_op;

typedef struct openapi_doc {
    openapi_op ops[OPENAPI_OPS_MAX];
    size_t nops;
    char error[256]; /* "LINE: reason" of the first line refused, or "" */
} openapi_doc;

/* Reads the paths: block of f into d; -1 with d->error on the first line it refuses. */
int openapi_read(FILE *f, openapi_doc *d);

#endif
