/* Unit tests for spec/specdir: which entries are listed, which are reported
 * as skipped (symlinks, FIFOs, too deep), and that a listing that runs out
 * of file descriptors fails whole instead of returning a partial list
 * (which the full sync would read as deleted files). */
#include "spec/specdir.h"
#include "tap.h"
#include "util/fileio.h"
#include "util/util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>

typedef struct {
	char *lines[32];
	size_t n;
} Skips;

static void on_skip(void *userdata, const char *rel, SpecSkipKind kind)
{
	Skips *s = userdata;
	if (s->n < ELEMENTSOF(s->lines))
		s->lines[s->n++] = xasprintf("%s: %s", rel, spec_skip_reason(kind));
}

static bool skipped(const Skips *s, const char *rel, const char *reason_start)
{
	_cleanup_free_ char *want = xasprintf("%s: %s", rel, reason_start);
	for (size_t i = 0; i < s->n; i++)
		if (startswith(s->lines[i], want))
			return true;
	return false;
}

static void put(const char *dir, const char *rel)
{
	_cleanup_free_ char *p = path_join(dir, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
}

int main(void)
{
	char tmpl[] = "/tmp/banger-test-specdir.XXXXXX";
	if (!mkdtemp(tmpl)) {
		CHECK(false, "mkdtemp");
		return tap_done();
	}
	const char *d = tmpl;
	char sub[600], deep[600], p[700];
	snprintf(sub, sizeof(sub), "%s/sub", d);
	mkdir(sub, 0755);
	put(d, "a.yaml");
	put(d, "sub/b.yml");
	put(d, "notes.txt");
	snprintf(p, sizeof(p), "%s/fifo.yaml", d);
	mkfifo(p, 0644);
	snprintf(p, sizeof(p), "%s/fifo.txt", d);
	mkfifo(p, 0644);
	snprintf(p, sizeof(p), "%s/link.yaml", d);
	CHECK(symlink("a.yaml", p) == 0, "symlink to a file");
	snprintf(p, sizeof(p), "%s/linkdir", d);
	CHECK(symlink("sub", p) == 0, "symlink to a directory");
	snprintf(p, sizeof(p), "%s/README", d);
	CHECK(symlink("notes.txt", p) == 0, "symlink to a non-spec file");
	/* Files at depth 16 are listed; the directory at depth 17 is not entered. */
	snprintf(deep, sizeof(deep), "%s", d);
	for (int i = 1; i <= 17; i++) {
		size_t l = strlen(deep);
		snprintf(deep + l, sizeof(deep) - l, "/%c", 'a' + i - 1);
		mkdir(deep, 0755);
		if (i == 16)
			put(deep, "at16.yaml");
	}
	put(deep, "at17.yaml");

	Skips s = { 0 };
	_cleanup_strv_free_ char **rel = NULL;
	CHECK(spec_dir_list_full(d, on_skip, &s, &rel) == 0, "listing succeeds");
	size_t n = strv_length(rel);
	CHECK_INTEQ(n, 3, "a.yaml, sub/b.yml and the one at depth 16");
	CHECK(n == 3 && streq(rel[0], "a.yaml") && streq(rel[2], "sub/b.yml") &&
		      endswith(rel[1], "/p/at16.yaml"),
	      "sorted, relative");
	CHECK(skipped(&s, "link.yaml", "a symlink"), "symlinked spec file reported");
	CHECK(skipped(&s, "linkdir", "a symlink"), "symlinked directory reported");
	CHECK(skipped(&s, "fifo.yaml", "not a regular file"), "FIFO with a spec name reported");
	CHECK(skipped(&s, "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q", "a directory more than 16"),
	      "the directory at depth 17 reported");
	CHECK_INTEQ(s.n, 4, "nothing else reported (fifo.txt, README -> notes.txt are not specs)");
	for (size_t i = 0; i < s.n; i++)
		printf("# %s\n", s.lines[i]);

	/* Out of fds half-way down: an error, never a shorter list. */
	struct rlimit old, low;
	getrlimit(RLIMIT_NOFILE, &old);
	int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
	low = old;
	low.rlim_cur = (rlim_t)probe + 5; /* a few levels of the 17, not all */
	close(probe);
	setrlimit(RLIMIT_NOFILE, &low);
	char **partial = NULL;
	int r = spec_dir_list_full(d, NULL, NULL, &partial);
	setrlimit(RLIMIT_NOFILE, &old);
	CHECK_INTEQ(r, -EMFILE, "EMFILE while walking fails the listing");
	CHECK(partial == NULL, "and returns no list");
	strv_free(partial);

	for (size_t i = 0; i < s.n; i++)
		free(s.lines[i]);
	CHECK(rm_rf(d) == 0, "clean up");
	return tap_done();
}
