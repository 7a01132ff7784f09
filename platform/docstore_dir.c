/*
 * The directory store. A document's name is the SHA-256 of its bytes,
 * fanned out over two directory levels so no directory grows past 65,536
 * entries per level: root/ab/cd/abcd...
 *
 * Writes go to a mkstemp file beside the target, are fsynced and renamed
 * into place, and the directory is fsynced so the rename survives a crash.
 * Because the name is the content, two writers of the same document race
 * harmlessly: both renames install identical bytes.
 */
#include "docstore_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* Writes the parts to a temporary file in dir, fsyncs it and renames it to path. */
static USHER_MUSTCHECK usher_err install(const char *dir, const char *path,
                                         const struct iovec *parts, size_t nparts, char *errbuf,
                                         size_t errlen)
{
    char tmp[PATH_MAX];
    usher_err err = USHER_OK;
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
    for (size_t i = 0; i < nparts && err == USHER_OK; i++)
        err = write_all(fd, parts[i].iov_base, parts[i].iov_len, tmp, errbuf, errlen);
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

usher_err usher_docstore_dir_write(const char *root, const usher_docstore_ref *ref,
                                   const struct iovec *parts, size_t nparts, char *errbuf,
                                   size_t errlen)
{
    char path[PATH_MAX], dir[PATH_MAX];
    struct stat st;
    size_t dirlen;
    usher_err err;

    if (root == NULL || root[0] == '\0')
        return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID, "document store: no directory");
    if (usher_docstore_path(root, ref->sha256, path, sizeof(path)) != USHER_OK)
        return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID, "document store root too long: %s",
                            root);
    dirlen = strlen(path) - USHER_SHA256_HEX_LEN - 1;
    memcpy(dir, path, dirlen);
    dir[dirlen] = '\0';
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == ref->size)
        return USHER_OK;
    err = make_dirs(dir, errbuf, errlen);
    if (err == USHER_OK)
        err = install(dir, path, parts, nparts, errbuf, errlen);
    return err;
}

usher_err usher_docstore_dir_put(const char *root, const void *data, size_t len,
                                 usher_docstore_ref *out, char *errbuf, size_t errlen)
{
    struct iovec part = { .iov_base = (void *)data, .iov_len = len };
    usher_docstore_ref ref;
    usher_err err;

    if (out == NULL)
        return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID, "document store: out is required");
    err = usher_docstore_name(&part, 1, &ref, errbuf, errlen);
    if (err == USHER_OK)
        err = usher_docstore_dir_write(root, &ref, &part, 1, errbuf, errlen);
    if (err == USHER_OK)
        *out = ref;
    return err;
}

usher_err usher_docstore_dir_read(const char *root, const char *sha256, uint64_t offset, size_t len,
                                  void *buf, char *errbuf, size_t errlen)
{
    char path[PATH_MAX];
    unsigned char *p = buf;
    int fd;

    if (usher_docstore_path(root, sha256, path, sizeof(path)) != USHER_OK)
        return usher_errbuf(errbuf, errlen, USHER_ERR_INVALID, "document store root too long");
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return usher_errbuf(errbuf, errlen, errno == ENOENT ? USHER_ERR_NOT_FOUND : USHER_ERR_IO,
                            "cannot open %s: %s", path, strerror(errno));
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)offset);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return usher_errbuf(errbuf, errlen, n == 0 ? USHER_ERR_NOT_FOUND : USHER_ERR_IO,
                                "cannot read %s: %s", path, n == 0 ? "too short" : strerror(errno));
        }
        p += n;
        offset += (uint64_t)n;
        len -= (size_t)n;
    }
    close(fd);
    return USHER_OK;
}
