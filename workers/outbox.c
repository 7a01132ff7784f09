/*
 * Two growable arrays. Completed jobs need only their id; failed ones keep
 * the whole job, because the retry policy needs its kind and attempt.
 */
#include "outbox.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"

static bool grow(void **array, size_t *cap, size_t need, size_t elem)
{
    size_t n = *cap ? *cap : 64;
    void *p;

    if (need <= *cap)
        return true;
    while (n < need)
        n *= 2;
    p = usher_realloc(*array, n * elem);
    *array = p;
    *cap = n;
    return true;
}

bool usher_outbox_add(usher_outbox *o, usher_job *job, const usher_handler_result *r)
{
    if (r->outcome == USHER_OUTCOME_OK) {
        bool ok = grow((void **)&o->done, &o->done_cap, o->ndone + 1, sizeof(*o->done));

        if (ok)
            o->done[o->ndone++] = job->id;
        usher_jobs_free(job, 1);
        return ok;
    }
    if (!grow((void **)&o->failed, &o->failed_cap, o->nfailed + 1, sizeof(*o->failed))) {
        usher_jobs_free(job, 1);
        return false;
    }
    o->failed[o->nfailed].job = job;
    o->failed[o->nfailed].result = *r;
    o->nfailed++;
    return true;
}

bool usher_outbox_empty(const usher_outbox *o)
{
    return o->ndone == 0 && o->nfailed == 0;
}

bool usher_outbox_merge(usher_outbox *dst, usher_outbox *src)
{
    if (!grow((void **)&dst->done, &dst->done_cap, dst->ndone + src->ndone, sizeof(*dst->done)) ||
        !grow((void **)&dst->failed, &dst->failed_cap, dst->nfailed + src->nfailed,
              sizeof(*dst->failed)))
        return false;
    if (src->ndone > 0)
        memcpy(dst->done + dst->ndone, src->done, src->ndone * sizeof(*src->done));
    if (src->nfailed > 0)
        memcpy(dst->failed + dst->nfailed, src->failed, src->nfailed * sizeof(*src->failed));
    dst->ndone += src->ndone;
    dst->nfailed += src->nfailed;
    src->ndone = 0;
    src->nfailed = 0;
    return true;
}

void usher_outbox_clear(usher_outbox *o)
{
    for (size_t i = 0; i < o->nfailed; i++)
        usher_jobs_free(o->failed[i].job, 1);
    o->ndone = 0;
    o->nfailed = 0;
}

void usher_outbox_release(usher_outbox *o)
{
    usher_outbox_clear(o);
    free(o->done);
    free(o->failed);
    *o = (usher_outbox){ 0 };
}
