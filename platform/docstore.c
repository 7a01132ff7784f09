/*
 * Content-addressed document store. A document's name is the SHA-256 of its
 * bytes (libsodium), fanned out over two directory levels so no directory
 * grows past 65,536 entries per level: root/ab/cd/abcd...
 *
 * Writes go to a mkstemp file beside the target, are fsynced and renamed
 * into place, and the directory is fsynced so the rename survives a crash.
 * Because the name is the content, two writers of the same document race
 * harmlessly: both renames install identical bytes.
 */
#include "docstore.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_sha_hex(const char *s)
{
    size_t i;

    for (i = 0; i < USHER_SHA256_HEX_LEN; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    }
    return s[i] == '\0';
}

usher_err usher_docstore_path(const char *root, const char *sha_hex, char *buf, size_t len)
{
    int n;

    if (root == NULL || sha_hex == NULL || buf == NULL || !is_sha_hex(sha_hex))
        return USHER_ERR_INVALID;
    n = snprintf(buf, len, "%s/%.2s/%.2s/%s", root, sha_hex, sha_hex + 2, sha_hex);
    if (n < 0 || (size_t)n >= len)
        return USHER_ERR_INVALID;
    return USHER_OK;
}

/* mkdir -p for path (modified in place and restored). */
static USHER_MUSTCHECK usher_err make_dirs(char *path, char *errbuf, size_t errlen)
{
    char *p;

    for (p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            snprintf(errbuf, errlen, "cannot create directory %s: %s", path, strerror(errno));
            *p = saved;
            return USHER_ERR_IO;
        }
        *p = saved;
        if (saved == '\0')
            return USHER_OK;
    }
}

static USHER_MUSTCHECK usher_err write_all(int fd, const unsigned char *data, size_t len,
                                           const char *path, char *errbuf, size_t errlen)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(errbuf, errlen, "cannot write %s: %s", path, strerror(errno));
            return USHER_ERR_IO;
        }
        data += n;
        len -= (size_t)n;
    }
    return USHER_OK;
}

static USHER_MUSTCHECK usher_err sync_dir(const char *dir, char *errbuf, size_t errlen)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0 || fsync(fd) != 0) {
        snprintf(errbuf, errlen, "cannot sync directory %s: %s", dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return USHER_ERR_IO;
    }
    if (close(fd) != 0) {
        snprintf(errbuf, errlen, "cannot close directory %s: %s", dir, strerror(errno));
        return USHER_ERR_IO;
    }
    return USHER_OK;
}

/* Writes data to a temporary file in dir, fsyncs it and renames it to path. */
static USHER_MUSTCHECK usher_err install(const char *dir, const char *path, const void *data,
                                         size_t len, char *errbuf, size_t errlen)
{
    char tmp[PATH_MAX];
    usher_err err;
    int fd, n;

    n = snprintf(tmp, sizeof(tmp), "%s/.tmp-XXXXXX", dir);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        snprintf(errbuf, errlen, "document store path too long: %s", dir);
        return USHER_ERR_INVALID;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(errbuf, errlen, "cannot create a file in %s: %s", dir, strerror(errno));
        return USHER_ERR_IO;
    }
    err = write_all(fd, data, len, tmp, errbuf, errlen);
    if (err == USHER_OK && (fchmod(fd, 0644) != 0 || fsync(fd) != 0)) {
        snprintf(errbuf, errlen, "cannot sync %s: %s", tmp, strerror(errno));
        err = USHER_ERR_IO;
    }
    if (close(fd) != 0 && err == USHER_OK) {
        snprintf(errbuf, errlen, "cannot close %s: %s", tmp, strerror(errno));
        err = USHER_ERR_IO;
    }
    if (err == USHER_OK && rename(tmp, path) != 0) {
        snprintf(errbuf, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        err = USHER_ERR_IO;
    }
    if (err != USHER_OK) {
        unlink(tmp);
        return err;
    }
    return sync_dir(dir, errbuf, errlen);
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

usher_err usher_docstore_put(const char *root, const void *data, size_t len,
                             usher_docstore_ref *out, char *errbuf, size_t errlen)
{
    unsigned char hash[crypto_hash_sha256_BYTES];
    usher_docstore_ref ref;
    char path[PATH_MAX], dir[PATH_MAX];
    struct stat st;
    usher_err err;

    if (root == NULL || root[0] == '\0' || (data == NULL && len > 0) || out == NULL) {
        snprintf(errbuf, errlen, "document store: root, data and out are required");
        return USHER_ERR_INVALID;
    }
    if (sodium_init() < 0) {
        snprintf(errbuf, errlen, "libsodium failed to initialise");
        return USHER_ERR_SYSTEM;
    }
    crypto_hash_sha256(hash, data, len);
    to_hex(hash, ref.sha256);
    ref.size = len;
    snprintf(ref.relpath, sizeof(ref.relpath), "%.2s/%.2s/%s", ref.sha256, ref.sha256 + 2,
             ref.sha256);
    if (usher_docstore_path(root, ref.sha256, path, sizeof(path)) != USHER_OK) {
        snprintf(errbuf, errlen, "document store root too long: %s", root);
        return USHER_ERR_INVALID;
    }
    memcpy(dir, path, strlen(path) - USHER_SHA256_HEX_LEN - 1);
    dir[strlen(path) - USHER_SHA256_HEX_LEN - 1] = '\0';
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == len) {
        *out = ref;
        return USHER_OK;
    }
    err = make_dirs(dir, errbuf, errlen);
    if (err == USHER_OK)
        err = install(dir, path, data, len, errbuf, errlen);
    if (err == USHER_OK)
        *out = ref;
    return err;
}
