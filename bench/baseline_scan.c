/* baseline_scan SPEC_DIR K — the floor under a no-op resync: what it costs a
 * bare C program to establish that none of N files changed.
 *
 * One untimed pass records (inode, size, mtime, ctime) of every *.yaml, keyed
 * by name in an open-addressing table. Then K timed passes each readdir the
 * directory, fstatat() every entry and compare with the table — the same
 * fingerprint test bangerd's sync makes, minus its bookkeeping. Reports CPU
 * time per pass (getrusage, microsecond resolution) and wall time. */
#include "bench.h"

#include <dirent.h>

typedef struct {
	char *name;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
} Fp;

typedef struct {
	Fp *slots;
	size_t cap;
} Table;

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static Fp *slot(Table *t, const char *name)
{
	size_t i = hash(name) & (t->cap - 1);
	while (t->slots[i].name && strcmp(t->slots[i].name, name) != 0)
		i = (i + 1) & (t->cap - 1);
	return &t->slots[i];
}

static bool same(const Fp *f, const struct stat *st)
{
	return f->ino == st->st_ino && f->size == st->st_size &&
	       f->mtime.tv_sec == st->st_mtim.tv_sec && f->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	       f->ctime.tv_sec == st->st_ctim.tv_sec && f->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

/* One pass; returns how many files differ from the table (recording them). */
static size_t pass(Table *t, const char *dir, size_t *ret_seen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t changed = 0, seen = 0;
	if (!d)
		die("opendir %s: %m", dir);
	while ((de = readdir(d))) {
		struct stat st;
		if (de->d_name[0] == '.' || !ends_with(de->d_name, ".yaml"))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		seen++;
		Fp *f = slot(t, de->d_name);
		if (f->name && same(f, &st))
			continue;
		changed++;
		if (!f->name)
			f->name = strdup(de->d_name);
		*f = (Fp){ .name = f->name,
			   .ino = st.st_ino,
			   .size = st.st_size,
			   .mtime = st.st_mtim,
			   .ctime = st.st_ctim };
	}
	closedir(d);
	*ret_seen = seen;
	return changed;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		die("usage: baseline_scan SPEC_DIR K");
	int k = (int)strtol(argv[2], NULL, 10);
	Table t = { .cap = 1 << 20 };
	t.slots = calloc(t.cap, sizeof(Fp));
	size_t seen = 0, changed = 0;
	if (!t.slots || k <= 0)
		die("baseline_scan: bad K or out of memory");
	pass(&t, argv[1], &seen); /* populate */
	uint64_t c0 = self_cpu_us(), t0 = now_ns();
	for (int i = 0; i < k; i++)
		changed += pass(&t, argv[1], &seen);
	uint64_t c1 = self_cpu_us(), t1 = now_ns();
	printf("files=%zu\n", seen);
	printf("changed=%zu\n", changed);
	printf("cpu_ms_per_pass=%.2f\n", (double)(c1 - c0) / 1e3 / k);
	printf("wall_ms_per_pass=%.2f\n", (double)(t1 - t0) / 1e6 / k);
	return 0;
}
