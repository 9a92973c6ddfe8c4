/* sync.c — see sync.h. */
#include "sync/sync.h"
#include "spec/spec.h"
#include "spec/specdir.h"
#include "util/fileio.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/trust.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

/* Longest diagnostic text kept per name for status messages. */
#define SPEC_ERROR_MAX 2048

typedef struct {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
} Fingerprint;

typedef struct {
	Fingerprint fp; /* all zero: not (fully) stored, parse again next time */
	uint64_t batch; /* the batch it was last parsed in (0: none) */
	bool unreadable;
	bool untrusted;   /* fails the trust rule: never read; file_error says why */
	char **names;     /* valid-label names this file defines (strv) */
	char *file_error; /* when unreadable: the first diagnostic */
} FileEntry;

typedef struct {
	char *owner;      /* rel path */
	char *spec_error; /* NULL: owner's document valid */
	char **claimants; /* other files that define the name, in arrival order */
	char *conflict;   /* rendered message for status, or NULL */
} NameEntry;

struct SpecSync {
	char *spec_dir;
	char *node_name;
	Store *store;
	SpecSyncChanged changed;
	void *userdata;
	Hashmap *files; /* rel → FileEntry */
	Hashmap *names; /* name → NameEntry */
	int dirfd;      /* the spec dir while spec_sync_full runs, else -1 */
	SpecSyncStats stats;
	uint64_t batch; /* id of the open batch (spec_sync_full), 0 outside one */
	uint64_t batches;
	uint64_t last_parse_us; /* read + parse time of the file being applied */
	uid_t *owners;          /* --spec-owner: trusted besides root */
	size_t n_owners;
	Hashmap *skipped;      /* rel → NULL: skips already logged (one line each) */
	Hashmap *skipped_prev; /* during a full sync: the previous one's skips */
	char *root_untrusted;  /* why the spec dir failed its last check, logged once */
	unsigned unopened;     /* files this full sync could not open (EMFILE...) */
};

static void file_entry_free(FileEntry *f)
{
	if (!f)
		return;
	strv_free(f->names);
	free(f->file_error);
	free(f);
}

static void name_entry_free(NameEntry *n)
{
	if (!n)
		return;
	free(n->owner);
	free(n->spec_error);
	strv_free(n->claimants);
	free(n->conflict);
	free(n);
}

/* What a file defines did not reach the store (a failed upsert or COMMIT):
 * forget its fingerprint so the next sync of it parses and applies it again
 * instead of taking it for unchanged. Its names are kept, so names it no
 * longer defines are still released then. */
static void file_mark_unstored(SpecSync *s, const char *rel)
{
	FileEntry *f = hashmap_get(s->files, rel);
	if (f)
		f->fp = (Fingerprint){ 0 };
}

static void notify(SpecSync *s, const char *name)
{
	if (s->changed)
		s->changed(s->userdata, name);
}

static NameEntry *name_entry(SpecSync *s, const char *name, bool create)
{
	NameEntry *n = hashmap_get(s->names, name);
	if (!n && create) {
		n = xcalloc(1, sizeof(NameEntry));
		hashmap_put(s->names, name, n);
	}
	return n;
}

/* Intent already in the store seeds ownership, so "first owner keeps it"
 * holds across controller restarts. */
static int seed_from_store(SpecSync *s)
{
	VmRecord **rows = NULL;
	size_t n = 0;
	int r = store_list_vms(s->store, &rows, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		if (rows[i]->deleted)
			continue;
		NameEntry *e = name_entry(s, rows[i]->name, true);
		free_and_replace_str(&e->owner, rows[i]->source_file);
	}
	vm_record_list_free(rows, n);
	return 0;
}

int spec_sync_new(const char *spec_dir, const char *node_name, Store *store,
		  SpecSyncChanged changed, void *userdata, SpecSync **ret)
{
	SpecSync *s = xcalloc(1, sizeof(SpecSync));
	s->spec_dir = xstrdup(spec_dir);
	s->node_name = xstrdup(node_name);
	s->store = store;
	s->changed = changed;
	s->userdata = userdata;
	s->files = hashmap_new();
	s->names = hashmap_new();
	s->skipped = hashmap_new();
	s->dirfd = -1;
	int r = seed_from_store(s);
	if (r < 0) {
		spec_sync_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

void spec_sync_free(SpecSync *s)
{
	size_t st = 0;
	void *v;
	if (!s)
		return;
	while (hashmap_iter(s->files, &st, NULL, &v))
		file_entry_free(v);
	st = 0;
	while (hashmap_iter(s->names, &st, NULL, &v))
		name_entry_free(v);
	hashmap_free(s->files);
	hashmap_free(s->names);
	hashmap_free(s->skipped);
	free(s->owners);
	free(s->root_untrusted);
	free(s->spec_dir);
	free(s->node_name);
	free(s);
}

void spec_sync_set_owners(SpecSync *s, const uid_t *owners, size_t n)
{
	free(s->owners);
	s->owners = n ? xmalloc(n * sizeof(uid_t)) : NULL;
	if (n)
		memcpy(s->owners, owners, n * sizeof(uid_t));
	s->n_owners = n;
}

static TrustPolicy policy_of(SpecSync *s)
{
	return (TrustPolicy){ .owners = s->owners, .n_owners = s->n_owners };
}

/* One log line per skipped path while it stays skipped. */
static void log_skip(SpecSync *s, const char *rel, const char *why)
{
	if (hashmap_contains(s->skipped, rel))
		return;
	hashmap_put(s->skipped, rel, NULL);
	if (s->skipped_prev && hashmap_contains(s->skipped_prev, rel))
		return; /* still skipped: said so at an earlier sync */
	_cleanup_free_ char *display = spec_sync_display_path(s, rel);
	log_warn("%s: skipped: %s", display, why);
}

static void on_skip(void *userdata, const char *rel, SpecSkipKind kind)
{
	log_skip(userdata, rel, spec_skip_reason(kind));
}

char *spec_sync_display_path(SpecSync *s, const char *rel)
{
	return path_join(s->spec_dir, rel);
}

static void render_conflict(NameEntry *n, const char *name)
{
	free(n->conflict);
	n->conflict = NULL;
	if (strv_length(n->claimants) == 0)
		return;
	_cleanup_free_ char *list = xstrdup("");
	for (size_t i = 0; n->claimants[i]; i++) {
		char *nl = xasprintf("%s%s%s", list, i ? ", " : "", n->claimants[i]);
		free(list);
		list = nl;
	}
	n->conflict = xasprintf("%s also define%s %s; ignored: the name is owned by %s", list,
				strv_length(n->claimants) == 1 ? "s" : "", name,
				n->owner ? n->owner : "another file");
}

static void claimants_remove(NameEntry *n, const char *rel)
{
	size_t k = 0;
	for (size_t i = 0; n->claimants && n->claimants[i]; i++) {
		if (streq(n->claimants[i], rel))
			free(n->claimants[i]);
		else
			n->claimants[k++] = n->claimants[i];
	}
	if (n->claimants)
		n->claimants[k] = NULL;
}

static bool file_defines(SpecSync *s, const char *rel, const char *name)
{
	FileEntry *f = hashmap_get(s->files, rel);
	return f && strv_contains(f->names, name);
}

static bool file_exists(SpecSync *s, const char *rel)
{
	_cleanup_free_ char *p = path_join(s->spec_dir, rel);
	struct stat st;
	return lstat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int sync_file_internal(SpecSync *s, const char *rel, bool force);

/* rel no longer defines name: hand the name to the next claimant, or
 * delete its intent when nobody defines it. */
static void release_name(SpecSync *s, const char *rel, const char *name)
{
	NameEntry *n = name_entry(s, name, false);
	if (!n)
		return;
	if (!streq_ptr(n->owner, rel)) {
		claimants_remove(n, rel);
		render_conflict(n, name);
		notify(s, name);
		return;
	}
	if (strv_length(n->claimants) > 0) {
		_cleanup_free_ char *next = xstrdup(n->claimants[0]);
		claimants_remove(n, next);
		free_and_replace_str(&n->owner, next);
		free(n->spec_error);
		n->spec_error = NULL;
		render_conflict(n, name);
		log_info("%s: now owned by %s (%s no longer defines it)", name, next, rel);
		sync_file_internal(s, next, true);
		return;
	}
	int r = store_mark_deleted(s->store, name);
	if (r >= 0) {
		s->stats.deletes++;
		log_info("%s: intent deleted (no spec file defines it; was %s)", name, rel);
	} else if (r != -ENOENT)
		log_warn_errno(r, "%s: delete intent: %m", name);
	name_entry_free(hashmap_remove(s->names, name));
	notify(s, name);
}

static void forget_file(SpecSync *s, const char *rel)
{
	FileEntry *f = hashmap_remove(s->files, rel);
	if (!f)
		return;
	log_info("%s: removed", rel);
	for (size_t i = 0; f->names && f->names[i]; i++)
		release_name(s, rel, f->names[i]);
	file_entry_free(f);
}

static char *doc_errors(const SpecFile *sf, const SpecDoc *doc, const SpecDoc *next)
{
	/* Diagnostics are in file order; those between this document's line and
	 * the next document's belong to it. */
	_cleanup_free_ char *out = xstrdup("");
	for (size_t i = 0; i < sf->diags.n; i++) {
		const Diag *d = &sf->diags.items[i];
		if (d->line < doc->line || (next && d->line >= next->line))
			continue;
		_cleanup_free_ char *one = diag_format(d);
		if (strlen(out) + strlen(one) + 2 > SPEC_ERROR_MAX)
			break;
		char *n = xasprintf("%s%s%s", out, out[0] ? "; " : "", one);
		free(out);
		out = n;
	}
	if (!out[0])
		free_and_replace_str(&out, "invalid document");
	return TAKE_PTR(out);
}

static void apply_doc(SpecSync *s, const char *rel, const SpecFile *sf, size_t i)
{
	const SpecDoc *doc = &sf->docs[i];
	NameEntry *n = name_entry(s, doc->name, true);

	/* The recorded owner (from the store, at start) has not been read yet:
	 * read it first, or walk order would decide who owns the name. */
	if (n->owner && !streq(n->owner, rel) && !hashmap_contains(s->files, n->owner) &&
	    file_exists(s, n->owner)) {
		_cleanup_free_ char *owner = xstrdup(n->owner);
		sync_file_internal(s, owner, false);
		n = name_entry(s, doc->name, true);
	}
	bool was_new = !n->owner;

	if (n->owner && !streq(n->owner, rel) && file_defines(s, n->owner, doc->name) &&
	    file_exists(s, n->owner)) {
		if (!strv_contains(n->claimants, rel)) {
			strv_push(&n->claimants, xstrdup(rel));
			log_warn("%s: also defined in %s; ignored (owned by %s)", doc->name, rel,
				 n->owner);
		}
		render_conflict(n, doc->name);
		notify(s, doc->name);
		return;
	}
	if (!was_new && !streq(n->owner, rel))
		log_info("%s: moved from %s to %s", doc->name, n->owner, rel);
	free_and_replace_str(&n->owner, rel);
	claimants_remove(n, rel);
	render_conflict(n, doc->name);
	free(n->spec_error);
	n->spec_error = NULL;
	if (!doc->spec) {
		n->spec_error = doc_errors(sf, doc, i + 1 < sf->n_docs ? &sf->docs[i + 1] : NULL);
		log_warn("%s: invalid spec in %s, keeping the last good intent: %s", doc->name, rel,
			 n->spec_error);
		notify(s, doc->name);
		return;
	}
	int64_t gen = 0;
	uint64_t t0 = time_now_us();
	int r = store_upsert_vm(s->store, doc->spec, rel, &gen);
	if (r < 0) {
		n->spec_error = xasprintf("store: %s", strerror(-r));
		file_mark_unstored(s, rel);
	} else if (r != STORE_UPSERT_UNCHANGED) {
		static const char *const what[] = { "unchanged", "created", "updated", "moved" };
		s->stats.upserts++;
		log_info("%s: intent %s from %s (generation %lld)", doc->name, what[r], rel,
			 (long long)gen);
		log_debug("%s: timing: parse %.3f ms, store %.3f ms", doc->name,
			  s->last_parse_us / 1000.0, (time_now_us() - t0) / 1000.0);
	}
	notify(s, doc->name);
}

static void fingerprint_of(const struct stat *st, Fingerprint *fp)
{
	*fp = (Fingerprint){ .dev = st->st_dev,
			     .ino = st->st_ino,
			     .size = st->st_size,
			     .mtime = st->st_mtim,
			     .ctime = st->st_ctim };
}

static bool fingerprint_equal(const Fingerprint *a, const Fingerprint *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* Open rel below the spec dir, one trusted directory at a time: every
 * directory on the way and the file itself must pass the trust rule
 * (util/trust.h), and no symlink is followed below the top, even one
 * swapped in for a directory after the event that named the file
 * (openat_beneath). Non-blocking so a FIFO cannot stall the loop.
 * -EPERM with *ret_why when something fails the rule. */
static int open_spec(SpecSync *s, const char *rel, struct stat *ret_st, char **ret_why)
{
	TrustPolicy pol = policy_of(s);
	_cleanup_free_ char *why = NULL;
	/* During a full sync the spec dir is open already (s->dirfd). */
	_cleanup_close_ int own =
		s->dirfd >= 0 ? -1 : open(s->spec_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int dir = s->dirfd >= 0 ? s->dirfd : own;
	struct stat st;

	if (dir < 0 || fstat(dir, &st) < 0)
		return -errno;
	if (trust_check_stat(&st, &pol, &why) < 0) {
		*ret_why = xasprintf("the spec dir %s is %s", s->spec_dir, why);
		return -EPERM;
	}
	int fd = trust_openat(dir, rel, &pol, O_RDONLY | O_NONBLOCK | O_NOCTTY, &st, ret_why);
	if (fd >= 0 && !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if (fd >= 0)
		*ret_st = st;
	return fd;
}

static SpecFile *parse_fd(SpecSync *s, const char *rel, int fd)
{
	_cleanup_free_ char *data = NULL;
	_cleanup_free_ char *display = spec_sync_display_path(s, rel);
	size_t len = 0;
	SpecFile *sf = NULL;
	int r = read_fd_bounded(fd, SPEC_MAX_FILE_BYTES, &data, &len);
	if (r < 0) {
		spec_parse_buffer(display, "", 0, &sf);
		sf->unreadable = true;
		if (r == -EFBIG)
			diags_add(&sf->diags, display, 0, 0, "", "file is larger than %d bytes",
				  SPEC_MAX_FILE_BYTES);
		else
			diags_add(&sf->diags, display, 0, 0, "", "cannot read file: %s",
				  strerror(-r));
		return sf;
	}
	spec_parse_buffer(display, data, len, &sf);
	return sf;
}

/* Documents for another node are not ours to act on or report. */
static void drop_other_nodes(SpecSync *s, SpecFile *sf)
{
	size_t k = 0;
	for (size_t i = 0; i < sf->n_docs; i++) {
		SpecDoc *d = &sf->docs[i];
		if (d->spec && d->spec->node && !streq(d->spec->node, s->node_name)) {
			log_debug("%s: for node %s, not %s; ignored", d->name, d->spec->node,
				  s->node_name);
			free(d->name);
			vm_spec_free(d->spec);
			continue;
		}
		sf->docs[k++] = *d;
	}
	sf->n_docs = k;
}

/* The file still has the fingerprint we parsed it with. One lstat instead of
 * open+fstat+close: a no-op resync asks this of every file. A symlink, FIFO
 * or missing file never matches a recorded regular file, so those take the
 * open path, which handles them. */
static bool unchanged(SpecSync *s, const char *rel, const FileEntry *old)
{
	struct stat st;
	Fingerprint fp;
	if (s->dirfd >= 0) { /* relative: no walk down spec_dir's components */
		if (fstatat(s->dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return false;
	} else {
		_cleanup_free_ char *p = path_join(s->spec_dir, rel);
		if (lstat(p, &st) < 0)
			return false;
	}
	if (!S_ISREG(st.st_mode) || old->untrusted)
		return false; /* an untrusted file is looked at again: it may be fixed */
	fingerprint_of(&st, &fp);
	return fingerprint_equal(&old->fp, &fp);
}

/* An event may name a file the listing would not reach (deeper than
 * SPEC_DIR_MAX_DEPTH): both must agree, or the next full sync would delete
 * what the event created. Logs the directory not entered, once. */
static bool too_deep(SpecSync *s, const char *rel)
{
	unsigned slashes = 0;
	const char *p = rel, *cut = NULL;
	for (; *p; p++)
		if (*p == '/' && ++slashes == SPEC_DIR_MAX_DEPTH + 1)
			cut = p;
	if (!cut)
		return false;
	_cleanup_free_ char *dir = xstrndup(rel, (size_t)(cut - rel));
	log_skip(s, dir, spec_skip_reason(SPEC_SKIP_TOO_DEEP));
	return true;
}

/* Names rel owns now: from the index, or at start from the store. */
static char **names_owned_by(SpecSync *s, const char *rel, const FileEntry *old)
{
	char **out = NULL;
	size_t st = 0;
	const char *name;
	void *v;
	for (size_t i = 0; old && old->names && old->names[i]; i++)
		strv_push(&out, xstrdup(old->names[i]));
	while (hashmap_iter(s->names, &st, &name, &v)) {
		NameEntry *n = v;
		if (streq_ptr(n->owner, rel) && !strv_contains(out, name))
			strv_push(&out, xstrdup(name));
	}
	return out;
}

/* rel fails the trust rule: it is not read, creates no intent, and every
 * VM it defined keeps its last good intent with SpecValid=False saying why. */
static int keep_untrusted(SpecSync *s, const char *rel, const FileEntry *old, const char *why)
{
	_cleanup_free_ char *display = spec_sync_display_path(s, rel);
	_cleanup_free_ char *msg = xasprintf("untrusted spec file: %s; not read (see "
					     "\"Spec dir trust\" in docs/operations.md)",
					     why);
	FileEntry *f = xcalloc(1, sizeof(FileEntry));
	f->untrusted = true;
	f->file_error = xstrdup(msg);
	f->names = names_owned_by(s, rel, old);
	/* One log line and one requeue per new reason, not one per resync. */
	bool news = !old || !streq_ptr(old->file_error, msg);
	if (news)
		log_warn("%s: %s", display, msg);
	for (size_t i = 0; f->names && f->names[i]; i++) {
		NameEntry *n = name_entry(s, f->names[i], false);
		if (n && streq_ptr(n->owner, rel)) {
			free_and_replace_str(&n->spec_error, msg);
			if (news)
				notify(s, f->names[i]);
		}
	}
	file_entry_free(hashmap_put(s->files, rel, f));
	s->stats.files_seen++;
	return 0;
}

static int sync_file_internal(SpecSync *s, const char *rel, bool force)
{
	struct stat st = { 0 };
	Fingerprint fp;
	FileEntry *old = hashmap_get(s->files, rel);
	_cleanup_close_ int fd = -1;

	if (!spec_path_is_candidate(rel))
		return 0;
	if (too_deep(s, rel))
		return 0;
	if (old && !force && unchanged(s, rel, old)) {
		s->stats.files_seen++;
		return 0;
	}
	_cleanup_free_ char *untrusted_why = NULL;
	fd = open_spec(s, rel, &st, &untrusted_why);
	if (fd == -EPERM && untrusted_why)
		return keep_untrusted(s, rel, old, untrusted_why);
	if (fd < 0) {
		if (fd == -ELOOP)
			log_skip(s, rel, spec_skip_reason(SPEC_SKIP_SYMLINK));
		else if (fd == -EINVAL)
			log_skip(s, rel, spec_skip_reason(SPEC_SKIP_SPECIAL));
		else if (fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM) {
			/* Not the file's fault: keep what we know, retry at resync
			 * (and let no full sync delete the intent it backs). */
			log_errno(fd, "%s: cannot open: %m; keeping its intent", rel);
			s->unopened++;
			return fd;
		}
		forget_file(s, rel);
		return 0;
	}
	hashmap_remove(s->skipped, rel);
	fingerprint_of(&st, &fp);
	s->stats.files_seen++;
	if (old && !force && fingerprint_equal(&old->fp, &fp))
		return 0;

	uint64_t t0 = time_now_us();
	_cleanup_(spec_file_freep) SpecFile *sf = parse_fd(s, rel, fd);
	s->last_parse_us = time_now_us() - t0;
	s->stats.files_parsed++;
	drop_other_nodes(s, sf);
	FileEntry *f = xcalloc(1, sizeof(FileEntry));
	f->fp = fp;
	f->batch = s->batch;
	f->unreadable = sf->unreadable;
	for (size_t i = 0; i < sf->n_docs; i++)
		if (sf->docs[i].name && sf->docs[i].name_valid &&
		    !strv_contains(f->names, sf->docs[i].name))
			strv_push(&f->names, xstrdup(sf->docs[i].name));
	if (sf->unreadable) {
		f->file_error =
			sf->diags.n ? diag_format(&sf->diags.items[0]) : xstrdup("unreadable");
		log_warn("%s: cannot be read as a whole, keeping the intent it defined: %s", rel,
			 f->file_error);
		/* Keep every name the file defined before: we cannot tell which
		 * documents are still in it. */
		for (size_t i = 0; old && old->names && old->names[i]; i++) {
			if (!strv_contains(f->names, old->names[i]))
				strv_push(&f->names, xstrdup(old->names[i]));
			NameEntry *n = name_entry(s, old->names[i], false);
			if (n && streq_ptr(n->owner, rel)) {
				free(n->spec_error);
				n->spec_error = xstrdup(f->file_error);
				notify(s, old->names[i]);
			}
		}
	} else if (sf->diags.n > 0 && sf->n_docs == 0) {
		log_warn("%s: %s", rel, sf->diags.items[0].message);
	}
	/* A document without a usable name has no status file to carry its
	 * errors: the log is the only place they show (and `banger validate`). */
	for (size_t i = 0; i < sf->n_docs; i++) {
		if (sf->docs[i].name && sf->docs[i].name_valid)
			continue;
		_cleanup_free_ char *why = sf->diags.n ? diag_format(&sf->diags.items[0]) : NULL;
		log_warn("%s: document at line %u has no valid metadata.name; ignored%s%s", rel,
			 sf->docs[i].line, why ? ": " : "", why ? why : "");
	}
	/* Names the file stopped defining. */
	char **gone = NULL;
	for (size_t i = 0; old && old->names && old->names[i]; i++)
		if (!strv_contains(f->names, old->names[i]))
			strv_push(&gone, xstrdup(old->names[i]));
	file_entry_free(hashmap_put(s->files, rel, f));
	for (size_t i = 0; gone && gone[i]; i++)
		release_name(s, rel, gone[i]);
	strv_free(gone);
	for (size_t i = 0; i < sf->n_docs; i++)
		if (sf->docs[i].name && sf->docs[i].name_valid)
			apply_doc(s, rel, sf, i);
	return 1;
}

int spec_sync_file(SpecSync *s, const char *rel)
{
	return sync_file_internal(s, rel, false);
}

bool spec_sync_knows_file(SpecSync *s, const char *rel)
{
	return hashmap_contains(s->files, rel);
}

/* Intent the files no longer back: its owner is gone or does not define it.
 * Reads only names and owners: whole records for 10,000 VMs were half the CPU
 * of a no-op resync (docs/benchmarks.md). */
static void drop_unbacked_intent(SpecSync *s)
{
	_cleanup_strv_free_ char **names = NULL, **sources = NULL;
	if (store_list_live_owners(s->store, &names, &sources) < 0)
		return;
	for (size_t i = 0; names[i]; i++) {
		const char *name = names[i];
		NameEntry *e = name_entry(s, name, false);
		if (e && e->owner && file_defines(s, e->owner, name))
			continue;
		if (!e) {
			e = name_entry(s, name, true);
			free_and_replace_str(&e->owner, sources[i]);
		}
		release_name(s, e->owner, name);
	}
}

/* The batch's COMMIT failed (err: disk full, I/O error) and was rolled back:
 * nothing parsed in it was stored. Each name those files own says so in its
 * status ("store: No space left on device"), as a failed upsert does, until
 * a sync stores it: without that the name would look valid while the store
 * has no row for it, and a new VM would read as deleted. Deletions need no
 * help: the next full sync finds the rows whose file is gone
 * (drop_unbacked_intent). */
static void batch_unstored(SpecSync *s, int err)
{
	size_t st = 0, n = 0;
	const char *rel;
	void *v;
	while (hashmap_iter(s->files, &st, &rel, &v)) {
		FileEntry *f = v;
		if (f->batch != s->batch)
			continue;
		f->fp = (Fingerprint){ 0 };
		n++;
		for (size_t i = 0; f->names && f->names[i]; i++) {
			NameEntry *e = name_entry(s, f->names[i], false);
			if (!e || !streq_ptr(e->owner, rel) || e->spec_error)
				continue;
			e->spec_error = xasprintf("store: %s", strerror(-err));
			notify(s, f->names[i]);
		}
	}
	log_warn("spec sync: the store did not take this sync's changes; %zu file(s) will be "
		 "read again at the next sync",
		 n);
}

void spec_sync_begin_batch(SpecSync *s)
{
	s->batch = ++s->batches;
}

void spec_sync_end_batch(SpecSync *s, int r)
{
	if (r < 0 && s->batch)
		batch_unstored(s, r);
	s->batch = 0;
}

static int sync_all(SpecSync *s, char **paths)
{
	/* Files we knew that are gone (paths is sorted: bsearch, no copies);
	 * collected first because forgetting one changes s->files, and sorted
	 * so the order does not depend on hashing. */
	_cleanup_strv_free_ char **gone = NULL;
	size_t n = strv_length(paths), st = 0;
	const char *rel;
	while (hashmap_iter(s->files, &st, &rel, NULL))
		if (!bsearch(&rel, paths, n, sizeof(char *), strcmp_ptr))
			strv_push(&gone, xstrdup(rel));
	if (gone)
		qsort(gone, strv_length(gone), sizeof(char *), strcmp_ptr);
	int r = store_begin(s->store);
	if (r < 0)
		return r;
	s->batch = ++s->batches;
	for (size_t i = 0; gone && gone[i]; i++)
		forget_file(s, gone[i]);
	s->unopened = 0;
	for (size_t i = 0; paths[i]; i++)
		sync_file_internal(s, paths[i], false);
	if (s->unopened) {
		/* Files we could not open may back intent: deleting it would
		 * tear down running VMs because we ran out of fds. */
		r = store_commit(s->store);
		return log_errno(-EMFILE,
				 "full sync incomplete: %u spec file(s) could not be "
				 "opened (%s); no intent deleted, retried at the next resync",
				 s->unopened,
				 r < 0 ? "and the commit failed" : "out of file descriptors");
	}
	drop_unbacked_intent(s);
	r = store_commit(s->store);
	spec_sync_end_batch(s, r);
	return r;
}

/* The spec dir and its parents still pass the start-up check: git-sync may
 * have pointed the link at a new checkout. Logged once per new reason. */
static int check_root(SpecSync *s)
{
	TrustPolicy pol = policy_of(s);
	_cleanup_free_ char *why = NULL;
	int r = trust_check_dir_path(s->spec_dir, &pol, &why);
	if (r >= 0) {
		free_and_replace_str(&s->root_untrusted, NULL);
		return 0;
	}
	if (!streq_ptr(s->root_untrusted, why))
		log_errno(r,
			  "spec dir %s is not trusted: %s; nothing in it is read until that "
			  "is fixed, every VM keeps its intent",
			  s->spec_dir, why);
	free_and_replace_str(&s->root_untrusted, why);
	return r;
}

int spec_sync_full(SpecSync *s)
{
	_cleanup_strv_free_ char **paths = NULL;
	int r = check_root(s);
	if (r < 0)
		return r;
	s->skipped_prev = s->skipped;
	s->skipped = hashmap_new();
	r = spec_dir_list_full(s->spec_dir, on_skip, s, &paths);
	if (r < 0) {
		/* A partial list would read as deleted files: change nothing. */
		hashmap_free(s->skipped);
		s->skipped = TAKE_PTR(s->skipped_prev);
		return log_errno(r,
				 "read spec dir %s: %m; nothing changed, retried at the next "
				 "resync",
				 s->spec_dir);
	}
	/* -1 on failure just means unchanged() walks full paths. The dir may be
	 * swapped meanwhile; harmless: a fingerprint names one inode. */
	s->dirfd = open(s->spec_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	r = sync_all(s, paths);
	if (s->dirfd >= 0)
		close(s->dirfd);
	s->dirfd = -1;
	hashmap_free(TAKE_PTR(s->skipped_prev));
	return r;
}

bool spec_sync_name_info(SpecSync *s, const char *name, SpecNameInfo *ret)
{
	NameEntry *n = name_entry(s, name, false);
	if (!n || !n->owner)
		return false;
	*ret = (SpecNameInfo){ .owner = n->owner,
			       .spec_error = n->spec_error,
			       .conflict = n->conflict };
	return true;
}

void spec_sync_stats(SpecSync *s, SpecSyncStats *ret)
{
	*ret = s->stats;
}

size_t spec_sync_error_count(SpecSync *s)
{
	size_t st = 0, n = 0;
	void *v;
	while (hashmap_iter(s->names, &st, NULL, &v))
		if (((NameEntry *)v)->spec_error)
			n++;
	return n;
}
