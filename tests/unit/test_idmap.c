/* Host id ranges of user-namespaced guests: the pool, allocation, release, retiring. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include "../../src/lib/idmap.h"
#include "../../src/lib/util.h"

static char dir[64], rec[128];

static int setup(void **state)
{
        (void)state;
        snprintf(dir, sizeof dir, "/tmp/vs-idmap-XXXXXX");
        if (!mkdtemp(dir))
                return -1;
        snprintf(rec, sizeof rec, "%s/subid", dir);
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        char p[160];
        unlink(rec);
        snprintf(p, sizeof p, "%s.lock", rec);
        unlink(p);
        rmdir(dir);
        return 0;
}

/*
 * Allocations keep clear of every installation the host knows
 * (/run/vserver-host/subid.d): these tests see a /run of their own, in a
 * mount namespace of their own, not the host's installations.
 */
static int own_run(void **state)
{
        (void)state;
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") < 0) {
                perror("test_idmap: a /run of its own (run as root)");
                return -1;
        }
        return 0;
}

static void pools(void **state)
{
        (void)state;
        unsigned a, b;
        assert_int_equal(vs_idmap_parse_pool("1073741824-1879048191", &a, &b), 0);
        assert_true(a == 1073741824U && b == 1879048191U);
        assert_int_equal(vs_idmap_parse_pool("65536-131071", &a, &b), 0);
        /* the host's own ids, too small, reversed, past 2^32-2, not numbers */
        assert_int_equal(vs_idmap_parse_pool("0-1000000", &a, &b), -EINVAL);
        assert_int_equal(vs_idmap_parse_pool("65536-131070", &a, &b), -EINVAL);
        assert_int_equal(vs_idmap_parse_pool("200000-100000", &a, &b), -EINVAL);
        assert_int_equal(vs_idmap_parse_pool("100000-4294967295", &a, &b), -EINVAL);
        assert_int_equal(vs_idmap_parse_pool("100000", &a, &b), -EINVAL);
        assert_int_equal(vs_idmap_parse_pool("x-y", &a, &b), -EINVAL);
        assert_int_equal(vs_idmap_parse_pool("-100000-200000", &a, &b), -EINVAL);
}

static void allocate_release_retire(void **state)
{
        (void)state;
        VsIdRange r1, r2, r3, again;
        VsError e = {0};
        const unsigned first = 0x40000000U + 5, last = 0x40000000U + 4 * 65536 - 1;
        /* aligned up: the first whole block inside the pool */
        assert_int_equal(vs_idmap_allocate(rec, "a", first, last, &r1, &e), 0);
        assert_true(r1.start == 0x40010000U && r1.count == VS_IDMAP_COUNT);
        assert_int_equal(vs_idmap_allocate(rec, "b", first, last, &r2, &e), 0);
        assert_true(r2.start == r1.start + VS_IDMAP_COUNT);
        /* stable: asked again, the same */
        assert_int_equal(vs_idmap_allocate(rec, "a", first, last, &again, &e), 0);
        assert_true(again.start == r1.start);
        assert_int_equal(vs_idmap_lookup(rec, "b", &again, &e), 1);
        assert_true(again.start == r2.start);
        assert_int_equal(vs_idmap_lookup(rec, "nobody", &again, &e), 0);
        /* full: one line naming the pool and the fix */
        assert_int_equal(vs_idmap_allocate(rec, "c", first, last, &r3, &e), 0);
        assert_int_equal(vs_idmap_allocate(rec, "d", first, last, &again, &e), -ENOSPC);
        assert_non_null(strstr(e.msg, "widen the host setting userns-ids"));
        /* released: the block goes to the next guest */
        assert_int_equal(vs_idmap_release(rec, "a", false, &e), 0);
        assert_int_equal(vs_idmap_lookup(rec, "a", &again, &e), 0);
        assert_int_equal(vs_idmap_allocate(rec, "d", first, last, &again, &e), 0);
        assert_true(again.start == r1.start);
        /* retired: kept out of use under another name */
        assert_int_equal(vs_idmap_release(rec, "b", true, &e), 0);
        assert_int_equal(vs_idmap_lookup(rec, "b~deleted", &again, &e), 1);
        assert_true(again.start == r2.start);
        assert_int_equal(vs_idmap_allocate(rec, "e", first, last, &again, &e), -ENOSPC);
        assert_false(vs_idmap_clear_of(rec, r2.start + 100, 1));
        assert_true(vs_idmap_clear_of(rec, last + 1, 65536));
}

static void hostile_record(void **state)
{
        (void)state;
        /* malformed lines are skipped, not trusted: overlapping allocation is still avoided */
        FILE *f = fopen(rec, "w");
        assert_non_null(f);
        fprintf(f,
                "# comment\n:1:2\nx:notanumber:5\ny:4294967295:2\n"
                "z:1073741824:65536\nw:1073807360:0\n%0300d\n",
                7);
        fclose(f);
        VsIdRange r;
        VsError e = {0};
        assert_int_equal(
            vs_idmap_allocate(rec, "n", 1073741824U, 1073741824U + 2 * 65536 - 1, &r, &e), 0);
        assert_true(r.start == 1073741824U + 65536);
        /* a lookup takes the whole name, not a prefix, and no malformed line */
        assert_int_equal(vs_idmap_lookup(rec, "z", &r, &e), 1);
        assert_true(r.start == 1073741824U);
        assert_int_equal(vs_idmap_lookup(rec, "", &r, &e), 0);
        assert_int_equal(vs_idmap_lookup(rec, "x", &r, &e), 0);
        assert_int_equal(vs_idmap_lookup(rec, "nn", &r, &e), 0);
        assert_int_equal(
            vs_idmap_allocate(rec, "nn", 1073741824U, 1073741824U + 3 * 65536 - 1, &r, &e), 0);
        assert_true(r.start == 1073741824U + 2 * 65536);
        assert_int_equal(vs_idmap_lookup(rec, "n", &r, &e), 1);
        assert_true(r.start == 1073741824U + 65536);
}

/* Two installations, one pool: the second hands out none of the first's ranges. */
static void two_installations(void **state)
{
        (void)state;
        char other[160];
        snprintf(other, sizeof other, "%s/other-subid", dir);
        const unsigned first = 0x40000000U, last = 0x40000000U + 3 * 65536 - 1;
        VsIdRange a, b, c;
        VsError e = {0};
        assert_int_equal(vs_idmap_allocate(rec, "g1", first, last, &a, &e), 0);
        assert_int_equal(vs_idmap_allocate(other, "g1", first, last, &b, &e), 0);
        assert_true(a.start == first && b.start == first + 65536);
        /* a start registers its record: one allocated before that is known from then on */
        assert_int_equal(vs_idmap_allocate(rec, "g2", first, last, &c, &e), 0);
        assert_true(c.start == first + 2 * 65536);
        assert_int_equal(vs_idmap_allocate(other, "g2", first, last, &c, &e), -ENOSPC);
        /* a record gone (its installation removed): its ranges are free again */
        unlink(other);
        assert_int_equal(vs_idmap_release(rec, "g2", false, &e), 0);
        assert_int_equal(vs_idmap_allocate(other, "g3", first, last, &c, &e), 0);
        assert_true(c.start == first + 65536);
        unlink(other);
        char lock[176];
        snprintf(lock, sizeof lock, "%s.lock", other);
        unlink(lock);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(pools),
            cmocka_unit_test_setup_teardown(allocate_release_retire, setup, teardown),
            cmocka_unit_test_setup_teardown(hostile_record, setup, teardown),
            cmocka_unit_test_setup_teardown(two_installations, setup, teardown),
        };
        return cmocka_run_group_tests(tests, own_run, NULL);
}
