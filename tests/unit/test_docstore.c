/*
 * The document store's pure parts: naming bytes given in pieces (the same
 * SHA-256 however they are cut), the names it accepts, and which slice of
 * which chunk holds a byte range (platform/docstore_db.h), which usher-api's
 * Range reads and the blocking reader both follow.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "docstore.h"
#include "docstore_db.h"

#define CHUNK USHER_DOCSTORE_CHUNK_BYTES

Test(docstore, bytes_are_named_by_sha256_however_they_are_cut)
{
    char abc[] = "abc";
    struct iovec whole = { abc, 3 };
    struct iovec cut[] = { { abc, 1 }, { abc + 1, 0 }, { abc + 1, 2 } };
    usher_docstore_ref a, b, empty;
    char err[128];

    cr_assert_eq(usher_docstore_name(&whole, 1, &a, err, sizeof(err)), USHER_OK);
    cr_assert_eq(usher_docstore_name(cut, 3, &b, err, sizeof(err)), USHER_OK);
    cr_assert_str_eq(a.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    cr_assert_str_eq(b.sha256, a.sha256);
    cr_assert_eq(b.size, 3);
    cr_assert_str_eq(b.relpath,
                     "ba/78/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    cr_assert_eq(usher_docstore_name(NULL, 0, &empty, err, sizeof(err)), USHER_OK);
    cr_assert_str_eq(empty.sha256,
                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    cr_assert_eq(empty.size, 0);
}

Test(docstore, only_64_lowercase_hex_digits_name_a_document)
{
    cr_assert(
        usher_docstore_name_ok("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    cr_assert_not(
        usher_docstore_name_ok("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
    cr_assert_not(usher_docstore_name_ok(
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0"));
    cr_assert_not(usher_docstore_name_ok("ba7816"));
    cr_assert_not(usher_docstore_name_ok("../../etc/passwd"));
    cr_assert_not(usher_docstore_name_ok(NULL));
}

Test(docstore, a_range_is_read_slice_by_slice_within_chunks)
{
    usher_docstore_slice s = usher_docstore_db_slice(0, 10);

    cr_assert(s.seq == 0 && s.from == 1 && s.len == 10);
    s = usher_docstore_db_slice(CHUNK - 3, 100); /* stops at the boundary */
    cr_assert(s.seq == 0 && s.from == CHUNK - 2 && s.len == 3);
    s = usher_docstore_db_slice(CHUNK, 100);
    cr_assert(s.seq == 1 && s.from == 1 && s.len == 100);
    s = usher_docstore_db_slice(5 * (uint64_t)CHUNK + 7, 10 * (uint64_t)CHUNK);
    cr_assert(s.seq == 5 && s.from == 8 && s.len == CHUNK - 7);
    /* Walking a range covers every byte once, in order, in as many slices as chunks it touches. */
    uint64_t first = CHUNK - 1, len = 3 * (uint64_t)CHUNK + 2, at = first;
    int slices = 0;

    while (at < first + len) {
        s = usher_docstore_db_slice(at, first + len - at);
        cr_assert_eq((uint64_t)s.seq * CHUNK + (uint64_t)s.from - 1, at);
        cr_assert_leq(s.from - 1 + s.len, CHUNK);
        at += s.len;
        slices++;
    }
    cr_assert_eq(at, first + len);
    cr_assert_eq(slices, 5);
}
