/* Unit tests for controller/storage: dm table/name building, path rules,
 * image_path_check over a temp tree (symlink escape, prefix trap, device
 * node, directory, missing file), cow method choice, and a sparse copy. */
#include "storage/qcow2.h"
#include "storage/storage.h"
#include "tap.h"
#include "util/fileio.h"
#include "util/sha256.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

static void test_dm_table(void)
{
	_cleanup_free_ char *p = NULL;
	CHECK_INTEQ(dm_snapshot_table("/dev/loop3", "/dev/loop4", 2048, &p), 0, "table builds");
	CHECK_STREQ(p, "/dev/loop3 /dev/loop4 P 8", "params are base cow P 8");
	char *q = NULL;
	CHECK_INTEQ(dm_snapshot_table("/dev/loop3", "/dev/loop4", 0, &q), -EINVAL,
		    "zero size refused");
	CHECK(!q, "out param untouched on failure");
	CHECK_INTEQ(dm_snapshot_table("loop3", "/dev/loop4", 8, &q), -EINVAL,
		    "relative base refused");
	CHECK_INTEQ(dm_snapshot_table("/dev/loop3", NULL, 8, &q), -EINVAL, "missing cow refused");
	CHECK_INTEQ(dm_snapshot_table("/dev/lo op3", "/dev/loop4", 8, &q), -EINVAL,
		    "whitespace in a device refused (would split the table)");
	CHECK_INTEQ(dm_snapshot_table("/dev/loop3", "/dev/loop4\n0 8 zero", 8, &q), -EINVAL,
		    "newline injection refused");
	CHECK_INTEQ(dm_snapshot_table("/dev/loop3", "/dev/loop3", 8, &q), -EINVAL,
		    "base == cow refused");
}

static void test_dm_names(void)
{
	_cleanup_free_ char *a = dm_name_for("0123abcdef456789");
	_cleanup_free_ char *b = dm_name_for("ABCD-EF01-2345");
	_cleanup_free_ char *dev = dm_dev_path("banger-0123abcd");
	CHECK_STREQ(a, "banger-0123abcd", "first 8 hex of the uid");
	CHECK_STREQ(b, "banger-abcdef01", "dashes skipped, lower-cased");
	/* (these return NULL, so nothing leaks when CHECK re-evaluates) */
	CHECK(dm_name_for("0123abc") == NULL, "7 hex digits are not enough");
	CHECK(dm_name_for("0123abcz99") == NULL, "non-hex refused");
	CHECK(dm_name_for("../../x1234567") == NULL, "path junk refused");
	CHECK(dm_name_for(NULL) == NULL, "NULL uid refused");
	CHECK_STREQ(dev, "/dev/mapper/banger-0123abcd", "device path");
	CHECK(dm_name_valid("banger-0123abcd"), "our names are valid");
	CHECK(!dm_name_valid(""), "empty invalid");
	CHECK(!dm_name_valid("a/b"), "slash invalid");
	CHECK(!dm_name_valid(".."), "dot-dot invalid");
	CHECK(!dm_name_valid("a b"), "space invalid");
	char longname[200];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	CHECK(!dm_name_valid(longname), "over 127 chars invalid");
}

static void test_dm_unavailable(void)
{
	char *dev = NULL, **names = NULL;
	CHECK_INTEQ(dm_snapshot_create("bad/name", NULL, "/dev/loop0", "/dev/loop1", 8, &dev),
		    -EINVAL, "create validates the name before anything");
	CHECK_INTEQ(dm_snapshot_create("banger-x", NULL, "loop0", "/dev/loop1", 8, &dev), -EINVAL,
		    "create validates the table before anything");
	if (dm_available()) {
		SKIP("device-mapper present: unavailable paths not testable");
		return;
	}
	CHECK_INTEQ(dm_snapshot_create("banger-x", NULL, "/dev/loop0", "/dev/loop1", 8, &dev),
		    -EOPNOTSUPP, "create without device-mapper: -EOPNOTSUPP");
	CHECK(!dev, "no device returned");
	CHECK_INTEQ(dm_remove("banger-x"), -EOPNOTSUPP, "remove without device-mapper");
	CHECK_INTEQ(dm_list("banger-", &names), -EOPNOTSUPP, "list without device-mapper");
	CHECK(!names, "no list returned");
	RootDisk h = { .dm_name = (char *)"banger-x" };
	CHECK_INTEQ(root_disk_teardown(&h), 0, "teardown of a dm handle without dm: no-op");
}

static void test_paths(void)
{
	CHECK_STREQ(loop_dev_name("/dev/loop12"), "loop12", "loop name");
	CHECK(loop_dev_name("/dev/loop") == NULL, "no number");
	CHECK(loop_dev_name("/dev/loop1x") == NULL, "junk after number");
	CHECK(loop_dev_name("/dev/sda") == NULL, "not a loop");
	CHECK(loop_dev_name("/dev/loop-control") == NULL, "control is not a device");
	CHECK(loop_dev_name("/dev/loop1/../sda") == NULL, "no traversal");
	CHECK(storage_path_is_under("/images/a.img", "/images"), "file in root");
	CHECK(storage_path_is_under("/images", "/images"), "root itself");
	CHECK(!storage_path_is_under("/imagesX/a.img", "/images"), "prefix trap");
	CHECK(!storage_path_is_under("/imag", "/images"), "shorter");
	CHECK(storage_path_is_under("/anything", "/"), "slash root holds everything");
	CHECK(!storage_path_is_under("rel/a", "/"), "relative refused");
}

typedef struct {
	char dir[64];
	char *images, *other, *trap;
} Tree;

static void put(const char *path, const char *data)
{
	CHECK_INTEQ(write_file_atomic(path, data, strlen(data), 0644), 0, "write %s", path);
}

static void tree_make(Tree *t)
{
	strcpy(t->dir, "/tmp/banger-test-storage-XXXXXX");
	bool made = mkdtemp(t->dir) != NULL;
	CHECK(made, "mkdtemp");
	t->images = path_join(t->dir, "images");
	t->other = path_join(t->dir, "other");
	t->trap = path_join(t->dir, "imagesX");
	mkdir(t->images, 0755);
	mkdir(t->other, 0755);
	mkdir(t->trap, 0755);
	_cleanup_free_ char *sub = path_join(t->images, "sub");
	mkdir(sub, 0755);
	_cleanup_free_ char *f1 = path_join(t->images, "base.img"),
			    *f2 = path_join(t->other, "secret"),
			    *f3 = path_join(t->trap, "base.img");
	put(f1, "base");
	put(f2, "secret");
	put(f3, "trap");
	_cleanup_free_ char *esc = path_join(t->images, "escape"), *ok = path_join(t->images, "ok");
	_cleanup_free_ char *dangling = path_join(t->images, "dangling");
	CHECK_INTEQ(symlink(f2, esc), 0, "symlink escape");
	CHECK_INTEQ(symlink("base.img", ok), 0, "symlink inside");
	CHECK_INTEQ(symlink("nothing-here", dangling), 0, "symlink dangling");
}

/* image_path_check on dir/rel against the images root; frees the result. */
static int check_path(Tree *t, const char *rel)
{
	_cleanup_free_ char *p = path_join(t->dir, rel), *real = NULL;
	char *roots[] = { t->images, NULL };
	int r = image_path_check(p, roots, &real);
	if (r < 0 && real)
		return -EFAULT; /* out param written on failure */
	return r;
}

static int check_abs(const char *path, char **roots, char **ret)
{
	char *real = NULL;
	int r = image_path_check(path, roots, &real);
	if (r < 0 && real)
		r = -EFAULT;
	if (ret)
		*ret = real;
	else
		free(real);
	return r;
}

static void test_image_paths(void)
{
	Tree t;
	char *real = NULL;
	tree_make(&t);
	_cleanup_free_ char *want = path_join(t.images, "base.img");
	char *roots[] = { t.images, NULL }, *noroots[] = { NULL };

	CHECK_INTEQ(check_abs(want, roots, &real), 0, "file in root accepted");
	CHECK_STREQ(real, want, "returns the real path");
	free(real);
	_cleanup_free_ char *okp = path_join(t.images, "ok");
	CHECK_INTEQ(check_abs(okp, roots, &real), 0, "symlink staying inside accepted");
	CHECK_STREQ(real, want, "symlink resolved");
	free(real);
	CHECK_INTEQ(check_path(&t, "images/sub/../base.img"), 0, "dot-dot inside accepted");
	CHECK_INTEQ(check_path(&t, "images/../other/secret"), -EPERM, "../ escape refused");
	CHECK_INTEQ(check_path(&t, "images/../../../../../../etc/shadow"), -EPERM,
		    "../../etc/shadow refused");
	CHECK_INTEQ(check_path(&t, "images/escape"), -EPERM, "symlink escape refused");
	CHECK_INTEQ(check_path(&t, "imagesX/base.img"), -EPERM, "prefix trap /imagesX refused");
	CHECK_INTEQ(check_path(&t, "images/missing.img"), -ENOENT, "missing file: -ENOENT");
	CHECK_INTEQ(check_path(&t, "images/dangling"), -ENOENT, "dangling symlink: -ENOENT");
	CHECK_INTEQ(check_path(&t, "images/base.img/x"), -ENOENT, "file as dir: -ENOENT");
	CHECK_INTEQ(check_path(&t, "images/sub"), -EINVAL, "directory refused: -EINVAL");
	CHECK_INTEQ(check_path(&t, "images"), -EINVAL, "the root itself refused");

	int r = check_abs("/dev/sda", roots, NULL);
	CHECK(r == -EPERM || r == -ENOENT, "/dev/sda refused (%d)", r);
	CHECK_INTEQ(check_abs("/dev/null", roots, NULL), -EPERM, "/dev/null outside roots");
	char *devroot[] = { (char *)"/dev", NULL };
	CHECK_INTEQ(check_abs("/dev/null", devroot, NULL), -EINVAL,
		    "char device inside a root refused");
	CHECK_INTEQ(check_abs(want, noroots, NULL), -EPERM, "no roots: -EPERM");
	CHECK_INTEQ(check_abs(want, NULL, NULL), -EPERM, "NULL roots: -EPERM");
	CHECK_INTEQ(check_abs("", roots, NULL), -EINVAL, "empty path: -EINVAL");

	/* A block device node inside a root is still refused. */
	_cleanup_free_ char *blk = path_join(t.images, "sda");
	if (mknod(blk, S_IFBLK | 0600, makedev(8, 0)) == 0) {
		CHECK_INTEQ(check_path(&t, "images/sda"), -EINVAL,
			    "block device inside a root refused");
		unlink(blk);
	} else {
		SKIP("mknod not permitted: %s", strerror(errno));
	}

	/* Roots are resolved too: a root given through a symlink works, and
	 * a later root is honoured; a missing root is skipped. */
	_cleanup_free_ char *rlink = path_join(t.dir, "images-link");
	CHECK_INTEQ(symlink(t.images, rlink), 0, "root symlink");
	char *roots2[] = { t.trap, rlink, NULL };
	CHECK_INTEQ(check_abs(want, roots2, &real), 0, "root through a symlink, second root");
	CHECK_STREQ(real, want, "resolved under the real root");
	free(real);
	char *roots3[] = { (char *)"/nonexistent-root", t.images, NULL };
	CHECK_INTEQ(check_abs(want, roots3, NULL), 0, "missing root skipped");
	CHECK_INTEQ(rm_rf(t.dir), 0, "cleanup");
	free(t.images), free(t.other), free(t.trap);
}

static void test_cow_choice(void)
{
	CHECK_INTEQ(cow_method_choose(true, true, true), COW_DM, "dm first");
	CHECK_INTEQ(cow_method_choose(true, false, false), COW_DM, "dm for firecracker too");
	CHECK_INTEQ(cow_method_choose(false, true, true), COW_REFLINK, "reflink before qcow2");
	CHECK_INTEQ(cow_method_choose(false, true, false), COW_REFLINK, "reflink, fc");
	CHECK_INTEQ(cow_method_choose(false, false, true), COW_QCOW2, "qcow2 for qemu");
	CHECK_INTEQ(cow_method_choose(false, false, false), COW_SPARSE, "sparse for firecracker");
	CHECK_INTEQ(cow_method_fallback(COW_REFLINK, true), COW_QCOW2, "reflink -> qcow2 (qemu)");
	CHECK_INTEQ(cow_method_fallback(COW_REFLINK, false), COW_SPARSE, "reflink -> sparse (fc)");
	CHECK_INTEQ(cow_method_fallback(COW_QCOW2, true), COW_SPARSE, "qcow2 -> sparse");
	CHECK_INTEQ(cow_method_fallback(COW_SPARSE, true), _COW_METHOD_INVALID, "sparse: last");
	CHECK_INTEQ(cow_method_fallback(COW_DM, true), _COW_METHOD_INVALID,
		    "dm: no silent fallback");
	for (int m = 0; m < _COW_METHOD_MAX; m++)
		CHECK_INTEQ(cow_method_from_string(cow_method_to_string(m)), m, "round trip %s",
			    cow_method_to_string(m));
	CHECK_INTEQ(cow_method_from_string("zfs"), _COW_METHOD_INVALID, "unknown method");
	CHECK(cow_method_to_string(_COW_METHOD_MAX) == NULL, "out of range");
	CHECK_STREQ(cow_disk_file_name(COW_QCOW2), "root.qcow2", "qcow2 file");
	CHECK_STREQ(cow_disk_file_name(COW_SPARSE), "root.img", "sparse file");
	CHECK(cow_disk_file_name(COW_AUTO) == NULL, "auto has no file");
}

static int count_records(void *userdata, const RootDisk *partial)
{
	(*(int *)userdata)++;
	return 0;
}

/* A forced sparse copy on /tmp: same bytes, holes kept, a second prepare
 * keeps the disk; impossible forced methods are refused. */
static void make_base(const char *base, off_t size)
{
	_cleanup_close_ int fd = open(base, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	bool ok = fd >= 0 && ftruncate(fd, size) == 0 && pwrite(fd, "head", 4, 0) == 4 &&
		  pwrite(fd, "tail", 4, size - 4) == 4 &&
		  pwrite(fd, "mid", 3, 3 * 1024 * 1024 + 5) == 3;
	CHECK(ok, "base image with holes");
}

static bool same_content(const char *a, const char *b, size_t max)
{
	_cleanup_free_ char *x = NULL, *y = NULL;
	size_t lx, ly;
	return read_file_bounded(a, max, &x, &lx) == 0 && read_file_bounded(b, max, &y, &ly) == 0 &&
	       lx == ly && memcmp(x, y, lx) == 0;
}

static void test_sparse_copy(void)
{
	char dir[] = "/tmp/banger-test-cow-XXXXXX";
	bool made = mkdtemp(dir) != NULL;
	CHECK(made, "mkdtemp");
	_cleanup_free_ char *base = path_join(dir, "base.img"), *want = path_join(dir, "root.img");
	const off_t size = 8 * 1024 * 1024;
	int records = 0;
	RootDiskRequest req = { .vm_dir = dir,
				.vm_uid = "0123abcd",
				.base_image = base,
				.method = COW_SPARSE,
				.record = count_records,
				.userdata = &records };
	RootDisk d = { 0 }, again = { 0 }, none = { 0 };
	struct stat st;

	make_base(base, size);
	CHECK_INTEQ(root_disk_prepare(&req, &d), 0, "sparse prepare");
	CHECK_STREQ(d.path, want, "disk path");
	CHECK_STREQ(d.format, "raw", "raw format");
	CHECK_INTEQ(d.method, COW_SPARSE, "method sparse");
	CHECK(!d.reused, "made now");
	CHECK_INTEQ(records, 0, "no kernel objects, nothing recorded");
	CHECK_INTEQ(stat(want, &st), 0, "disk exists");
	CHECK_INTEQ(st.st_size, size, "same size");
	CHECK(st.st_blocks * 512 < 1024 * 1024, "copy is sparse (%lld bytes allocated)",
	      (long long)st.st_blocks * 512);
	CHECK(same_content(base, want, size + 1), "same bytes");

	req.method = COW_AUTO;
	CHECK_INTEQ(root_disk_prepare(&req, &again), 0, "second prepare");
	CHECK(again.reused && again.method == COW_SPARSE, "second prepare keeps the disk");
	CHECK_INTEQ(root_disk_teardown(&again), 0, "teardown of a file disk is a no-op");
	CHECK_INTEQ(root_disk_teardown(&again), 0, "and idempotent");
	root_disk_done(&again);
	root_disk_done(&d);
	root_disk_done(NULL);

	_cleanup_free_ char *dir2 = path_join(dir, "vm2");
	CHECK_INTEQ(mkdir(dir2, 0755), 0, "second vm dir");
	req.vm_dir = dir2;
	req.method = COW_DM;
	if (!dm_available()) {
		CHECK_INTEQ(root_disk_prepare(&req, &none), -EOPNOTSUPP,
			    "forced dm without device-mapper: -EOPNOTSUPP");
		CHECK_INTEQ(records, 0, "nothing recorded");
	}
	req.method = COW_QCOW2;
	req.qemu = false;
	CHECK_INTEQ(root_disk_prepare(&req, &none), -EOPNOTSUPP,
		    "forced qcow2 for firecracker refused");
	CHECK(none.path == NULL, "out param untouched");
	/* A VM whose disk is a dm exception store cannot silently become a
	 * plain copy on a host without dm: its data lives in root.cow. */
	_cleanup_free_ char *dir3 = path_join(dir, "vm3"), *cow = path_join(dir3, "root.cow");
	CHECK_INTEQ(mkdir(dir3, 0755), 0, "third vm dir");
	CHECK_INTEQ(write_file_atomic(cow, "", 0, 0600), 0, "existing root.cow");
	req.vm_dir = dir3;
	req.method = COW_AUTO;
	req.qemu = true;
	if (!dm_available())
		CHECK_INTEQ(root_disk_prepare(&req, &none), -EOPNOTSUPP,
			    "existing root.cow without device-mapper: -EOPNOTSUPP");
	req.base_image = dir;
	CHECK_INTEQ(root_disk_prepare(&req, &none), -EINVAL, "directory as base refused");
	CHECK_INTEQ(rm_rf(dir), 0, "cleanup");
}

/* The overlay qcow2.c writes parses back field by field, its clusters are
 * where the layout says, and bad arguments are refused before writing. */
static void test_qcow2(void)
{
	char path[] = "/tmp/banger-test-qcow2-XXXXXX";
	int fd = mkostemp(path, O_CLOEXEC);
	CHECK(fd >= 0, "temp file");
	if (fd < 0)
		return;
	unlink(path);
	const char *base = "/var/lib/banger/images/rootfs.ext4";
	CHECK_INTEQ(qcow2_write_overlay(fd, base, "raw", 64 * 1024 * 1024 + 1), 0, "write overlay");
	Qcow2Info info;
	CHECK_INTEQ(qcow2_read_info(fd, &info), 0, "read it back");
	CHECK_INTEQ(info.version, 3, "version 3");
	CHECK_INTEQ(info.cluster_bits, 16, "64 KiB clusters");
	CHECK_INTEQ(info.size, 64 * 1024 * 1024 + 512, "size rounded up to 512");
	CHECK_STREQ(info.backing, base, "backing file name");
	CHECK_STREQ(info.backing_fmt, "raw", "backing format extension");
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && st.st_size == 4 * 65536,
	      "header, refcount table, refcount block, one L1 cluster");
	unsigned char rc[8];
	CHECK(pread(fd, rc, 8, 2 * 65536) == 8 && rc[1] == 1 && rc[3] == 1 && rc[5] == 1 &&
		      rc[7] == 1,
	      "each of the 4 clusters has refcount 1");
	CHECK(pread(fd, rc, 2, 2 * 65536 + 8) == 2 && rc[0] == 0 && rc[1] == 0,
	      "no other cluster is counted");
	close(fd);

	char path2[] = "/tmp/banger-test-qcow2-XXXXXX";
	fd = mkostemp(path2, O_CLOEXEC);
	CHECK(fd >= 0, "second temp file");
	unlink(path2);
	CHECK_INTEQ(qcow2_write_overlay(fd, "relative.img", "raw", 4096), -EINVAL,
		    "a relative backing path is refused");
	char longname[1100];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = 0;
	CHECK_INTEQ(qcow2_write_overlay(fd, longname, "raw", 4096), -ENAMETOOLONG,
		    "a backing name over 1023 bytes is refused");
	CHECK(fstat(fd, &st) == 0 && st.st_size == 0, "nothing written on refusal");
	CHECK_INTEQ(qcow2_read_info(fd, &info), -EBADMSG, "an empty file is not qcow2");
	close(fd);
}

/* The rootbase.h table, every row. */
static void test_root_base_plan(void)
{
	RootBase rec = { .spec_path = "/img/current",
			 .resolved = "/img/v1",
			 .dev = 1,
			 .ino = 10,
			 .size = 4096,
			 .mtime_ns = 5 };
	RootBase same = rec, flipped = { .spec_path = "/img/current",
					 .resolved = "/img/v2",
					 .dev = 1,
					 .ino = 11,
					 .size = 4096,
					 .mtime_ns = 5 };
	RootBase replaced = rec, moved = flipped, old = { .resolved = "/img/v1" };
	replaced.ino = 12; /* same path, another inode: file replaced */
	moved.spec_path = "/img/other";
	static const struct {
		CowMethod m;
		RootBasePlan flip_there, flip_gone;
	} rows[] = {
		{ COW_QCOW2, ROOT_BASE_KEEP_ORIGINAL, ROOT_BASE_FAIL },
		{ COW_DM, ROOT_BASE_KEEP_ORIGINAL, ROOT_BASE_FAIL },
		{ COW_REFLINK, ROOT_BASE_KEEP_COPY, ROOT_BASE_KEEP_COPY },
		{ COW_SPARSE, ROOT_BASE_KEEP_COPY, ROOT_BASE_KEEP_COPY },
	};
	CHECK(root_base_plan(&rec, &same, COW_AUTO, true) == ROOT_BASE_CREATE, "no disk: create");
	CHECK(root_base_plan(NULL, &same, COW_AUTO, false) == ROOT_BASE_CREATE,
	      "no disk, no record: create");
	CHECK(root_base_plan(NULL, &same, COW_QCOW2, false) == ROOT_BASE_KEEP,
	      "a disk without a record is kept");
	for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
		const char *m = cow_method_to_string(rows[i].m);
		CHECK(root_base_plan(&rec, &same, rows[i].m, true) == ROOT_BASE_KEEP,
		      "%s: same file: keep", m);
		CHECK(root_base_plan(&rec, &flipped, rows[i].m, true) == rows[i].flip_there,
		      "%s: symlink flipped, original there: %s", m,
		      root_base_plan_to_string(rows[i].flip_there));
		CHECK(root_base_plan(&rec, &flipped, rows[i].m, false) == rows[i].flip_gone,
		      "%s: symlink flipped, original gone: %s", m,
		      root_base_plan_to_string(rows[i].flip_gone));
		CHECK(root_base_plan(&rec, &replaced, rows[i].m, false) == rows[i].flip_gone,
		      "%s: file replaced in place: %s", m,
		      root_base_plan_to_string(rows[i].flip_gone));
		CHECK(root_base_plan(&rec, &moved, rows[i].m, true) == ROOT_BASE_RECREATE,
		      "%s: rootfs.path changed: recreate", m);
		CHECK(root_base_plan(&old, &same, rows[i].m, true) == ROOT_BASE_KEEP,
		      "%s: old record (bare path), same path: keep", m);
	}
	CHECK(root_base_same_file(&old, &same), "old record compares by path");
	CHECK(!root_base_same_file(&rec, &replaced), "another inode is another file");
	replaced = rec;
	replaced.mtime_ns = 6;
	CHECK(!root_base_same_file(&rec, &replaced), "a new mtime is another file");
}

static size_t dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	if (!d)
		return 0;
	for (struct dirent *de; (de = readdir(d));)
		if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* The disk pool over real files: a spare is made only for the methods it
 * keeps, taken only for the same path to the same unchanged base (and a
 * qcow2 one only by QEMU), taken once, never over a VM dir that holds
 * something; a start on the taken dir keeps its disk; the sweep removes
 * half-made and outdated spares; the pool is bounded. */
static void test_disk_pool(void)
{
	char dir[] = "/tmp/banger-test-pool-XXXXXX";
	bool made = mkdtemp(dir) != NULL;
	CHECK(made, "mkdtemp");
	_cleanup_free_ char *base = path_join(dir, "base.img"), *pool = path_join(dir, "pool");
	_cleanup_free_ char *vm1 = path_join(dir, "vm1"), *vm2 = path_join(dir, "vm2");
	_cleanup_free_ char *qcow = path_join(vm1, "root.qcow2");
	make_base(base, 4 * 1024 * 1024);
	RootBase now = { 0 }, rec = { 0 }, other = { 0 };
	CHECK_INTEQ(root_base_identify("/images/rootfs.ext4", base, &now), 0, "identify base");

	CHECK_INTEQ(disk_pool_take(pool, &now, true, vm1), 0, "empty pool: nothing taken");
	CHECK(access(vm1, F_OK) < 0, "and no VM dir made");
	CHECK(!disk_pool_method_ok(COW_SPARSE) && !disk_pool_method_ok(COW_DM) &&
		      disk_pool_method_ok(COW_QCOW2) && disk_pool_method_ok(COW_REFLINK),
	      "qcow2 and reflink spares only");
	CHECK_INTEQ(disk_pool_fill(pool, &now, COW_SPARSE, "0123abcd"), 0,
		    "a sparse copy is not pooled");
	CHECK_INTEQ(dir_entries(pool), 0, "nothing made for it");
	CHECK_INTEQ(disk_pool_fill(pool, &now, COW_QCOW2, "0123abcd"), 1, "qcow2 spare made");
	CHECK_INTEQ(dir_entries(pool), 1, "one entry, no temp left");
	CHECK_INTEQ(disk_pool_fill(pool, &now, COW_QCOW2, "0123abcd"), 0,
		    "a second fill for the same base: nothing to do");
	CHECK_INTEQ(disk_pool_take(pool, &now, false, vm1), 0,
		    "a Firecracker VM does not take a qcow2 spare");

	other = now;
	other.spec_path = "/images/other.ext4";
	CHECK_INTEQ(disk_pool_take(pool, &other, true, vm1), 0,
		    "another rootfs.path to the same file: not taken");
	other = now;
	other.mtime_ns++;
	CHECK_INTEQ(disk_pool_take(pool, &other, true, vm1), 0, "a changed base: not taken");

	CHECK_INTEQ(disk_pool_take(pool, &now, true, vm1), 1, "QEMU takes the spare");
	CHECK_INTEQ(dir_entries(pool), 0, "taken once");
	CHECK(access(qcow, F_OK) == 0, "the VM dir holds the overlay");
	CHECK_INTEQ(root_base_read(vm1, &rec), 0, "and the base record");
	CHECK(root_base_same_file(&rec, &now) && streq_ptr(rec.spec_path, now.spec_path),
	      "naming this base by this path");
	RootBaseChoice choice = { 0 };
	char *why = NULL;
	CHECK_INTEQ(root_base_resolve(vm1, now.spec_path, base, &choice, &why), 0, "resolve");
	CHECK(choice.plan == ROOT_BASE_KEEP && !choice.note, "the start keeps the taken disk");
	root_base_choice_done(&choice);
	free(why);
	RootDiskRequest req = {
		.vm_dir = vm1, .vm_uid = "0123abcd", .base_image = base, .qemu = true
	};
	RootDisk d = { 0 };
	CHECK_INTEQ(root_disk_prepare(&req, &d), 0, "prepare on the taken dir");
	CHECK(d.reused && d.method == COW_QCOW2 && streq_ptr(d.path, qcow),
	      "the overlay is kept, not remade");
	root_disk_done(&d);

	CHECK_INTEQ(disk_pool_fill(pool, &now, COW_QCOW2, "0123abcd"), 1, "refilled");
	CHECK_INTEQ(disk_pool_take(pool, &now, true, vm1), 0,
		    "a VM dir that holds something is never replaced");
	CHECK_INTEQ(dir_entries(pool), 1, "the spare stays");
	CHECK_INTEQ(mkdir(vm2, 0700), 0, "an empty VM dir");
	CHECK_INTEQ(disk_pool_take(pool, &now, true, vm2), 1, "an empty VM dir takes the spare");

	/* The sweep: a valid spare stays; a half-made one, junk and a spare
	 * whose base changed go. */
	CHECK_INTEQ(disk_pool_fill(pool, &now, COW_QCOW2, "0123abcd"), 1, "refilled again");
	_cleanup_free_ char *half = path_join(pool, ".0011223344556677.qcow2.0123abcd.tmp");
	_cleanup_free_ char *junk = path_join(pool, "junk");
	CHECK_INTEQ(mkdir(half, 0700), 0, "a half-made spare");
	CHECK_INTEQ(write_file_atomic(junk, "x", 1, 0600), 0, "junk");
	CHECK_INTEQ(disk_pool_sweep(pool), 0, "sweep");
	CHECK_INTEQ(dir_entries(pool), 1, "only the valid spare is left");
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { 1000000, 0 } };
	CHECK_INTEQ(utimensat(AT_FDCWD, base, ts, 0), 0, "the base image changes (mtime)");
	CHECK_INTEQ(disk_pool_sweep(pool), 0, "sweep again");
	CHECK_INTEQ(dir_entries(pool), 0, "the outdated spare is gone");
	root_base_done(&now);
	CHECK_INTEQ(root_base_identify("/images/rootfs.ext4", base, &now), 0, "identify again");

	/* Bounded: spares for more paths than the cap keep the cap. */
	for (int i = 0; i < DISK_POOL_MAX + 3; i++) {
		_cleanup_free_ char *sp = xasprintf("/images/r%02d.ext4", i);
		other = now;
		other.spec_path = sp;
		CHECK_INTEQ(disk_pool_fill(pool, &other, COW_QCOW2, "0123abcd"), 1, "spare %d made",
			    i);
	}
	CHECK_INTEQ(dir_entries(pool), DISK_POOL_MAX, "at most %d spares", DISK_POOL_MAX);
	root_base_done(&now);
	root_base_done(&rec);
	CHECK_INTEQ(rm_rf(dir), 0, "cleanup");
}

int main(void)
{
	test_qcow2();
	test_dm_table();
	test_dm_names();
	test_dm_unavailable();
	test_paths();
	test_image_paths();
	test_cow_choice();
	test_sparse_copy();
	test_root_base_plan();
	test_disk_pool();
	return tap_done();
}
