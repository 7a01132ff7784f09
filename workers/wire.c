/*
 * Frame layouts (after the 4-byte body length):
 *   job:    'J' id:i64 attempt:i32 max_attempts:i32 timeout_ms:i32 priority:i32
 *           slot:u32 token:u64 trace:4 x i64
 *           kind_len:u16 request_id_len:u8 kind request_id payload...
 *   result: 'R' id:i64 outcome:i32 delay_ms:i64 run_us:i64 error...
 */
#include "wire.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#define TICKET      (4 + 8 + 4 * 8)
#define KLEN_AT     (1 + 8 + 4 + 4 + 4 + 4 + TICKET)
#define JOB_HEAD    (KLEN_AT + 2 + 1)
#define RESULT_HEAD (1 + 8 + 4 + 8 + 8)

static void put(usher_buf *out, const void *p, size_t n)
{
    usher_buf_append(out, p, n);
}

static void put_length(usher_buf *out, size_t body)
{
    uint32_t len = (uint32_t)body;

    put(out, &len, sizeof(len));
}

void usher_wire_put_job(usher_buf *out, const usher_job *job, const usher_wire_ticket *t)
{
    size_t kind_len = strlen(job->kind), payload_len = strlen(job->payload);
    size_t rid_len = strnlen(job->request_id, USHER_REQUEST_ID_MAX);
    int32_t ints[4] = { job->attempt, job->max_attempts, job->timeout_ms, job->priority };
    uint16_t klen = (uint16_t)kind_len;
    uint8_t rlen = (uint8_t)rid_len;

    put_length(out, JOB_HEAD + kind_len + rid_len + payload_len);
    put(out, "J", 1);
    put(out, &job->id, sizeof(job->id));
    put(out, ints, sizeof(ints));
    put(out, &t->slot, sizeof(t->slot));
    put(out, &t->token, sizeof(t->token));
    put(out, &t->trace, sizeof(t->trace));
    put(out, &klen, sizeof(klen));
    put(out, &rlen, sizeof(rlen));
    put(out, job->kind, kind_len);
    put(out, job->request_id, rid_len);
    put(out, job->payload, payload_len);
}

void usher_wire_put_result(usher_buf *out, int64_t id, const usher_handler_result *r,
                           int64_t run_us)
{
    size_t error_len = strnlen(r->error, sizeof(r->error));
    int32_t outcome = (int32_t)r->outcome;

    put_length(out, RESULT_HEAD + error_len);
    put(out, "R", 1);
    put(out, &id, sizeof(id));
    put(out, &outcome, sizeof(outcome));
    put(out, &r->delay_ms, sizeof(r->delay_ms));
    put(out, &run_us, sizeof(run_us));
    put(out, r->error, error_len);
}

int usher_wire_get_job(const unsigned char *body, size_t len, usher_job *job, usher_wire_ticket *t)
{
    int32_t ints[4];
    uint16_t klen;
    uint8_t rlen;
    size_t head;

    if (len < JOB_HEAD || body[0] != 'J')
        return -1;
    memcpy(&job->id, body + 1, 8);
    memcpy(ints, body + 9, sizeof(ints));
    memcpy(&t->slot, body + 25, 4);
    memcpy(&t->token, body + 29, 8);
    memcpy(&t->trace, body + 37, sizeof(t->trace));
    memcpy(&klen, body + KLEN_AT, 2);
    rlen = body[KLEN_AT + 2];
    head = JOB_HEAD + (size_t)klen + rlen;
    if (klen >= sizeof(job->kind) || rlen > USHER_REQUEST_ID_MAX || head > len)
        return -1;
    job->attempt = ints[0];
    job->max_attempts = ints[1];
    job->timeout_ms = ints[2];
    job->priority = ints[3];
    memcpy(job->kind, body + JOB_HEAD, klen);
    job->kind[klen] = '\0';
    memcpy(job->request_id, body + JOB_HEAD + klen, rlen);
    job->request_id[rlen] = '\0';
    job->payload = usher_malloc(len - head + 1);
    memcpy(job->payload, body + head, len - head);
    job->payload[len - head] = '\0';
    return 0;
}

int usher_wire_get_result(const unsigned char *body, size_t len, int64_t *id,
                          usher_handler_result *r, int64_t *run_us)
{
    int32_t outcome;
    size_t error_len;

    if (len < RESULT_HEAD || body[0] != 'R')
        return -1;
    memcpy(id, body + 1, 8);
    memcpy(&outcome, body + 9, 4);
    memcpy(&r->delay_ms, body + 13, 8);
    memcpy(run_us, body + 21, 8);
    if (outcome < USHER_OUTCOME_OK || outcome > USHER_OUTCOME_SNOOZE)
        return -1;
    r->outcome = (usher_outcome)outcome;
    error_len = len - RESULT_HEAD;
    if (error_len >= sizeof(r->error))
        error_len = sizeof(r->error) - 1;
    memcpy(r->error, body + RESULT_HEAD, error_len);
    r->error[error_len] = '\0';
    return 0;
}
