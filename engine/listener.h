/*
 * A LISTEN connection for claimers that block: it listens on the channels
 * of the queues it serves and waits for a NOTIFY or a timeout. (The worker
 * supervisor drives its connection from its event loop instead.)
 */
#ifndef USHER_LISTENER_H
#define USHER_LISTENER_H

#include <stddef.h>

#include "config.h"
#include "error.h"

typedef struct usher_listener usher_listener;

/* Opens its own connection to cfg->database_url and LISTENs on each queue's channel. */
USHER_MUSTCHECK usher_err usher_listener_open(const usher_config *cfg, const char *const *queues,
                                              size_t n, usher_listener **out, char *errbuf,
                                              size_t errlen);

void usher_listener_free(usher_listener *l);

/*
 * Waits up to timeout_ms for a notification on any channel. USHER_OK when
 * one (or more; all pending ones are consumed) arrived, USHER_ERR_TIMEOUT
 * when none did, USHER_ERR_DB when the connection broke.
 */
USHER_MUSTCHECK usher_err usher_listener_wait(usher_listener *l, int timeout_ms);

#endif
