/*
 * Handlers for tests and benchmarks: test.noop, test.sleep, test.fail,
 * test.crash and test.hang. They exercise every path of the pool (success,
 * slowness, failure, a dying child, a job past its timeout) with real
 * processes.
 */
#ifndef USHER_TEST_HANDLERS_H
#define USHER_TEST_HANDLERS_H

#include "handler.h"

/* Terminated by an entry whose kind is NULL. */
extern const usher_handler usher_test_handlers[];

#endif
