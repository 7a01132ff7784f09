/*
 * SIGHUP in usher-api: the reloadable keys of the file take effect in
 * every loop thread without a restart (engine/config_reload.h says which
 * and logs each change).
 */
#ifndef USHER_API_RELOAD_H
#define USHER_API_RELOAD_H

#include "request.h"

/* The configurations reloads published, kept until exit. */
typedef struct api_reloaded api_reloaded;

/*
 * Re-reads srv->cfg's file; when a reloadable key changed, publishes the
 * merged configuration (and the webhook template it implies) into srv and
 * pushes it onto *published. Tells systemd RELOADING=1 before and READY=1
 * after. Call from the main thread only.
 */
void api_reload(api_server *srv, api_reloaded **published);

/* Frees what reloads published, once no thread reads srv any more. Accepts NULL. */
void api_reloaded_free(api_reloaded *published);

#endif
