/* rootbase.c — see rootbase.h. The record, the pure plan, then the doing. */
#include "storage/rootbase.h"
#include "util/fileio.h"
#include "util/log.h"

#include <json.h>
#include <sys/stat.h>

#define ROOT_BASE_MAX_BYTES (16 * 1024)

static const char *const plan_names[_ROOT_BASE_PLAN_MAX] = {
	[ROOT_BASE_CREATE] = "create",
	[ROOT_BASE_RECREATE] = "recreate",
	[ROOT_BASE_KEEP] = "keep",
	[ROOT_BASE_KEEP_COPY] = "keep-copy",
	[ROOT_BASE_KEEP_ORIGINAL] = "keep-original",
	[ROOT_BASE_FAIL] = "fail",
};

const char *root_base_plan_to_string(RootBasePlan p)
{
	return p >= 0 && p < _ROOT_BASE_PLAN_MAX ? plan_names[p] : NULL;
}

void root_base_done(RootBase *b)
{
	if (!b)
		return;
	free(b->spec_path);
	free(b->resolved);
	*b = (RootBase){ 0 };
}

void root_base_choice_done(RootBaseChoice *c)
{
	if (!c)
		return;
	free(c->base);
	free(c->note);
	*c = (RootBaseChoice){ 0 };
}

int root_base_identify(const char *spec_path, const char *resolved, RootBase *ret)
{
	struct stat st;
	if (stat(resolved, &st) < 0)
		return -errno;
	*ret = (RootBase){
		.spec_path = spec_path ? xstrdup(spec_path) : NULL,
		.resolved = xstrdup(resolved),
		.dev = (uint64_t)st.st_dev,
		.ino = (uint64_t)st.st_ino,
		.size = (uint64_t)st.st_size,
		.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
	};
	return 0;
}

bool root_base_same_file(const RootBase *recorded, const RootBase *now)
{
	if (!recorded->resolved || !now->resolved || !streq(recorded->resolved, now->resolved))
		return false;
	if (recorded->dev == 0 && recorded->ino == 0)
		return true; /* old record: the path is all we know */
	return recorded->dev == now->dev && recorded->ino == now->ino &&
	       recorded->size == now->size && recorded->mtime_ns == now->mtime_ns;
}

static bool method_is_overlay(CowMethod m)
{
	return m == COW_DM || m == COW_QCOW2;
}

RootBasePlan root_base_plan(const RootBase *recorded, const RootBase *now, CowMethod existing,
			    bool original_there)
{
	if (existing == COW_AUTO)
		return ROOT_BASE_CREATE;
	if (!recorded)
		return ROOT_BASE_KEEP; /* a disk nobody recorded: keep it, never guess */
	if (recorded->spec_path && now->spec_path && !streq(recorded->spec_path, now->spec_path))
		return ROOT_BASE_RECREATE;
	if (root_base_same_file(recorded, now))
		return ROOT_BASE_KEEP;
	if (!method_is_overlay(existing))
		return ROOT_BASE_KEEP_COPY;
	return original_there ? ROOT_BASE_KEEP_ORIGINAL : ROOT_BASE_FAIL;
}

/* ---- the record ---- */

static int root_base_write_as(const char *vm_dir, const RootBase *b, bool disk_follows)
{
	_cleanup_free_ char *p = path_join(vm_dir, ROOT_BASE_FILE);
	json_object *o = json_object_new_object();
	if (b->spec_path)
		json_object_object_add(o, "spec_path", json_object_new_string(b->spec_path));
	json_object_object_add(o, "resolved", json_object_new_string(b->resolved));
	json_object_object_add(o, "dev", json_object_new_uint64(b->dev));
	json_object_object_add(o, "ino", json_object_new_uint64(b->ino));
	json_object_object_add(o, "size", json_object_new_uint64(b->size));
	json_object_object_add(o, "mtime_ns", json_object_new_int64(b->mtime_ns));
	_cleanup_free_ char *text = xasprintf(
		"%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
								  JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	int r = disk_follows ? write_file_atomic_dir_pending(p, text, strlen(text), 0600)
			     : write_file_atomic(p, text, strlen(text), 0600);
	if (r < 0)
		return log_errno(r, "storage: write %s: %m", p);
	return 0;
}

int root_base_write(const char *vm_dir, const RootBase *b)
{
	return root_base_write_as(vm_dir, b, false);
}

int root_base_write_pending(const char *vm_dir, const RootBase *b)
{
	return root_base_write_as(vm_dir, b, true);
}

static char *json_str(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return xstrdup(json_object_get_string(v));
}

static uint64_t json_u64(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return 0;
	return json_object_get_uint64(v);
}

int root_base_read(const char *vm_dir, RootBase *ret)
{
	_cleanup_free_ char *p = path_join(vm_dir, ROOT_BASE_FILE), *data = NULL;
	size_t len = 0;
	int r = read_file_bounded(p, ROOT_BASE_MAX_BYTES, &data, &len);
	if (r < 0)
		return r;
	if (len > 0 && data[0] == '/' && !memchr(data, '\n', len)) {
		/* Older banger: the resolved path, nothing else. */
		*ret = (RootBase){ .resolved = xstrdup(data) };
		return 0;
	}
	json_object *o = json_tokener_parse(data);
	RootBase b = { 0 };
	if (o && json_object_is_type(o, json_type_object)) {
		b.spec_path = json_str(o, "spec_path");
		b.resolved = json_str(o, "resolved");
		b.dev = json_u64(o, "dev");
		b.ino = json_u64(o, "ino");
		b.size = json_u64(o, "size");
		b.mtime_ns = (int64_t)json_u64(o, "mtime_ns");
	}
	json_object_put(o);
	if (!b.resolved || b.resolved[0] != '/') {
		root_base_done(&b);
		return log_errno(-EINVAL, "storage: %s is not a base image record", p);
	}
	*ret = b;
	return 0;
}

/* ---- doing the plan ---- */

/* RECREATE only: the disk of the old rootfs.path. The work disk (the VM's
 * data) is never touched. */
static int remove_root_disks(const char *vm_dir)
{
	for (CowMethod m = COW_DM; m < _COW_METHOD_MAX; m++) {
		_cleanup_free_ char *d = path_join(vm_dir, cow_disk_file_name(m));
		int r = unlink_durable(d);
		if (r < 0 && r != -ENOENT)
			return log_errno(r, "storage: remove %s: %m", d);
	}
	return 0;
}

static char *describe(const RootBase *b)
{
	return xasprintf("%s (dev %llu, inode %llu, %llu bytes)", b->resolved,
			 (unsigned long long)b->dev, (unsigned long long)b->ino,
			 (unsigned long long)b->size);
}

/* The note and the base for the plan; records what CREATE/RECREATE make. */
static int carry_out(const char *vm_dir, RootBasePlan plan, const RootBase *rec,
		     const RootBase *now, CowMethod existing, RootBaseChoice *c, char **ret_error)
{
	_cleanup_free_ char *was = rec ? describe(rec) : NULL, *is = describe(now);
	int r;
	c->plan = plan;
	c->base = xstrdup(now->resolved);
	switch (plan) {
	case ROOT_BASE_RECREATE:
		c->reason = "Recreated";
		c->note = xasprintf("rootfs.path changed from %s to %s: root disk recreated",
				    rec->spec_path, now->spec_path);
		if ((r = remove_root_disks(vm_dir)) < 0) {
			*ret_error = xasprintf("remove the root disk of %s: %s", rec->spec_path,
					       strerror(-r));
			return r;
		}
		__attribute__((fallthrough));
	case ROOT_BASE_CREATE:
		/* The disk is made next in the same directory (cow.c: temp file,
		 * rename, directory fsync): that one fsync makes this name durable
		 * too. A power loss before it can leave a disk without its record,
		 * which the next start keeps and records (KEEP). */
		if ((r = root_base_write_pending(vm_dir, now)) < 0) {
			*ret_error = xasprintf("record the base image: %s", strerror(-r));
			return r;
		}
		return 0;
	case ROOT_BASE_KEEP:
		/* A disk made before records existed gets one now; an old record
		 * whose file is the same gets its identity. */
		if (rec && (rec->dev != 0 || rec->ino != 0))
			return 0;
		if ((r = root_base_write(vm_dir, now)) < 0) {
			*ret_error = xasprintf("record the base image: %s", strerror(-r));
			return r;
		}
		return 0;
	case ROOT_BASE_KEEP_COPY:
		c->reason = "KeptCopy";
		c->note = xasprintf(
			"the image behind rootfs.path %s changed (made from %s, now %s); the root "
			"disk is a full %s copy and is kept",
			now->spec_path, was, is, cow_method_to_string(existing));
		return 0;
	case ROOT_BASE_KEEP_ORIGINAL:
		free_and_replace_str(&c->base, rec->resolved);
		c->reason = "KeptOriginalBase";
		c->note = xasprintf("the image behind rootfs.path %s changed (now %s); the %s "
				    "overlay keeps the base it was made from, %s",
				    now->spec_path, is, cow_method_to_string(existing), was);
		return 0;
	case ROOT_BASE_FAIL:
		*ret_error = xasprintf("the root disk is a %s overlay on base image %s, which is "
				       "gone or changed; rootfs.path %s now leads to %s. Restore "
				       "that base image, or change rootfs.path to make a new disk",
				       cow_method_to_string(existing), was, now->spec_path, is);
		return -ESTALE;
	default: return -EINVAL;
	}
}

int root_base_resolve(const char *vm_dir, const char *spec_path, const char *resolved,
		      RootBaseChoice *ret, char **ret_error)
{
	RootBase rec = { 0 }, now = { 0 }, orig = { 0 };
	RootBaseChoice c = { 0 };
	bool have_rec = false, original_there = false;
	int r = root_base_identify(spec_path, resolved, &now);
	if (r < 0) {
		*ret_error = xasprintf("base image %s: %s", resolved, strerror(-r));
		return r;
	}
	r = root_base_read(vm_dir, &rec);
	have_rec = r >= 0;
	if (r < 0 && r != -ENOENT)
		log_warn("storage %s: base image record unreadable; keeping the disk as it is",
			 vm_dir);
	if (have_rec && root_base_identify(NULL, rec.resolved, &orig) >= 0)
		original_there = root_base_same_file(&rec, &orig);
	CowMethod existing = cow_existing_method(vm_dir);
	RootBasePlan plan = root_base_plan(have_rec ? &rec : NULL, &now, existing, original_there);
	if (plan == ROOT_BASE_KEEP && !have_rec && r != -ENOENT) {
		/* A corrupt record is not replaced by a guess. */
		root_base_done(&now);
		*ret = (RootBaseChoice){ .base = xstrdup(resolved), .plan = plan };
		return 0;
	}
	r = carry_out(vm_dir, plan, have_rec ? &rec : NULL, &now, existing, &c, ret_error);
	root_base_done(&rec);
	root_base_done(&now);
	root_base_done(&orig);
	if (r < 0) {
		root_base_choice_done(&c);
		return r;
	}
	*ret = c;
	return 0;
}
