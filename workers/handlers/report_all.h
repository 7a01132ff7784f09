/*
 * The periodic form of the report jobs: {"scope": "all"} (conf/usher.conf,
 * [periodic.nightly-checkins]) asks for the report of every event that is
 * on or ended within the last day, one report and job each.
 */
#ifndef USHER_REPORT_ALL_H
#define USHER_REPORT_ALL_H

#include "handler.h"

/*
 * Creates a CSV report of kind ("attendees" or "checkins") for each
 * current event, in one transaction. Retry-safe: an event that already
 * has a report requested by this job gets no second one. r set on failure.
 */
void usher_report_all(usher_handler_ctx *ctx, const usher_job *job, const char *kind,
                      usher_handler_result *r);

#endif
