/* Unit tests for util/escape (the one escaper) and util/trust (the spec-dir
 * trust predicate, the start-up path check, openat_beneath and its
 * fallback walk, trust_openat) and mkdir_p's explicit modes. */
#include "tap.h"
#include "util/escape.h"
#include "util/fileio.h"
#include "util/trust.h"
#include "util/util.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

static void check_escape(const char *in, size_t len, EscapeStyle st, const char *want)
{
	char out[256];
	escape_mem(out, in, len, st);
	CHECK_STREQ(out, want, "escape style %d of %zu bytes -> %s", (int)st, len, want);
}

static void test_escape(void)
{
	check_escape("plain/path.yaml", 15, ESCAPE_DISPLAY, "plain/path.yaml");
	check_escape("a\nb", 3, ESCAPE_DISPLAY, "a\\x0ab");
	check_escape("\x1b[2J", 4, ESCAPE_DISPLAY, "\\x1b[2J");
	check_escape("del\x7f", 4, ESCAPE_DISPLAY, "del\\x7f");
	check_escape("nul\0x", 5, ESCAPE_DISPLAY, "nul\\x00x");
	check_escape("back\\slash \"q\"", 14, ESCAPE_DISPLAY, "back\\slash \"q\"");
	/* C1 controls encoded in UTF-8; other UTF-8 passes through. */
	check_escape("c1 \xc2\x9b!", 6, ESCAPE_DISPLAY, "c1 \\u009b!");
	check_escape("\xc3\xa9t\xc3\xa9", 5, ESCAPE_DISPLAY, "\xc3\xa9t\xc3\xa9");
	check_escape("\xc2\xa0", 2, ESCAPE_DISPLAY, "\xc2\xa0");
	check_escape("\xc2", 1, ESCAPE_DISPLAY, "\xc2");
	check_escape("q\"b\\\t", 5, ESCAPE_QUOTED, "q\\\"b\\\\\\x09");
	check_escape("q\"b\\\t\x7f", 6, ESCAPE_JSON, "q\\\"b\\\\\\u0009\x7f");
	check_escape("\xc2\x85", 2, ESCAPE_JSON, "\xc2\x85");
	/* Worst case fits the documented bound. */
	char six[6] = { 1, 2, 3, 4, 5, 6 }, out[ESCAPE_BUFSIZE(6)];
	CHECK_INTEQ(escape_mem(out, six, 6, ESCAPE_JSON), 36, "\\u00hh is the worst case: 6x");
	CHECK(!escape_needed("web-1.yaml", ESCAPE_DISPLAY), "nothing to escape");
	CHECK(escape_needed("a\rb", ESCAPE_DISPLAY), "CR needs escaping");
	CHECK(!escape_needed("a\\b", ESCAPE_DISPLAY), "backslash kept for display");
	CHECK(escape_needed("a\\b", ESCAPE_JSON), "backslash escaped in JSON");
	CHECK(escape_needed("x\xc2\x80", ESCAPE_QUOTED), "C1 needs escaping");
	CHECK(escape_str(NULL, ESCAPE_DISPLAY) == NULL, "NULL in, NULL out");
	_cleanup_free_ char *e = escape_str("ok\n", ESCAPE_DISPLAY);
	CHECK_STREQ(e, "ok\\x0a", "escape_str");
}

static void verdict(uid_t uid, mode_t mode, const TrustPolicy *p, bool want, const char *why_has)
{
	struct stat st = { .st_uid = uid, .st_mode = mode };
	_cleanup_free_ char *why = NULL;
	int r = trust_check_stat(&st, p, &why);
	CHECK(want ? r == 0 : r == -EPERM, "uid %u mode %06o: %s", (unsigned)uid, (unsigned)mode,
	      want ? "trusted" : "not trusted");
	if (!want)
		CHECK(why && strstr(why, why_has), "reason \"%s\" says \"%s\"", why ? why : "",
		      why_has);
}

static void test_predicate(void)
{
	uid_t sync_user = 998;
	TrustPolicy none = { 0 }, owners = { .owners = &sync_user, .n_owners = 1 };

	verdict(0, S_IFDIR | 0755, &none, true, NULL);
	verdict(0, S_IFREG | 0644, &none, true, NULL);
	verdict(0, S_IFREG | 0600, &none, true, NULL);
	verdict(0, S_IFDIR | 0775, &none, false, "writable by group (mode 0775)");
	verdict(0, S_IFREG | 0646, &none, false, "writable by others (mode 0646)");
	verdict(0, S_IFDIR | 0777, &none, false, "writable by group and others (mode 0777)");
	/* sshd's rule: a sticky world-writable dir (/tmp) is not trusted. */
	verdict(0, S_IFDIR | 01777, &none, false, "writable by group and others (mode 1777)");
	verdict(1000, S_IFREG | 0644, &none, false,
		"owned by uid 1000, not root or a --spec-owner");
	verdict(998, S_IFREG | 0644, &none, false, "owned by uid 998");
	verdict(998, S_IFREG | 0644, &owners, true, NULL);
	verdict(998, S_IFDIR | 0755, &owners, true, NULL);
	verdict(998, S_IFREG | 0664, &owners, false, "writable by group");
	verdict(999, S_IFREG | 0644, &owners, false, "owned by uid 999");
	/* A symlink's mode bits are always 0777 and mean nothing; its owner does. */
	verdict(0, S_IFLNK | 0777, &none, true, NULL);
	verdict(1000, S_IFLNK | 0777, &none, false, "owned by uid 1000");

	uid_t u;
	CHECK(trust_parse_owner("root", &u) == 0 && u == 0, "--spec-owner root");
	CHECK(trust_parse_owner("4242", &u) == 0 && u == 4242, "--spec-owner by number");
	CHECK(trust_parse_owner("no-such-user-banger", &u) == -ENOENT, "unknown user: -ENOENT");
}

/* A trusted place to build trees in: the tests' root-owned 0755 dir
 * (BANGER_TEST_TMP, as lib.sh's test_tmpdir); /tmp cannot be used (sticky,
 * world-writable: untrusted), nor /run where it is a fresh tmpfs (1777). */
static char *trusted_base(void)
{
	const char *base =
		getenv("BANGER_TEST_TMP") ? getenv("BANGER_TEST_TMP") : "/var/lib/banger-tests";
	if (geteuid() != 0 || mkdir_p(base, 0755) < 0)
		return NULL;
	_cleanup_free_ char *tmpl = xasprintf("%s/banger-test-trust.XXXXXX", base);
	if (!mkdtemp(tmpl))
		return NULL;
	chmod(tmpl, 0755);
	return xstrdup(tmpl);
}

static void put_file(const char *path, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd >= 0) {
		(void)!write(fd, "x\n", 2);
		fchmod(fd, mode);
		close(fd);
	}
}

static void test_dir_path(const char *base)
{
	TrustPolicy none = { 0 };
	_cleanup_free_ char *ok = path_join(base, "ok"), *grp = path_join(base, "grp");
	_cleanup_free_ char *below = path_join(base, "grp/inner"),
			    *link = path_join(base, "current");
	_cleanup_free_ char *why = NULL;
	mkdir(ok, 0755);
	mkdir(grp, 0775);
	chmod(grp, 0775);
	mkdir(below, 0755);
	CHECK(symlink("ok", link) == 0, "git-sync style link");

	CHECK(trust_check_dir_path(ok, &none, &why) == 0, "0755 root dir under a trusted chain");
	CHECK(trust_check_dir_path(link, &none, &why) == 0, "root's symlink to it is fine");
	CHECK(trust_check_dir_path(grp, &none, &why) == -EPERM && strstr(why, "writable by group"),
	      "group-writable spec dir refused: %s", why ? why : "");
	free(why);
	why = NULL;
	CHECK(trust_check_dir_path(below, &none, &why) == -EPERM && strstr(why, grp),
	      "a group-writable parent is named: %s", why ? why : "");
	free(why);
	why = NULL;
	CHECK(lchown(link, 1000, 1000) == 0, "give the link to uid 1000");
	CHECK(trust_check_dir_path(link, &none, &why) == -EPERM && strstr(why, "symlink"),
	      "a link someone else owns is refused: %s", why ? why : "");
	free(why);
	why = NULL;
	uid_t u = 1000;
	TrustPolicy owners = { .owners = &u, .n_owners = 1 };
	CHECK(trust_check_dir_path(link, &owners, &why) == 0, "...unless they are a --spec-owner");
	free(why);
	why = NULL;
	char tmpl[] = "/tmp/banger-test-trust.XXXXXX";
	if (mkdtemp(tmpl)) {
		CHECK(trust_check_dir_path(tmpl, &none, &why) == -EPERM && strstr(why, "/tmp is"),
		      "a dir in /tmp (sticky, 1777) is refused, as sshd does: %s", why ? why : "");
		rmdir(tmpl);
	}
}

static void test_beneath(const char *base)
{
	_cleanup_free_ char *root = path_join(base, "tree"), *sub = path_join(base, "tree/sub");
	_cleanup_free_ char *file = path_join(base, "tree/sub/a.yaml");
	_cleanup_free_ char *outside = path_join(base, "outside");
	_cleanup_free_ char *secret = path_join(base, "outside/a.yaml");
	_cleanup_free_ char *evil = path_join(base, "tree/evil");
	mkdir(root, 0755);
	mkdir(sub, 0755);
	mkdir(outside, 0755);
	put_file(file, 0644);
	put_file(secret, 0644);
	CHECK(symlink(outside, evil) == 0, "a symlink to a directory outside");
	int dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);

	for (int walk = 0; walk < 2; walk++) {
		int (*op)(int, const char *, int) = walk ? openat_beneath_walk : openat_beneath;
		const char *name = walk ? "walk" : "openat2";
		int fd = op(dfd, "sub/a.yaml", O_RDONLY);
		CHECK(fd >= 0, "%s: plain path opens", name);
		CHECK(!(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC) == 0), "%s: O_CLOEXEC", name);
		if (fd >= 0)
			close(fd);
		CHECK_INTEQ(op(dfd, "evil/a.yaml", O_RDONLY), -ELOOP,
			    "%s: a symlinked directory on the way is refused", name);
		CHECK_INTEQ(op(dfd, "evil", O_RDONLY | O_DIRECTORY), -ELOOP,
			    "%s: a symlink as the last component is refused", name);
		CHECK_INTEQ(op(dfd, "../outside/a.yaml", O_RDONLY), -EXDEV,
			    "%s: .. out of the tree is refused", name);
		CHECK(op(dfd, secret, O_RDONLY) < 0, "%s: an absolute path is refused", name);
	}

	/* trust_openat names the part that fails. */
	TrustPolicy none = { 0 };
	struct stat st;
	_cleanup_free_ char *why = NULL;
	int fd = trust_openat(dfd, "sub/a.yaml", &none, O_RDONLY, &st, &why);
	CHECK(fd >= 0 && S_ISREG(st.st_mode), "trusted file opens, stat returned");
	if (fd >= 0)
		close(fd);
	chmod(file, 0666);
	CHECK(trust_openat(dfd, "sub/a.yaml", &none, O_RDONLY, &st, &why) == -EPERM && why &&
		      streq(why, "sub/a.yaml is writable by group and others (mode 0666)"),
	      "0666 file: %s", why ? why : "");
	free(why);
	why = NULL;
	chmod(file, 0644);
	chmod(sub, 0757);
	CHECK(trust_openat(dfd, "sub/a.yaml", &none, O_RDONLY, &st, &why) == -EPERM && why &&
		      streq(why, "sub/ is writable by others (mode 0757)"),
	      "0757 directory on the way: %s", why ? why : "");
	free(why);
	why = NULL;
	chmod(sub, 0755);
	CHECK(chown(file, 65534, 65534) == 0, "file to nobody");
	CHECK(trust_openat(dfd, "sub/a.yaml", &none, O_RDONLY, &st, &why) == -EPERM && why &&
		      strstr(why, "owned by uid 65534"),
	      "nobody's file: %s", why ? why : "");
	close(dfd);
}

static void test_mkdir_modes(const char *base)
{
	_cleanup_free_ char *deep = path_join(base, "mk/a/b");
	_cleanup_free_ char *mid = path_join(base, "mk/a");
	struct stat st;
	mode_t old = umask(0077);
	CHECK(mkdir_p(deep, 0755) == 0, "mkdir_p under umask 077");
	umask(old);
	CHECK(stat(deep, &st) == 0 && (st.st_mode & 07777) == 0755, "leaf is 0755, not 0700");
	CHECK(stat(mid, &st) == 0 && (st.st_mode & 07777) == 0755, "created parent is 0755");
	chmod(mid, 0711);
	CHECK(mkdir_p(deep, 0755) == 0 && stat(mid, &st) == 0 && (st.st_mode & 07777) == 0711,
	      "an existing directory keeps its mode");
}

int main(void)
{
	test_escape();
	test_predicate();
	_cleanup_free_ char *base = trusted_base();
	if (!base) {
		printf("# the file-system tests need root (a trusted dir under /run)\n");
		CHECK(false, "run as root: trust tests need a root-owned tree");
		return tap_done();
	}
	test_dir_path(base);
	test_beneath(base);
	test_mkdir_modes(base);
	CHECK(rm_rf(base) == 0, "clean up %s", base);
	return tap_done();
}
