/* suspend.c — see suspend.h. The order is the point:
 *
 *   save:    rm suspend.tmp/ → mkdir → VMM writes its files (guest paused)
 *            → fsync + hash each → rename suspend.tmp/ → suspend/ → fsync
 *            dir → write suspend.json (atomic: the commit) → end the VMM
 *            Any failure before the commit continues the guest.
 *   discard: unlink suspend.json (durable) → rm suspend/, suspend.tmp/
 */
#include "runtime/suspend.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/proc.h"
#include "util/sha256.h"
#include "util/timeutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <sys/stat.h>

#define RECORD_NAME     "suspend.json"
#define RECORD_MAX      (1024 * 1024)
#define SAVED_FILES_MAX 8
/* Files up to this size get a SHA-256 (checked before a resume); larger
 * ones (a Firecracker memory file is memoryMiB) only their size: hashing
 * GiBs would hold the event loop for seconds at every save and resume. */
#define SAVED_HASH_MAX (64ULL << 20)

void saved_state_done(SavedState *s)
{
	free(s->problem);
	free(s->vmm_version);
	*s = (SavedState){ 0 };
}

char *vm_saved_dir(Runtime *rt, const char *uid)
{
	_cleanup_(vm_paths_done) VmPaths p = { 0 };
	vm_paths_for(rt, uid, &p);
	return path_join(p.vm_dir, "suspend");
}

static char *vm_sub(Runtime *rt, const char *uid, const char *name)
{
	_cleanup_(vm_paths_done) VmPaths p = { 0 };
	vm_paths_for(rt, uid, &p);
	return path_join(p.vm_dir, name);
}

/* ---- identity of the VMM binary -------------------------------------------- */

static json_object *binary_identity(const VmmDriver *drv, const VmmSettings *s)
{
	_cleanup_free_ char *path = NULL;
	struct stat st;
	if (!drv->binary || drv->binary(s, &path) < 0 || stat(path, &st) < 0)
		return NULL;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "path", json_object_new_string(path));
	json_object_object_add(o, "size", json_object_new_int64((int64_t)st.st_size));
	json_object_object_add(o, "mtimeNs",
			       json_object_new_int64((int64_t)st.st_mtim.tv_sec * 1000000000 +
						     st.st_mtim.tv_nsec));
	json_object_object_add(o, "ino", json_object_new_int64((int64_t)st.st_ino));
	return o;
}

/* ---- hashing ---------------------------------------------------------------- */

static int hash_fd(int fd, char out[65], uint64_t *ret_size)
{
	_cleanup_free_ uint8_t *buf = xmalloc(1 << 20);
	Sha256 h;
	uint64_t total = 0;
	sha256_init(&h);
	for (;;) {
		ssize_t n = read(fd, buf, 1 << 20);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		sha256_update(&h, buf, (size_t)n);
		total += (uint64_t)n;
	}
	sha256_final_hex(&h, out);
	*ret_size = total;
	return 0;
}

/* fsync and hash every file the VMM wrote; the record's "files". */
static int seal_files(const char *dir, json_object *files, uint64_t *ret_total)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	struct dirent *de;
	int r = 0, n = 0;
	*ret_total = 0;
	while (r >= 0 && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (++n > SAVED_FILES_MAX) {
			r = -E2BIG;
			break;
		}
		_cleanup_free_ char *p = path_join(dir, de->d_name);
		_cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		char hex[65];
		struct stat st;
		uint64_t size = 0;
		if (fd < 0 || fsync(fd) < 0 || fstat(fd, &st) < 0) {
			r = -errno;
			break;
		}
		size = (uint64_t)st.st_size;
		bool hashed = size <= SAVED_HASH_MAX;
		if (hashed && (r = hash_fd(fd, hex, &size)) < 0)
			break;
		json_object *f = json_object_new_object();
		json_object_object_add(f, "name", json_object_new_string(de->d_name));
		json_object_object_add(f, "size", json_object_new_int64((int64_t)size));
		json_object_object_add(f, "sha256", hashed ? json_object_new_string(hex) : NULL);
		json_object_array_add(files, f);
		*ret_total += size;
	}
	closedir(d);
	if (r >= 0 && n == 0)
		r = -ENODATA;
	return r;
}

/* ---- save -------------------------------------------------------------------- */

static int write_record(const char *path, const VmHandles *h, const char *version,
			json_object *binary, json_object *files, int64_t now)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "savedAtMs", json_object_new_int64(now));
	json_object_object_add(o, "vmm", json_object_new_string(h->vmm ? h->vmm : ""));
	json_object_object_add(o, "vmmVersion", json_object_new_string(version ? version : ""));
	json_object_object_add(o, "binary", binary ? json_object_get(binary) : NULL);
	json_object_object_add(o, "spec", json_object_new_string(h->spec_json ? h->spec_json : ""));
	json_object_object_add(o, "files", json_object_get(files));
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	int r = write_file_atomic(path, text, strlen(text), 0600);
	json_object_put(o);
	return r;
}

/* Everything after the VMM saved its files, up to the commit record. */
static int commit_save(Runtime *rt, const char *uid, const VmHandles *h, const VmmDriver *drv,
		       const char *tmp, const char *version, SavedState *ret, char **ret_error)
{
	_cleanup_free_ char *final = vm_saved_dir(rt, uid), *rec = vm_sub(rt, uid, RECORD_NAME);
	json_object *files = json_object_new_array();
	json_object *binary = binary_identity(drv, runtime_vmm_settings(rt));
	uint64_t total = 0;
	int64_t now = time_now_realtime_ms();
	int r = seal_files(tmp, files, &total);
	if (r < 0)
		*ret_error = xasprintf("seal saved files in %s: %s", tmp, strerror(-r));
	else if ((r = rm_rf(final)) < 0 && r != -ENOENT)
		*ret_error = xasprintf("remove old %s: %s", final, strerror(-r));
	else if (rename(tmp, final) < 0 || (r = fsync_directory_of(final)) < 0) {
		r = r < 0 ? r : -errno;
		*ret_error = xasprintf("rename %s: %s", tmp, strerror(-r));
	} else if ((r = write_record(rec, h, version, binary, files, now)) < 0)
		*ret_error = xasprintf("write %s: %s", rec, strerror(-r));
	json_object_put(files);
	json_object_put(binary);
	if (r >= 0 && ret) {
		*ret = (SavedState){ .saved = true,
				     .intact = true,
				     .boot_equal = true,
				     .vmm_equal = true,
				     .saved_at_ms = now,
				     .size = total,
				     .vmm_version = xstrdup(version ? version : "") };
	}
	return r < 0 ? r : 0;
}

int vm_suspend(Runtime *rt, const char *name, const char *uid, const char *api_sock,
	       unsigned timeout_ms, SavedState *ret, char **ret_error)
{
	VmHandles *h = handle_cache_get(runtime_cache(rt), name);
	const VmmDriver *drv = runtime_driver_of(rt, name);
	*ret_error = NULL;
	if (!h || !vm_alive(rt, name)) {
		*ret_error = xstrdup("the VMM is not running");
		return -ESRCH;
	}
	if (!drv->save_state) {
		*ret_error = xasprintf("the %s driver cannot save a guest's state", drv->name);
		return -EOPNOTSUPP;
	}
	_cleanup_free_ char *tmp = vm_sub(rt, uid, "suspend.tmp"), *version = NULL;
	int r = rm_rf(tmp);
	if ((r < 0 && r != -ENOENT) || (r = mkdir_p(tmp, 0700)) < 0) {
		*ret_error = xasprintf("prepare %s: %s", tmp, strerror(-r));
		return r;
	}
	uint64_t t0 = time_now_ms();
	r = drv->save_state(api_sock, tmp, timeout_ms, &version, ret_error);
	if (r < 0) {
		rm_rf(tmp);
		return r;
	}
	uint64_t t1 = time_now_ms();
	runtime_crashpoint("suspend-saved"); /* guest paused, nothing committed */
	r = commit_save(rt, uid, h, drv, tmp, version, ret, ret_error);
	if (r < 0) {
		/* Not committed: the guest runs on; nothing half-saved stays. */
		drv->finish_save(api_sock, false);
		rm_rf(tmp);
		return r;
	}
	runtime_crashpoint("suspend-committed"); /* committed, the VMM not ended */
	log_info("%s: state saved (%llu bytes) in %llu ms, committed in %llu ms", name,
		 ret ? (unsigned long long)ret->size : 0ULL, (unsigned long long)(t1 - t0),
		 (unsigned long long)(time_now_ms() - t1));
	if (drv->finish_save(api_sock, true) < 0) {
		/* The state is safe and the disks flushed: ending it by force
		 * loses nothing. */
		int k = vm_kill(rt, name);
		if (k < 0 && k != -ESRCH)
			log_warn_errno(k, "%s: end the VMM after the save: %m", name);
	}
	return 0;
}

/* ---- after a controller crash ------------------------------------------------------ */

int vm_saved_recover(Runtime *rt, const char *name, const char *uid, const char *api_sock)
{
	_cleanup_free_ char *rec = vm_sub(rt, uid, RECORD_NAME),
			    *tmp = vm_sub(rt, uid, "suspend.tmp");
	const VmmDriver *drv = runtime_driver_of(rt, name);
	if (!drv->finish_save || !api_sock)
		return 0;
	if (access(rec, F_OK) == 0) {
		/* The save was committed; only the end of the VMM is missing. The
		 * guest has been paused since: the state matches its disks. */
		log_warn("%s: found a committed saved state and its VMM still running (the last "
			 "controller died before ending it): ending it now",
			 name);
		VmHandles *h = handle_cache_get(runtime_cache(rt), name);
		/* Ended before the first pass looks (bounded), so that pass does
		 * not try to save it again. */
		if (drv->finish_save(api_sock, true) < 0 || !h ||
		    proc_wait_exit(h->pid, h->pid_start_time, 5000) < 0) {
			int k = vm_kill(rt, name);
			if (k < 0 && k != -ESRCH)
				return log_errno(k, "%s: end the VMM of a committed save: %m",
						 name);
		}
		return 1;
	}
	if (access(tmp, F_OK) == 0) {
		/* A save that never committed: the guest may be paused. Run it. */
		log_warn("%s: found an uncommitted save (the last controller died during it): "
			 "continuing the guest",
			 name);
		int r = drv->finish_save(api_sock, false);
		rm_rf(tmp);
		if (r < 0)
			return log_errno(r, "%s: continue the guest after an uncommitted save: %m",
					 name);
	}
	return 0;
}

/* ---- inspect ------------------------------------------------------------------- */

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;
	return o && json_object_object_get_ex(o, key, &v) &&
			       json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v)
		       : NULL;
}

static int64_t jint(json_object *o, const char *key)
{
	json_object *v;
	return o && json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : -1;
}

static bool files_intact(const char *dir, json_object *files, uint64_t *ret_total, char **why)
{
	size_t n = files && json_object_is_type(files, json_type_array)
			   ? json_object_array_length(files)
			   : 0;
	if (n == 0 || n > SAVED_FILES_MAX) {
		*why = xstrdup("the record lists no saved files");
		return false;
	}
	*ret_total = 0;
	for (size_t i = 0; i < n; i++) {
		json_object *f = json_object_array_get_idx(files, i);
		const char *name = jstr(f, "name");
		int64_t size = jint(f, "size");
		struct stat st;
		if (!name || strchr(name, '/') || name[0] == '.' || size < 0) {
			*why = xstrdup("the record is malformed");
			return false;
		}
		_cleanup_free_ char *p = path_join(dir, name);
		if (lstat(p, &st) < 0 || !S_ISREG(st.st_mode)) {
			*why = xasprintf("%s is missing", p);
			return false;
		}
		if (st.st_size != size) {
			*why = xasprintf("%s is %lld bytes, the record says %lld", p,
					 (long long)st.st_size, (long long)size);
			return false;
		}
		*ret_total += (uint64_t)size;
	}
	return true;
}

static void judge(Runtime *rt, json_object *rec, const char *dir, const VmSpec *spec, SavedState *s)
{
	_cleanup_free_ char *why_files = NULL, *why_boot = NULL, *why_vmm = NULL;
	json_object *files = NULL;
	json_object_object_get_ex(rec, "files", &files);
	s->saved_at_ms = jint(rec, "savedAtMs");
	s->vmm_version = xstrdup(jstr(rec, "vmmVersion") ? jstr(rec, "vmmVersion") : "");
	s->intact = files_intact(dir, files, &s->size, &why_files);
	_cleanup_(vm_spec_freep) VmSpec *saved = NULL;
	const char *sj = jstr(rec, "spec");
	if (!sj || vm_spec_from_json(sj, &saved) < 0)
		why_boot = xstrdup("the spec it was booted with is unreadable");
	else
		(void)vm_spec_boot_equal(saved, spec, &why_boot); /* why_boot NULL when equal */
	s->boot_equal = why_boot == NULL;
	const VmmDriver *drv = runtime_driver_for(rt, spec);
	json_object *bin = NULL, *now = drv ? binary_identity(drv, runtime_vmm_settings(rt)) : NULL;
	json_object_object_get_ex(rec, "binary", &bin);
	if (!drv || !streq_ptr(jstr(rec, "vmm"), drv->name))
		why_vmm =
			xasprintf("saved by %s, now %s", jstr(rec, "vmm") ? jstr(rec, "vmm") : "?",
				  drv ? drv->name : "no VMM");
	else if (!bin || !now || !json_object_equal(bin, now))
		why_vmm = xasprintf("the %s binary changed since the save (saved by %s)", drv->name,
				    s->vmm_version);
	json_object_put(now);
	s->vmm_equal = why_vmm == NULL;
	if (why_files)
		s->problem = xasprintf("saved state corrupt: %s", why_files);
	else if (why_boot)
		s->problem = xasprintf("boot-relevant spec changed while suspended: %s", why_boot);
	else if (why_vmm)
		s->problem = xasprintf("VMM changed: %s", why_vmm);
}

int vm_saved_inspect(Runtime *rt, const char *uid, const VmSpec *spec, SavedState *ret)
{
	_cleanup_free_ char *rec_path = vm_sub(rt, uid, RECORD_NAME), *text = NULL;
	_cleanup_free_ char *dir = vm_saved_dir(rt, uid);
	*ret = (SavedState){ 0 };
	int r = read_file_bounded(rec_path, RECORD_MAX, &text, NULL);
	if (r == -ENOENT)
		return 0;
	ret->saved = true;
	json_object *rec = r >= 0 ? json_tokener_parse(text) : NULL;
	if (!rec || !json_object_is_type(rec, json_type_object)) {
		ret->problem = xasprintf("saved state corrupt: %s is unreadable", rec_path);
		json_object_put(rec);
		return 0;
	}
	judge(rt, rec, dir, spec, ret);
	json_object_put(rec);
	return 0;
}

/* ---- verify and discard ----------------------------------------------------------- */

int vm_saved_verify(Runtime *rt, const char *uid, char **ret_error)
{
	_cleanup_free_ char *rec_path = vm_sub(rt, uid, RECORD_NAME), *text = NULL;
	_cleanup_free_ char *dir = vm_saved_dir(rt, uid);
	*ret_error = NULL;
	int r = read_file_bounded(rec_path, RECORD_MAX, &text, NULL);
	if (r < 0) {
		*ret_error = xasprintf("read %s: %s", rec_path, strerror(-r));
		return r;
	}
	json_object *rec = json_tokener_parse(text), *files = NULL;
	json_object_object_get_ex(rec, "files", &files);
	size_t n = files && json_object_is_type(files, json_type_array)
			   ? json_object_array_length(files)
			   : 0;
	r = n ? 0 : -EBADMSG;
	if (r < 0)
		*ret_error = xstrdup("saved state record lists no files");
	for (size_t i = 0; r >= 0 && i < n; i++) {
		json_object *f = json_object_array_get_idx(files, i);
		const char *name = jstr(f, "name"), *want = jstr(f, "sha256");
		_cleanup_free_ char *p = name && !strchr(name, '/') ? path_join(dir, name) : NULL;
		_cleanup_close_ int fd = p ? open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
		char got[65];
		uint64_t size;
		if (fd >= 0 && !want && jint(f, "size") > (int64_t)SAVED_HASH_MAX)
			continue; /* too big to hash: its size was checked by inspect */
		if (fd < 0 || hash_fd(fd, got, &size) < 0) {
			r = -EBADMSG;
			*ret_error = xasprintf("saved state file %s unreadable", name ? name : "?");
		} else if (!want || !streq(got, want)) {
			r = -EBADMSG;
			*ret_error = xasprintf("saved state file %s does not match its SHA-256", p);
		}
	}
	json_object_put(rec);
	return r;
}

int vm_saved_consume(Runtime *rt, const char *uid, char **ret_error)
{
	_cleanup_free_ char *rec = vm_sub(rt, uid, RECORD_NAME);
	_cleanup_free_ char *used = vm_sub(rt, uid, RECORD_NAME ".used");
	int r = 0;
	if (rename(rec, used) < 0 || (r = fsync_directory_of(rec)) < 0) {
		r = r < 0 ? r : -errno;
		*ret_error = xasprintf("consume %s: %s", rec, strerror(-r));
	}
	return r;
}

int vm_saved_discard(Runtime *rt, const char *uid)
{
	_cleanup_free_ char *rec = vm_sub(rt, uid, RECORD_NAME), *dir = vm_saved_dir(rt, uid);
	_cleanup_free_ char *tmp = vm_sub(rt, uid, "suspend.tmp");
	_cleanup_free_ char *used = vm_sub(rt, uid, RECORD_NAME ".used");
	int r = unlink_durable(rec);
	if (r < 0 && r != -ENOENT)
		return log_errno(r, "remove %s: %m", rec);
	r = unlink(used) < 0 && errno != ENOENT ? -errno : 0;
	if (r < 0)
		return log_errno(r, "remove %s: %m", used);
	r = rm_rf(dir);
	if (r < 0 && r != -ENOENT)
		return log_errno(r, "remove %s: %m", dir);
	r = rm_rf(tmp);
	return r < 0 && r != -ENOENT ? r : 0;
}
