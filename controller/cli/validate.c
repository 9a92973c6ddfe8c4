/* validate.c — `banger validate`: run the spec parser over files,
 * directories (recursively, with the watcher's file-name filter) and stdin,
 * print every diagnostic, and report names defined twice across files.
 * Static only: never looks at kernels, images or the network. */
#include "cli/cli.h"
#include "spec/spec.h"
#include "spec/specdir.h"
#include "util/escape.h"
#include "util/fileio.h"
#include "util/trust.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

typedef struct {
	char *name, *file;
	unsigned line, col;
} SeenName;

typedef struct {
	SeenName *names;
	size_t n_names;
	size_t files, docs, problems, bad_files;
	TrustPolicy trust; /* root + --spec-owner, as bangerd's */
} Run;

static void usage(FILE *out)
{
	fprintf(out, "Usage: banger validate [--spec-owner USER]... [-f] FILE|DIR|- ...\n"
		     "\n"
		     "Check banger/v1 VM spec files without touching the host.\n"
		     "Directories are searched recursively for *.yaml, *.yml and *.json\n"
		     "exactly as bangerd reads them (dot-files, editor temp files and\n"
		     "*.status.json are skipped; symlinks below the top are not followed);\n"
		     "- reads standard input. Every problem is printed to stderr as\n"
		     "  file:line:col: field.path: message\n"
		     "Below a DIR, files and directories are also held to bangerd's\n"
		     "trust rule (owned by root or a --spec-owner USER, not writable by\n"
		     "group or others; run by another user, that user's files count as\n"
		     "trusted too): one that fails it is reported as untrusted and\n"
		     "not read. Symlinks, FIFOs and directories too deep, which bangerd\n"
		     "skips, are listed as skipped (not a problem).\n"
		     "\n"
		     "Exit status: 0 all valid, 1 problems found (also: a directory with no\n"
		     "spec file), 2 usage error.\n");
}

static void run_free(Run *r)
{
	for (size_t i = 0; i < r->n_names; i++) {
		free(r->names[i].name);
		free(r->names[i].file);
	}
	free(r->names);
	free((uid_t *)r->trust.owners);
}

/* A name defined in an earlier file: report it here, naming the first. */
static void check_cross_file(Run *r, const SpecFile *f, const SpecDoc *doc)
{
	for (size_t i = 0; i < r->n_names; i++) {
		const SeenName *s = &r->names[i];
		if (!streq(s->name, doc->name) || streq(s->file, f->path))
			continue;
		fprintf(stderr, "%s:%u:%u: metadata.name: VM \"%s\" is also defined in %s:%u:%u\n",
			f->path, doc->name_line, doc->name_col, doc->name, s->file, s->line,
			s->col);
		r->problems++;
		return;
	}
	r->names = xrealloc(r->names, (r->n_names + 1) * sizeof(SeenName));
	r->names[r->n_names++] =
		(SeenName){ xstrdup(doc->name), xstrdup(f->path), doc->name_line, doc->name_col };
}

static void report(Run *r, const SpecFile *f)
{
	size_t before = r->problems;

	r->files++;
	for (size_t i = 0; i < f->diags.n; i++) {
		_cleanup_free_ char *line = diag_format(&f->diags.items[i]);
		escape_fputs(stderr, line, ESCAPE_DISPLAY); /* file names are anyone's */
		fputc('\n', stderr);
		r->problems++;
	}
	for (size_t i = 0; i < f->n_docs; i++) {
		r->docs++;
		if (f->docs[i].name && f->docs[i].name_valid)
			check_cross_file(r, f, &f->docs[i]);
	}
	if (f->unreadable && f->diags.n == 0)
		r->problems++; /* cannot happen: unreadable always says why */
	if (r->problems > before)
		r->bad_files++;
}

static void validate_file(Run *r, const char *path)
{
	_cleanup_(spec_file_freep) SpecFile *f = NULL;

	if (spec_parse_file(path, &f) < 0)
		abort();
	report(r, f);
}

/* A file below a directory argument, read as bangerd reads it: through
 * trusted directories only, never through a symlink. */
static void validate_below(Run *r, int rootfd, const char *dir, const char *rel)
{
	_cleanup_free_ char *path = path_join(dir, rel), *why = NULL, *data = NULL;
	_cleanup_(spec_file_freep) SpecFile *f = NULL;
	_cleanup_close_ int fd = -1;
	struct stat st;
	size_t len = 0;

	fd = trust_openat(rootfd, rel, &r->trust, O_RDONLY | O_NONBLOCK | O_NOCTTY, &st, &why);
	if (fd == -EPERM && why) {
		_cleanup_free_ char *msg =
			xasprintf("%s: untrusted: %s; bangerd does not read it", path, why);
		escape_fputs(stderr, msg, ESCAPE_DISPLAY);
		fputc('\n', stderr);
		r->files++;
		r->problems++;
		r->bad_files++;
		return;
	}
	if (fd < 0 || !S_ISREG(st.st_mode) ||
	    read_fd_bounded(fd, SPEC_MAX_FILE_BYTES, &data, &len) < 0) {
		validate_file(r, path); /* gone, swapped, too big: it says which */
		return;
	}
	if (spec_parse_buffer(path, data, len, &f) < 0)
		abort();
	report(r, f);
}

static void print_skip(void *userdata, const char *rel, SpecSkipKind kind)
{
	const char *dir = userdata;
	_cleanup_free_ char *path = path_join(dir, rel);
	_cleanup_free_ char *msg = xasprintf("%s: skipped: %s", path, spec_skip_reason(kind));
	escape_fputs(stderr, msg, ESCAPE_DISPLAY);
	fputc('\n', stderr);
}

/* The directory itself, as bangerd checks its spec dir (its parents are
 * checked by bangerd at start, not here: validate runs on checkouts). */
static void check_dir_trust(Run *r, const char *dir, int fd)
{
	_cleanup_free_ char *why = NULL;
	struct stat st;
	if (fstat(fd, &st) < 0 || trust_check_stat(&st, &r->trust, &why) >= 0)
		return;
	_cleanup_free_ char *msg = xasprintf("%s: untrusted: the directory is %s; bangerd "
					     "refuses it as a spec dir",
					     dir, why);
	escape_fputs(stderr, msg, ESCAPE_DISPLAY);
	fputc('\n', stderr);
	r->problems++;
}

static void validate_stdin(Run *r)
{
	_cleanup_(spec_file_freep) SpecFile *f = NULL;
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int k = read_fd_bounded(STDIN_FILENO, SPEC_MAX_FILE_BYTES, &data, &len);

	if (k < 0) {
		fprintf(stderr, "-:0:0: cannot read standard input: %s\n",
			k == -EFBIG ? "larger than the 1048576 byte limit" : strerror(-k));
		r->files++;
		r->problems++;
		r->bad_files++;
		return;
	}
	if (spec_parse_buffer("-", data, len, &f) < 0)
		abort();
	report(r, f);
}

static void validate_arg(Run *r, const char *arg)
{
	struct stat st;
	size_t files = r->files;

	if (streq(arg, "-")) {
		validate_stdin(r);
		return;
	}
	if (stat(arg, &st) < 0 || !S_ISDIR(st.st_mode)) {
		validate_file(r, arg); /* reports the error, if any */
		return;
	}
	/* Exactly the files bangerd would read from this directory. */
	_cleanup_strv_free_ char **rel = NULL;
	_cleanup_close_ int rootfd = open(arg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int k = rootfd < 0 ? -errno : spec_dir_list_full(arg, print_skip, (void *)arg, &rel);
	if (k < 0) {
		fprintf(stderr, "%s:0:0: cannot read directory: %s\n", arg, strerror(-k));
		r->problems++;
		return;
	}
	check_dir_trust(r, arg, rootfd);
	for (size_t i = 0; rel[i]; i++)
		validate_below(r, rootfd, arg, rel[i]);
	if (r->files == files) {
		/* as `banger apply` does: an empty input is a mistake, not a pass */
		fprintf(stderr,
			"banger validate: %s: no spec files (*.yaml, *.yml, *.json) found\n", arg);
		r->problems++;
	}
}

/* Paths from argv (NULL-terminated, owned by argv); NULL and *ret_exit set
 * on --help or a usage error. */
static char **parse_args(int argc, char **argv, Run *r, int *ret_exit)
{
	char **paths = NULL;
	bool only_paths = false;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (only_paths || streq(a, "-") || a[0] != '-') {
			strv_push(&paths, xstrdup(a));
		} else if (streq(a, "--")) {
			only_paths = true;
		} else if (streq(a, "-f") && i + 1 < argc) {
			strv_push(&paths, xstrdup(argv[++i]));
		} else if ((streq(a, "--spec-owner") && i + 1 < argc) ||
			   startswith(a, "--spec-owner=")) {
			const char *user = a[12] == '=' ? a + 13 : argv[++i];
			uid_t u;
			if (trust_parse_owner(user, &u) < 0) {
				fprintf(stderr,
					"banger validate: --spec-owner: no such user '%s'\n", user);
				*ret_exit = 2;
				strv_free(paths);
				return NULL;
			}
			uid_t *o = xrealloc((uid_t *)r->trust.owners,
					    (r->trust.n_owners + 1) * sizeof(uid_t));
			o[r->trust.n_owners++] = u;
			r->trust.owners = o;
		} else {
			bool help = streq(a, "--help") || streq(a, "-h");
			if (!help)
				fprintf(stderr, "banger validate: %s '%s'\n",
					streq(a, "-f")             ? "missing file after"
					: streq(a, "--spec-owner") ? "missing user after"
								   : "unknown option",
					a);
			usage(help ? stdout : stderr);
			*ret_exit = help ? 0 : 2;
			strv_free(paths);
			return NULL;
		}
	}
	if (!paths) {
		fprintf(stderr, "banger validate: no FILE, DIR or - given\n");
		usage(stderr);
		*ret_exit = 2;
	}
	return paths;
}

int cli_validate(int argc, char **argv)
{
	_cleanup_strv_free_ char **paths = NULL;
	Run r = { 0 };
	int exit_code = 0;

	paths = parse_args(argc, argv, &r, &exit_code);
	if (!paths) {
		run_free(&r);
		return exit_code;
	}
	/* Run by a user on their own checkout (a pre-commit hook, CI): their
	 * files are not the problem bangerd would see on the host, whose owner
	 * is whoever syncs them. As root, the verdict is exactly bangerd's. */
	if (geteuid() != 0) {
		uid_t *o =
			xrealloc((uid_t *)r.trust.owners, (r.trust.n_owners + 1) * sizeof(uid_t));
		o[r.trust.n_owners++] = geteuid();
		r.trust.owners = o;
	}
	for (size_t i = 0; paths[i]; i++)
		validate_arg(&r, paths[i]);
	if (r.problems && r.files == 0) {
		exit_code = 1; /* every directory given was empty: said above */
	} else if (r.problems) {
		fprintf(stderr, "%zu problem%s in %zu of %zu file%s\n", r.problems,
			r.problems == 1 ? "" : "s", r.bad_files, r.files, r.files == 1 ? "" : "s");
		exit_code = 1;
	} else {
		printf("%zu file%s, %zu VM%s: all valid\n", r.files, r.files == 1 ? "" : "s",
		       r.docs, r.docs == 1 ? "" : "s");
	}
	run_free(&r);
	return exit_code;
}
