/*
 * The document store's one entry: names a document (SHA-256 over its
 * pieces, libsodium) and hands it to the store the configuration chose,
 * the database (docstore_db.c) or a directory (docstore_dir.c). Callers
 * never learn which: a handler renders, puts and records the name; a
 * reader asks for bytes by name.
 */
#include "docstore.h"

#include <sodium.h>
#include <stdio.h>

#include "docstore_db.h"
#include "docstore_dir.h"

bool usher_docstore_name_ok(const char *s)
{
    size_t i;

    if (s == NULL)
        return false;
    for (i = 0; i < USHER_SHA256_HEX_LEN; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return s[i] == '\0';
}

usher_err usher_docstore_path(const char *root, const char *sha_hex, char *buf, size_t len)
{
    int n;

    if (root == NULL || buf == NULL || !usher_docstore_name_ok(sha_hex))
        return USHER_ERR_INVALID;
    n = snprintf(buf, len, "%s/%.2s/%.2s/%s", root, sha_hex, sha_hex + 2, sha_hex);
    if (n < 0 || (size_t)n >= len)
        return USHER_ERR_INVALID;
    return USHER_OK;
}

bool usher_docstore_in_database(const usher_config *cfg)
{
    return cfg->document_store == USHER_DOCUMENTS_DATABASE;
}

static void to_hex(const unsigned char *hash, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < crypto_hash_sha256_BYTES; i++) {
        hex[2 * i] = digits[hash[i] >> 4];
        hex[2 * i + 1] = digits[hash[i] & 0x0f];
    }
    hex[2 * i] = '\0';
}

usher_err usher_docstore_name(const struct iovec *parts, size_t nparts, usher_docstore_ref *out,
                              char *errbuf, size_t errlen)
{
    unsigned char hash[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_state h;

    if (sodium_init() < 0)
        return usher_errbuf(errbuf, errlen, USHER_ERR_SYSTEM, "libsodium failed to initialise");
    crypto_hash_sha256_init(&h);
    out->size = 0;
    for (size_t i = 0; i < nparts; i++) {
        if (parts[i].iov_base == NULL && parts[i].iov_len > 0)
            return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID, "document store: no data");
        crypto_hash_sha256_update(&h, parts[i].iov_base, parts[i].iov_len);
        out->size += parts[i].iov_len;
    }
    crypto_hash_sha256_final(&h, hash);
    to_hex(hash, out->sha256);
    snprintf(out->relpath, sizeof(out->relpath), "%.2s/%.2s/%s", out->sha256, out->sha256 + 2,
             out->sha256);
    return USHER_OK;
}

usher_err usher_docstore_put(const usher_config *cfg, usher_store *st, const struct iovec *parts,
                             size_t nparts, usher_docstore_ref *out, char *errbuf, size_t errlen)
{
    usher_docstore_ref ref;
    usher_err err;

    if (cfg == NULL || (parts == NULL && nparts > 0) || out == NULL)
        return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID,
                            "document store: configuration, data and out are required");
    err = usher_docstore_name(parts, nparts, &ref, errbuf, errlen);
    if (err != USHER_OK)
        return err;
    if (usher_docstore_in_database(cfg))
        err = usher_docstore_db_write(st, &ref, parts, nparts, errbuf, errlen);
    else
        err = usher_docstore_dir_write(cfg->document_dir, &ref, parts, nparts, errbuf, errlen);
    if (err == USHER_OK)
        *out = ref;
    return err;
}

usher_err usher_docstore_put_bytes(const usher_config *cfg, usher_store *st, const void *data,
                                   size_t len, usher_docstore_ref *out, char *errbuf, size_t errlen)
{
    struct iovec part = { .iov_base = (void *)data, .iov_len = len };

    return usher_docstore_put(cfg, st, &part, 1, out, errbuf, errlen);
}

usher_err usher_docstore_read(const usher_config *cfg, usher_store *st, const char *sha256,
                              uint64_t offset, size_t len, void *buf, char *errbuf, size_t errlen)
{
    if (!usher_docstore_name_ok(sha256))
        return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID, "not a document name: %.80s",
                            sha256 != NULL ? sha256 : "(null)");
    if (usher_docstore_in_database(cfg))
        return usher_docstore_db_read(st, sha256, offset, len, buf, errbuf, errlen);
    return usher_docstore_dir_read(cfg->document_dir, sha256, offset, len, buf, errbuf, errlen);
}
