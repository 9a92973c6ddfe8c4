/* Unit tests for controller/confine: the uid range parser, uid allocation
 * (lowest free, keep the current one, full range), the limits, and the
 * file-ownership helpers on real files in a temp dir (a symlink is refused,
 * a fifo is refused, modes and owners are what the contract says). */
#include "confine/cgroup.h"
#include "confine/confine.h"
#include "tap.h"
#include "util/fileio.h"
#include "util/log.h"

#include <stdio.h>
#include <sys/stat.h>

static void test_range_parse(void)
{
	UidRange r = { 7, 7 };
	CHECK_INTEQ(confine_uid_range_parse("2000000000:65536", &r), 0, "default range parses");
	CHECK(r.base == 2000000000u && r.count == 65536u, "base and count");
	static const char *const bad[] = {
		"",
		"2000000000",
		":5",
		"5:",
		"0:10",
		"x:10",
		"10:x",
		"10:0",
		"100000:16777217", /* count above 2^24 */
		"4294967290:10",   /* reaches (uid_t)-1 */
		"65000:1000",      /* includes 65534 nobody */
		"65535:1",         /* 16-bit -1 */
		"-5:10",
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		r = (UidRange){ 7, 7 };
		CHECK(confine_uid_range_parse(bad[i], &r) == -EINVAL && r.base == 7,
		      "'%s' refused, nothing written", bad[i]);
	}
	CHECK_INTEQ(confine_uid_range_parse("100000:1", &r), 0, "a one-uid range parses");
	CHECK_INTEQ(confine_uid_range_parse("65536:10", &r), 0, "just above nobody parses");
}

static void test_pick(void)
{
	UidRange r = { 1000000, 4 };
	uint32_t u = 0;
	CHECK_INTEQ(confine_uid_pick(&r, 0, NULL, 0, &u), 0, "empty: picks");
	CHECK_INTEQ(u, 1000000, "the base");
	uint32_t used[] = { 1000002, 1000000, 5, 1000001 };
	CHECK_INTEQ(confine_uid_pick(&r, 0, used, ELEMENTSOF(used), &u), 0, "picks a gap");
	CHECK_INTEQ(u, 1000003, "lowest free (unsorted input, an out-of-range uid ignored)");
	uint32_t gap[] = { 1000000, 1000002 };
	CHECK_INTEQ(confine_uid_pick(&r, 0, gap, 2, &u), 0, "picks");
	CHECK_INTEQ(u, 1000001, "the first gap, not the end");
	CHECK_INTEQ(confine_uid_pick(&r, 1000002, gap, 2, &u), 0, "keeps current");
	CHECK_INTEQ(u, 1000002, "current kept although others are lower");
	CHECK_INTEQ(confine_uid_pick(&r, 77, gap, 2, &u), 0, "current outside the range");
	CHECK_INTEQ(u, 1000001, "is replaced by the lowest free");
	uint32_t full[] = { 1000000, 1000001, 1000002, 1000003 };
	u = 9;
	CHECK_INTEQ(confine_uid_pick(&r, 0, full, 4, &u), -ENOSPC, "full range -> -ENOSPC");
	CHECK_INTEQ(u, 9, "nothing written");
	uint32_t dup[] = { 1000000, 1000000, 1000001 };
	CHECK_INTEQ(confine_uid_pick(&r, 0, dup, 3, &u), 0, "duplicates in used");
	CHECK_INTEQ(u, 1000002, "do not confuse the walk");
	UidRange top = { 4294967290u, 5 };
	uint32_t t[] = { 4294967290u, 4294967291u, 4294967292u, 4294967293u, 4294967294u };
	CHECK_INTEQ(confine_uid_pick(&top, 0, t, 5, &u), -ENOSPC, "top range full: no overflow");
}

static void test_limits(void)
{
	CHECK_INTEQ(confine_memory_limit(128), (128ull + CONFINE_MEMORY_OVERHEAD_MIB) << 20,
		    "memory limit = memoryMiB + overhead");
	CHECK_INTEQ(confine_pids_limit(2), 2 + CONFINE_PIDS_BASE, "pids = vcpus + base");
	_cleanup_(cgroup_host_freep) CgroupHost *h = NULL;
	if (cgroup_host_open("7e57700170000001", &h) < 0) {
		SKIP("no cgroup memory and pids controllers here: cgroup naming not checked");
		return;
	}
	_cleanup_free_ char *rel = cgroup_vm_rel(h, "0123456789abcdef0123456789abcdef");
	CHECK_STREQ(rel, "banger-7e57700170000001/0123456789abcdef0123456789abcdef",
		    "cgroup named by the instance tag and the VM uid");
}

static mode_t mode_of(const char *p, uid_t *uid)
{
	struct stat st;
	if (lstat(p, &st) < 0)
		return (mode_t)-1;
	if (uid)
		*uid = st.st_uid;
	return st.st_mode & 07777;
}

static void test_files(void)
{
	char dir[] = "/tmp/banger-test-confine-XXXXXX";
	if (!mkdtemp(dir)) {
		CHECK(false, "mkdtemp");
		return;
	}
	bool root = geteuid() == 0;
	uid_t u = 0;
	_cleanup_free_ char *f = path_join(dir, "console.log"), *l = path_join(dir, "link");
	_cleanup_free_ char *fifo = path_join(dir, "fifo"), *ch = NULL;
	CHECK_INTEQ(confine_file(f, root ? 2000000003 : 0, root ? 2000000003 : 0, 0600), 0,
		    "a missing file is created");
	CHECK_INTEQ(mode_of(f, &u), 0600, "mode 0600");
	if (root)
		CHECK_INTEQ(u, 2000000003, "owned by the VMM uid");
	CHECK(symlink(f, l) == 0, "plant a symlink");
	CHECK_INTEQ(confine_file(l, 0, 0, 0600), -ELOOP, "a symlink is refused");
	CHECK(mkfifo(fifo, 0600) == 0, "make a fifo");
	CHECK_INTEQ(confine_file(fifo, 0, 0, 0600), -EINVAL,
		    "a fifo is refused (and not blocked on)");
	CHECK_INTEQ(confine_vm_dir(dir, 0), 0, "unconfined vm dir");
	CHECK_INTEQ(mode_of(dir, NULL), 0700, "0700");
	if (root) {
		CHECK_INTEQ(confine_vm_dir(dir, 2000000003), 0, "confined vm dir");
		CHECK_INTEQ(mode_of(dir, NULL), 0710, "0710 (group: the VMM's gid)");
	}
	_cleanup_free_ char *junk = xasprintf("%s/chroot/junk", dir);
	CHECK_INTEQ(confine_chroot_dir(dir, &ch), 0, "chroot dir made");
	CHECK(ch && mode_of(ch, NULL) == 0555, "chroot dir 0555");
	if (root) {
		CHECK(write_file_atomic(junk, "x", 1, 0600) == 0, "something appears in it");
		free(ch);
		ch = NULL;
		CHECK_INTEQ(confine_chroot_dir(dir, &ch), 0, "made again");
		CHECK(access(junk, F_OK) < 0, "and empty again");
	}
	rm_rf(dir);
}

int main(void)
{
	log_setup(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT, "test_confine");
	test_range_parse();
	test_pick();
	test_limits();
	test_files();
	return tap_done();
}
