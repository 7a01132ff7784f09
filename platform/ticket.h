/*
 * Signed ticket codes. A code carries its event and registration ids and an
 * HMAC-SHA256 tag (truncated to 80 bits) under a key derived per event from
 * one master secret, so a scanner's code is checked without asking the
 * database: a forged or mistyped code fails its tag. Codes are upper-case
 * base32 (RFC 4648 alphabet, no padding) behind a "U1" version prefix, which
 * QR codes store in their compact alphanumeric mode.
 */
#ifndef USHER_TICKET_H
#define USHER_TICKET_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define USHER_TICKET_KEY_BYTES 32
#define USHER_TICKET_CODE_MAX  64 /* with the NUL; real codes are 30 to 60 characters */

/* Writes the code of (event_id, registration_id) into code. Ids must be positive. */
USHER_MUSTCHECK usher_err usher_ticket_sign(const unsigned char master[USHER_TICKET_KEY_BYTES],
                                            int64_t event_id, int64_t registration_id, char *code,
                                            size_t len);

/*
 * Checks code (case-insensitive; surrounding spaces ignored) and returns its
 * ids. USHER_ERR_INVALID for anything malformed, truncated or forged; the
 * ids are only written for a valid code.
 */
USHER_MUSTCHECK usher_err usher_ticket_verify(const unsigned char master[USHER_TICKET_KEY_BYTES],
                                              const char *code, int64_t *event_id,
                                              int64_t *registration_id);

/* Reads a 64-hex-digit master secret (e.g. from USHER_TICKET_SECRET). */
USHER_MUSTCHECK usher_err usher_ticket_key_from_hex(const char *hex,
                                                    unsigned char key[USHER_TICKET_KEY_BYTES]);

#endif
