/* handles.c — see handles.h. */
#include "runtime/handles.h"
#include "util/fileio.h"
#include "util/layout.h"
#include "util/log.h"

#include <json.h>

VmHandles *vm_handles_new(void)
{
	return xcalloc(1, sizeof(VmHandles));
}

void vm_handles_free(VmHandles *h)
{
	if (!h)
		return;
#define FREE_ONE(f) free(h->f);
	VM_HANDLE_STRINGS(FREE_ONE)
#undef FREE_ONE
	free(h);
}

bool vm_handles_any(const VmHandles *h)
{
	return h &&
	       (h->pid > 0 || h->tap || h->nft_mac || h->base_loop || h->cow_loop || h->dm_name);
}

char *vm_handles_to_json(const VmHandles *h)
{
	json_object *o = json_object_new_object();
#define ADD_ONE(f)                                                                                 \
	if (h->f)                                                                                  \
		json_object_object_add(o, #f, json_object_new_string(h->f));
	VM_HANDLE_STRINGS(ADD_ONE)
#undef ADD_ONE
	if (h->pid > 0) {
		json_object_object_add(o, "pid", json_object_new_int(h->pid));
		json_object_object_add(o, "pid_start_time",
				       json_object_new_uint64(h->pid_start_time));
	}
	if (h->started_at_ms > 0)
		json_object_object_add(o, "started_at_ms", json_object_new_int64(h->started_at_ms));
	if (h->pid > 0 && h->launched)
		json_object_object_add(o, "launched", json_object_new_boolean(true));
	char *out = xasprintf("%s\n",
			      json_object_to_json_string_ext(
				      o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return out;
}

int vm_handles_from_json(const char *json, VmHandles **ret)
{
	json_object *o = json_tokener_parse(json), *v;
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return -EINVAL;
	}
	VmHandles *h = vm_handles_new();
#define GET_ONE(f)                                                                                 \
	if (json_object_object_get_ex(o, #f, &v) && json_object_is_type(v, json_type_string))      \
		h->f = xstrdup(json_object_get_string(v));
	VM_HANDLE_STRINGS(GET_ONE)
#undef GET_ONE
	if (json_object_object_get_ex(o, "pid", &v))
		h->pid = (pid_t)json_object_get_int(v);
	if (json_object_object_get_ex(o, "pid_start_time", &v))
		h->pid_start_time = json_object_get_uint64(v);
	if (json_object_object_get_ex(o, "started_at_ms", &v))
		h->started_at_ms = json_object_get_int64(v);
	if (json_object_object_get_ex(o, "launched", &v) &&
	    json_object_is_type(v, json_type_boolean))
		h->launched = h->pid > 0 && json_object_get_boolean(v);
	json_object_put(o);
	*ret = h;
	return 0;
}

int vm_handles_write(const char *vm_dir, const VmHandles *h)
{
	_cleanup_free_ char *p = path_join(vm_dir, LAYOUT_HANDLES_FILE);
	_cleanup_free_ char *json = vm_handles_to_json(h);
	/* Not fsync'd (util/fileio.h): everything recorded here dies with the
	 * kernel, so only a bangerd crash has to find the record, and it finds
	 * it in the page cache. A power loss takes the objects with it; an old
	 * or torn record then names nothing that exists (teardown: "not there"
	 * is done; a corrupt file is ignored by vm_handles_read). */
	int r = write_file_replace(p, json, strlen(json), 0600);
	if (r < 0)
		return log_errno(r, "write %s: %m", p);
	return 0;
}

int vm_handles_read(const char *vm_dir, VmHandles **ret)
{
	_cleanup_free_ char *p = path_join(vm_dir, LAYOUT_HANDLES_FILE), *data = NULL;
	int r = read_file_bounded(p, 64 * 1024, &data, NULL);
	if (r < 0)
		return r;
	r = vm_handles_from_json(data, ret);
	if (r < 0)
		log_warn("%s is corrupt; ignoring it (the OS scan still finds what runs)", p);
	return r;
}

int vm_handles_remove(const char *vm_dir)
{
	_cleanup_free_ char *p = path_join(vm_dir, LAYOUT_HANDLES_FILE);
	return unlink_durable(p);
}

struct HandleCache {
	Hashmap *map;
};

HandleCache *handle_cache_new(void)
{
	HandleCache *c = xcalloc(1, sizeof(HandleCache));
	c->map = hashmap_new();
	return c;
}

void handle_cache_free(HandleCache *c)
{
	if (!c)
		return;
	size_t st = 0;
	void *v;
	while (hashmap_iter(c->map, &st, NULL, &v))
		vm_handles_free(v);
	hashmap_free(c->map);
	free(c);
}

VmHandles *handle_cache_get(HandleCache *c, const char *name)
{
	return hashmap_get(c->map, name);
}

VmHandles *handle_cache_ensure(HandleCache *c, const char *name)
{
	VmHandles *h = hashmap_get(c->map, name);
	if (!h) {
		h = vm_handles_new();
		hashmap_put(c->map, name, h);
	}
	return h;
}

void handle_cache_put(HandleCache *c, const char *name, VmHandles *h)
{
	vm_handles_free(hashmap_put(c->map, name, h));
}

void handle_cache_drop(HandleCache *c, const char *name)
{
	vm_handles_free(hashmap_remove(c->map, name));
}

char **handle_cache_names(HandleCache *c)
{
	return hashmap_keys_sorted(c->map);
}

size_t handle_cache_size(HandleCache *c)
{
	return hashmap_size(c->map);
}
