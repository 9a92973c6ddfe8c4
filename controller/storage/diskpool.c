/* diskpool.c — see diskpool.h. */
#include "storage/diskpool.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/sha256.h"

#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>

#define KEY_LEN 16

bool disk_pool_method_ok(CowMethod m)
{
	return m == COW_QCOW2 || m == COW_REFLINK;
}

/* The key of a spare: what its record says, field by field (a NUL between
 * fields, so no two records give the same bytes). An old record (no spec
 * path or no identity) has none: it is never pooled. */
static bool key_of(const RootBase *b, char ret[KEY_LEN + 1])
{
	if (!b->spec_path || !b->resolved || (b->dev == 0 && b->ino == 0))
		return false;
	_cleanup_free_ char *ident = xasprintf("%llu %llu %llu %lld", (unsigned long long)b->dev,
					       (unsigned long long)b->ino,
					       (unsigned long long)b->size, (long long)b->mtime_ns);
	const char *fields[] = { "banger-disk-pool/1", b->spec_path, b->resolved, ident };
	Sha256 s;
	char hex[65];
	sha256_init(&s);
	for (size_t i = 0; i < ELEMENTSOF(fields); i++)
		sha256_update(&s, fields[i], strlen(fields[i]) + 1);
	sha256_final_hex(&s, hex);
	memcpy(ret, hex, KEY_LEN); /* its first 64 bits */
	ret[KEY_LEN] = 0;
	return true;
}

static char *entry_path(const char *pool_dir, const char *key, CowMethod m)
{
	return xasprintf("%s/%s.%s", pool_dir, key, cow_method_to_string(m));
}

int disk_pool_take(const char *pool_dir, const RootBase *base, bool qemu, const char *vm_dir)
{
	char key[KEY_LEN + 1];
	if (!key_of(base, key))
		return 0;
	/* cow.c's preference among the pooled methods: a reflink copy, then
	 * (QEMU only) a qcow2 overlay. */
	const CowMethod order[] = { COW_REFLINK, COW_QCOW2 };
	for (size_t i = 0; i < (qemu ? 2 : 1); i++) {
		_cleanup_free_ char *e = entry_path(pool_dir, key, order[i]);
		if (rename(e, vm_dir) == 0) {
			log_debug("storage %s: root disk taken from the pool (%s)", vm_dir, e);
			return 1;
		}
		if (errno == ENOENT)
			continue;
		if (errno == EEXIST || errno == ENOTEMPTY)
			return 0; /* vm_dir holds something: not a first boot */
		return log_errno(-errno, "storage: take %s as %s: %m", e, vm_dir);
	}
	return 0;
}

/* Remove a spare safely against a concurrent take: renamed out of its name
 * first (a take that renamed it first wins; this then finds nothing), then
 * removed under the temp name nobody takes. */
static int entry_remove(const char *pool_dir, const char *name)
{
	_cleanup_free_ char *e = path_join(pool_dir, name);
	_cleanup_free_ char *gone = xasprintf("%s/.%s.gone.tmp", pool_dir, name);
	if (rename(e, gone) < 0)
		return errno == ENOENT ? 0 : -errno;
	return rm_rf(gone);
}

static bool is_temp(const char *name)
{
	return name[0] == '.';
}

/* The oldest of at least DISK_POOL_MAX spares goes, so a host whose base
 * images change keeps a bounded pool between restarts. */
static int make_room(const char *pool_dir)
{
	DIR *d = opendir(pool_dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	struct dirent *de;
	size_t n = 0;
	char oldest[NAME_MAX + 1] = "";
	struct timespec t_oldest = { 0 };
	while ((de = readdir(d))) {
		struct stat st;
		if (is_temp(de->d_name) || fstatat(dirfd(d), de->d_name, &st, 0) < 0)
			continue;
		n++;
		if (!oldest[0] || st.st_mtim.tv_sec < t_oldest.tv_sec ||
		    (st.st_mtim.tv_sec == t_oldest.tv_sec &&
		     st.st_mtim.tv_nsec < t_oldest.tv_nsec)) {
			snprintf(oldest, sizeof(oldest), "%s", de->d_name);
			t_oldest = st.st_mtim;
		}
	}
	closedir(d);
	if (n < DISK_POOL_MAX)
		return 0;
	log_info("storage: disk pool %s holds %zu spares: removing the oldest, %s", pool_dir, n,
		 oldest);
	return entry_remove(pool_dir, oldest);
}

/* The spare under its temp name: the record first (its name made durable
 * with the disk's), then the disk (cow.c: temp, fsync, rename, directory
 * fsync). */
static int make_spare(const char *tmp, const RootBase *base, CowMethod m, const char *tag)
{
	int r = mkdir(tmp, 0700) < 0 ? -errno : 0;
	if (r < 0)
		return r;
	if ((r = root_base_write_pending(tmp, base)) < 0)
		return r;
	RootDiskRequest rq = { .vm_dir = tmp,
			       .vm_uid = tag,
			       .base_image = base->resolved,
			       .qemu = m == COW_QCOW2,
			       .method = m };
	RootDisk disk = { 0 };
	r = root_disk_prepare(&rq, &disk);
	root_disk_done(&disk);
	return r;
}

int disk_pool_fill(const char *pool_dir, const RootBase *base, CowMethod m, const char *tag)
{
	char key[KEY_LEN + 1];
	if (!disk_pool_method_ok(m) || !key_of(base, key))
		return 0;
	_cleanup_free_ char *final = entry_path(pool_dir, key, m);
	if (access(final, F_OK) == 0)
		return 0;
	int r = mkdir_p(pool_dir, 0700);
	if (r < 0 || (r = make_room(pool_dir)) < 0)
		return log_errno(r, "storage: disk pool %s: %m", pool_dir);
	_cleanup_free_ char *tmp =
		xasprintf("%s/.%s.%s.%s.tmp", pool_dir, key, cow_method_to_string(m), tag);
	(void)rm_rf(tmp); /* left by a crash: remade below */
	r = make_spare(tmp, base, m, tag);
	/* The base changed while the spare was made: it may hold either. */
	RootBase now = { 0 };
	if (r >= 0 && (root_base_identify(base->spec_path, base->resolved, &now) < 0 ||
		       !root_base_same_file(base, &now)))
		r = 0;
	else if (r >= 0 && rename(tmp, final) < 0)
		r = errno == EEXIST || errno == ENOTEMPTY ? 0 : -errno; /* another fill first */
	else if (r >= 0)
		r = 1;
	root_base_done(&now);
	if (r <= 0) {
		int k = rm_rf(tmp);
		if (k < 0)
			log_warn_errno(k, "storage: remove %s: %m", tmp);
		return r < 0 ? log_errno(r, "storage: make a spare root disk in %s: %m", tmp) : 0;
	}
	if ((r = fsync_path(pool_dir)) < 0)
		return log_errno(r, "storage: fsync %s: %m", pool_dir);
	log_debug("storage: spare root disk %s made", final);
	return 1;
}

/* A spare is kept when its name is the key of its own record, its disk is
 * there, and its record still names the same file. */
static bool spare_valid(const char *pool_dir, const char *name)
{
	const char *dot = strchr(name, '.');
	if (!dot || (size_t)(dot - name) != KEY_LEN)
		return false;
	CowMethod m = cow_method_from_string(dot + 1);
	if (!disk_pool_method_ok(m))
		return false;
	_cleanup_free_ char *dir = path_join(pool_dir, name);
	_cleanup_free_ char *disk = path_join(dir, cow_disk_file_name(m));
	RootBase rec = { 0 }, now = { 0 };
	char key[KEY_LEN + 1];
	bool ok = access(disk, F_OK) == 0 && root_base_read(dir, &rec) >= 0 && key_of(&rec, key) &&
		  strncmp(key, name, KEY_LEN) == 0 &&
		  root_base_identify(rec.spec_path, rec.resolved, &now) >= 0 &&
		  root_base_same_file(&rec, &now);
	root_base_done(&rec);
	root_base_done(&now);
	return ok;
}

int disk_pool_sweep(const char *pool_dir)
{
	DIR *d = opendir(pool_dir);
	if (!d)
		return errno == ENOENT ? 0 : log_errno(-errno, "storage: open %s: %m", pool_dir);
	struct dirent *de;
	int r = 0, n = 0;
	while ((de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		if (!is_temp(de->d_name) && spare_valid(pool_dir, de->d_name))
			continue;
		_cleanup_free_ char *p = path_join(pool_dir, de->d_name);
		int k = rm_rf(p);
		if (k < 0 && r == 0)
			r = log_errno(k, "storage: remove %s: %m", p);
		else if (k >= 0)
			n++;
	}
	closedir(d);
	if (n)
		log_info("storage: disk pool %s: %d half-made or outdated spare(s) removed",
			 pool_dir, n);
	return r;
}
