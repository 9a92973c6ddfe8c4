/* test_logcap.c — util/logcap: in-place tail trim and the rotating segment. */
#include "tap.h"
#include "util/fileio.h"
#include "util/logcap.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

static char dir[] = "/tmp/banger-logcap.XXXXXX";

static off_t size_of(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 ? st.st_size : -1;
}

static char *slurp(const char *p)
{
	char *s = NULL;
	return read_file_bounded(p, 1 << 24, &s, NULL) >= 0 ? s : NULL;
}

/* A file of n bytes where byte i is 'a' + i % 26 (so offsets are checkable). */
static void make(const char *p, size_t n)
{
	char *b = malloc(n);
	for (size_t i = 0; i < n; i++)
		b[i] = (char)('a' + i % 26);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0 && write(fd, b, n) == (ssize_t)n, "make %zu bytes", n);
	close(fd);
	free(b);
}

static void test_trim(void)
{
	char p[128];
	snprintf(p, sizeof(p), "%s/vmm.log", dir);
	CHECK(log_trim_tail(p, 8192) == 0, "missing file: nothing to do");
	make(p, 8192);
	CHECK(log_trim_tail(p, 8192) == 0 && size_of(p) == 8192, "at the cap: untouched");
	make(p, 10000);
	CHECK(log_trim_tail(p, 8192) == 1, "past the cap: trimmed");
	CHECK(size_of(p) == 4096, "kept cap/2 bytes (%lld)", (long long)size_of(p));
	char *s = slurp(p);
	/* the kept part starts at old offset 10000 - 4096 = 5904 */
	CHECK(s && s[0] == (char)('a' + 5904 % 26) && s[4095] == (char)('a' + 9999 % 26),
	      "kept the tail, in order");
	free(s);
	char l[160];
	snprintf(l, sizeof(l), "%s/link", dir);
	CHECK(symlink(p, l) == 0 && log_trim_tail(l, 4096) == -ELOOP, "never follows a symlink");
}

static void test_segment(void)
{
	char p[128], p1[140];
	snprintf(p, sizeof(p), "%s/console.log", dir);
	snprintf(p1, sizeof(p1), "%s.1", p);
	LogSegment s;
	log_segment_init(&s, p, 8192);
	char line[100];
	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\n';
	bool ok = true;
	uint64_t total = 0;
	for (int i = 0; i < 1000; i++) {
		ok &= log_segment_append(&s, line, sizeof(line)) == 0;
		total += sizeof(line);
		ok &= size_of(p) <= 4096 && (size_of(p1) < 0 || size_of(p1) == 4096);
	}
	CHECK(ok, "100 KB through an 8 KiB cap: console.log <= cap/2, .1 == cap/2 at every step");
	CHECK(size_of(p) + size_of(p1) <= 8192 && size_of(p) + size_of(p1) >= 4096,
	      "the pair holds between cap/2 and cap bytes");
	CHECK((uint64_t)(size_of(p) + size_of(p1)) == 4096 + total % 4096 ||
		      (total % 4096 == 0 && size_of(p) + size_of(p1) == 8192),
	      "exactly the newest bytes are kept");
	/* Someone truncates the file (a new boot): reset, and appends go on. */
	CHECK(truncate(p, 0) == 0, "truncate");
	log_segment_reset(&s);
	CHECK(log_segment_append(&s, "boot\n", 5) == 0 && size_of(p) == 5,
	      "after reset the size is taken afresh");
	log_segment_done(&s);
	/* A huge single write is split across rotations, never past the cap. */
	LogSegment b;
	log_segment_init(&b, p, 8192);
	char *big = calloc(1, 20000);
	CHECK(log_segment_append(&b, big, 20000) == 0 && size_of(p) <= 4096,
	      "one 20000-byte write: console.log stays <= cap/2 (%lld)", (long long)size_of(p));
	free(big);
	log_segment_done(&b);
	log_segment_init(&b, p, 1);
	CHECK(b.cap == LOG_CAP_MIN, "a cap below the minimum is raised to %llu",
	      (unsigned long long)LOG_CAP_MIN);
	log_segment_done(&b);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	test_trim();
	test_segment();
	rm_rf(dir);
	return tap_done();
}
