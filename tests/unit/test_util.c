/* Unit tests for controller/util: sha256 vectors, name rules, integer
 * parsing, atomic file replacement (single and batched). */
#include "tap.h"
#include "util/fileio.h"
#include "util/proc.h"
#include "util/sha256.h"
#include "util/util.h"

#include <stdio.h>
#include <sys/stat.h>

static void test_sha256(void)
{
	char hex[65];
	sha256_hex("", 0, hex);
	CHECK_STREQ(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		    "sha256 of empty string");
	sha256_hex("abc", 3, hex);
	CHECK_STREQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		    "sha256 of abc");
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	sha256_hex(two, strlen(two), hex);
	CHECK_STREQ(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
		    "sha256 of the two-block vector");
	char *mil = xmalloc(1000000);
	memset(mil, 'a', 1000000);
	sha256_hex(mil, 1000000, hex);
	free(mil);
	CHECK_STREQ(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
		    "sha256 of a million a");
}

static void test_names(void)
{
	CHECK(dns_label_valid("web-1"), "web-1 is a label");
	CHECK(dns_label_valid("a"), "single char is a label");
	CHECK(!dns_label_valid(""), "empty is not");
	CHECK(!dns_label_valid("-a"), "leading dash is not");
	CHECK(!dns_label_valid("a-"), "trailing dash is not");
	CHECK(!dns_label_valid("Web"), "upper case is not");
	CHECK(!dns_label_valid("../etc"), "path is not");
	CHECK(!dns_label_valid("a.b"), "dot is not");
	char long64[65];
	memset(long64, 'a', 64);
	long64[64] = 0;
	CHECK(!dns_label_valid(long64), "64 chars is not");
	long64[63] = 0;
	CHECK(dns_label_valid(long64), "63 chars is");
}

static void test_parse_u64(void)
{
	uint64_t v = 7;
	CHECK(parse_u64("42", 0, 100, &v) == 0 && v == 42, "parse 42");
	CHECK(parse_u64("101", 0, 100, &v) == -ERANGE && v == 42, "range error keeps out param");
	CHECK(parse_u64("4x", 0, 100, &v) == -EINVAL, "junk rejected");
	CHECK(parse_u64("99999999999999999999999", 0, UINT64_MAX, &v) == -ERANGE, "overflow");
	CHECK(parse_u64("", 0, 1, &v) == -EINVAL, "empty rejected");
}

static void test_atomic(void)
{
	char dir[] = "/tmp/banger-test-util-XXXXXX";
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	_cleanup_free_ char *p = path_join(dir, "f.json");
	_cleanup_free_ char *got = NULL;
	size_t len = 0;

	CHECK(write_file_atomic_if_changed(p, "one", 3, 0644) == 1, "first write writes");
	CHECK(write_file_atomic_if_changed(p, "one", 3, 0644) == 0, "same content is a no-op");
	CHECK(write_file_atomic_if_changed(p, "two!", 4, 0644) == 1, "new content writes");
	CHECK(read_file_bounded(p, 100, &got, &len) == 0 && len == 4 && streq(got, "two!"),
	      "content replaced");
	free(got);
	got = NULL;
	CHECK(read_file_bounded(p, 3, &got, &len) == -EFBIG, "bounded read refuses big file");

	AtomicBatch *b = atomic_batch_new();
	char *names[3];
	for (int i = 0; i < 3; i++) {
		char buf[16];
		snprintf(buf, sizeof(buf), "b%d", i);
		names[i] = path_join(dir, buf);
		CHECK(atomic_batch_write(b, names[i], buf, strlen(buf), 0644) == 1, "stage %s", buf);
	}
	CHECK(atomic_batch_write(b, p, "two!", 4, 0644) == 0, "unchanged file not staged");
	CHECK(atomic_batch_commit(b) == 0, "batch commit");
	atomic_batch_free(b);
	for (int i = 0; i < 3; i++) {
		struct stat st;
		CHECK(stat(names[i], &st) == 0 && st.st_size == 2, "batch file %d present", i);
		free(names[i]);
	}
	CHECK(rm_rf(dir) == 0, "rm_rf");
	struct stat st;
	CHECK(stat(dir, &st) < 0 && errno == ENOENT, "dir gone");
}

static void test_proc(void)
{
	char *t[] = { "/bin/true", NULL }, *f[] = { "/bin/false", NULL };
	char *missing[] = { "/nonexistent/prog", NULL };
	char *slow[] = { "/bin/sleep", "5", NULL };
	CHECK_INTEQ(proc_run(t, NULL, 5000), 0, "proc_run true exits 0");
	CHECK_INTEQ(proc_run(f, NULL, 5000), 1, "proc_run false exits 1");
	CHECK_INTEQ(proc_run(missing, NULL, 5000), -ENOENT, "exec failure reported as -ENOENT");
	CHECK_INTEQ(proc_run(slow, NULL, 100), -ETIMEDOUT, "timeout kills and reports");

	uint64_t st = 0;
	CHECK(proc_start_time(getpid(), &st) == 0 && st > 0, "own start time");
	CHECK(proc_alive(getpid(), st), "alive with matching start time");
	CHECK(!proc_alive(getpid(), st + 1), "not alive with other start time");
	_cleanup_free_ char *sh = NULL;
	CHECK(find_executable("sh", &sh) == 0 && sh[0] == '/', "find sh in PATH");
}

int main(void)
{
	test_proc();
	test_sha256();
	test_names();
	test_parse_u64();
	test_atomic();
	return tap_done();
}
