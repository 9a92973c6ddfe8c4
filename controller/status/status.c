/* status.c — see status.h. JSON through json-c; objects keep insertion
 * order, which gives the stable key order the byte comparison relies on. */
#include "status/status.h"
#include "util/log.h"
#include "util/sha256.h"
#include "util/timeutil.h"

#include <dirent.h>
#include <json.h>
#include <stdio.h>
#include <sys/stat.h>

static const char *const cond_names[_COND_MAX] = {
	[COND_TRUE] = "True",
	[COND_FALSE] = "False",
	[COND_UNKNOWN] = "Unknown",
};

const char *cond_status_to_string(CondStatus s)
{
	return s < _COND_MAX ? cond_names[s] : "Unknown";
}

static int cond_status_from_string(const char *s)
{
	for (int i = 0; i < _COND_MAX; i++)
		if (streq(s, cond_names[i]))
			return i;
	return -EINVAL;
}

VmStatus *vm_status_new(const char *name)
{
	VmStatus *s = xcalloc(1, sizeof(VmStatus));
	s->name = xstrdup(name);
	return s;
}

static void condition_done(Condition *c)
{
	free(c->type);
	free(c->reason);
	free(c->message);
}

void vm_status_free(VmStatus *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_conditions; i++)
		condition_done(&s->conditions[i]);
	free(s->conditions);
	free(s->name);
	free(s->source_file);
	free(s->spec_hash);
	free(s->guest_ip);
	free(s->tap);
	free(s->last_error);
	free(s);
}

const Condition *vm_status_get_condition(const VmStatus *s, const char *type)
{
	for (size_t i = 0; i < s->n_conditions; i++)
		if (streq(s->conditions[i].type, type))
			return &s->conditions[i];
	return NULL;
}

void vm_status_set_condition(VmStatus *s, const char *type, CondStatus st, const char *reason,
			     const char *message, int64_t now_ms)
{
	Condition *c = (Condition *)vm_status_get_condition(s, type);
	if (!c) {
		s->conditions = xrealloc(s->conditions, (s->n_conditions + 1) * sizeof(Condition));
		c = &s->conditions[s->n_conditions++];
		*c = (Condition){ .type = xstrdup(type),
				  .status = st,
				  .last_transition_ms = now_ms };
	} else if (c->status != st) {
		c->status = st;
		c->last_transition_ms = now_ms;
	}
	free_and_replace_str(&c->reason, reason ? reason : "");
	free_and_replace_str(&c->message, message ? message : "");
}

VmStatus *vm_status_dup(const VmStatus *s)
{
	VmStatus *d = vm_status_new(s->name);
	d->source_file = xstrdup(s->source_file);
	d->spec_hash = xstrdup(s->spec_hash);
	d->generation = s->generation;
	d->observed_generation = s->observed_generation;
	d->phase = s->phase;
	for (size_t i = 0; i < s->n_conditions; i++) {
		const Condition *c = &s->conditions[i];
		vm_status_set_condition(d, c->type, c->status, c->reason, c->message,
					c->last_transition_ms);
	}
	d->pid = s->pid;
	d->guest_ip = xstrdup(s->guest_ip);
	d->tap = xstrdup(s->tap);
	d->started_at_ms = s->started_at_ms;
	d->restart_count = s->restart_count;
	d->last_error = xstrdup(s->last_error);
	d->observed_at_ms = s->observed_at_ms;
	return d;
}

void vm_status_inherit_transitions(VmStatus *s, const VmStatus *prev)
{
	if (!prev)
		return;
	for (size_t i = 0; i < s->n_conditions; i++) {
		const Condition *p = vm_status_get_condition(prev, s->conditions[i].type);
		if (p && p->status == s->conditions[i].status)
			s->conditions[i].last_transition_ms = p->last_transition_ms;
	}
}

static json_object *str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static json_object *time_or_null(int64_t ms)
{
	char buf[40];
	if (ms <= 0)
		return NULL;
	time_format_rfc3339(ms, buf, sizeof(buf));
	return json_object_new_string(buf);
}

static json_object *conditions_to_json(const VmStatus *s)
{
	json_object *arr = json_object_new_array();
	for (size_t i = 0; i < s->n_conditions; i++) {
		const Condition *c = &s->conditions[i];
		json_object *o = json_object_new_object();
		json_object_object_add(o, "type", json_object_new_string(c->type));
		json_object_object_add(o, "status",
				       json_object_new_string(cond_status_to_string(c->status)));
		json_object_object_add(o, "reason", json_object_new_string(c->reason));
		json_object_object_add(o, "message", json_object_new_string(c->message));
		json_object_object_add(o, "lastTransitionTime",
				       time_or_null(c->last_transition_ms));
		json_object_array_add(arr, o);
	}
	return arr;
}

static json_object *runtime_to_json(const VmStatus *s)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "pid", s->pid > 0 ? json_object_new_int(s->pid) : NULL);
	json_object_object_add(o, "guestIP", str_or_null(s->guest_ip));
	json_object_object_add(o, "tap", str_or_null(s->tap));
	json_object_object_add(o, "startedAt", time_or_null(s->started_at_ms));
	json_object_object_add(o, "restartCount", json_object_new_int64(s->restart_count));
	return o;
}

char *vm_status_to_json(const VmStatus *s)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "apiVersion", json_object_new_string(STATUS_API_VERSION));
	json_object_object_add(o, "kind", json_object_new_string(STATUS_KIND));
	json_object_object_add(o, "name", json_object_new_string(s->name));
	json_object_object_add(o, "sourceFile", str_or_null(s->source_file));
	json_object_object_add(o, "specHash", str_or_null(s->spec_hash));
	json_object_object_add(o, "generation", json_object_new_int64(s->generation));
	json_object_object_add(o, "observedGeneration",
			       json_object_new_int64(s->observed_generation));
	json_object_object_add(o, "phase", json_object_new_string(vm_phase_to_string(s->phase)));
	json_object_object_add(o, "conditions", conditions_to_json(s));
	json_object_object_add(o, "runtime", runtime_to_json(s));
	json_object_object_add(o, "lastError", str_or_null(s->last_error));
	json_object_object_add(o, "observedAt", time_or_null(s->observed_at_ms));
	const char *txt = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
								    JSON_C_TO_STRING_SPACED |
								    JSON_C_TO_STRING_NOSLASHESCAPE);
	char *out = xasprintf("%s\n", txt);
	json_object_put(o);
	return out;
}

static const char *get_str(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int64_t get_int(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return 0;
	return json_object_get_int64(v);
}

/* Status times carry whole seconds (time_format_rfc3339): a finer or
 * pre-1970 time read from a file is brought to what the writer can render,
 * or reading and rewriting a status would change it. */
static int64_t get_time(json_object *o, const char *key)
{
	int64_t ms = time_parse_rfc3339(get_str(o, key));
	return ms > 0 ? ms - ms % 1000 : 0;
}

/* A pid is positive and fits pid_t; anything else means "not running". */
static pid_t get_pid(json_object *o, const char *key)
{
	int64_t v = get_int(o, key);
	return v > 0 && v <= INT32_MAX ? (pid_t)v : 0;
}

static void conditions_from_json(VmStatus *s, json_object *arr)
{
	size_t n = json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
	for (size_t i = 0; i < n; i++) {
		json_object *c = json_object_array_get_idx(arr, i);
		const char *type = get_str(c, "type"), *st = get_str(c, "status");
		int cs = st ? cond_status_from_string(st) : -EINVAL;
		if (!type || cs < 0)
			continue;
		vm_status_set_condition(s, type, (CondStatus)cs, get_str(c, "reason"),
					get_str(c, "message"), get_time(c, "lastTransitionTime"));
	}
}

int vm_status_from_json(const char *json, VmStatus **ret)
{
	json_object *o = json_tokener_parse(json), *v;
	const char *name, *phase;
	int p;

	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return -EINVAL;
	}
	name = get_str(o, "name");
	phase = get_str(o, "phase");
	p = phase ? vm_phase_from_string(phase) : -EINVAL;
	if (!name || p < 0 || !streq_ptr(get_str(o, "kind"), STATUS_KIND)) {
		json_object_put(o);
		return -EINVAL;
	}
	VmStatus *s = vm_status_new(name);
	s->source_file = xstrdup(get_str(o, "sourceFile"));
	s->spec_hash = xstrdup(get_str(o, "specHash"));
	s->generation = get_int(o, "generation");
	s->observed_generation = get_int(o, "observedGeneration");
	s->phase = (VmPhase)p;
	if (json_object_object_get_ex(o, "conditions", &v))
		conditions_from_json(s, v);
	if (json_object_object_get_ex(o, "runtime", &v)) {
		s->pid = get_pid(v, "pid");
		s->guest_ip = xstrdup(get_str(v, "guestIP"));
		s->tap = xstrdup(get_str(v, "tap"));
		s->started_at_ms = get_time(v, "startedAt");
		s->restart_count = get_int(v, "restartCount");
	}
	s->last_error = xstrdup(get_str(o, "lastError"));
	s->observed_at_ms = time_parse_rfc3339(get_str(o, "observedAt"));
	json_object_put(o);
	*ret = s;
	return 0;
}

char *vm_status_path(const char *status_dir, const char *name)
{
	return xasprintf("%s/%s" STATUS_SUFFIX, status_dir, name);
}

char *vm_status_name_of_file(const char *file_name)
{
	if (file_name[0] == '.' || !endswith(file_name, STATUS_SUFFIX))
		return NULL;
	char *name = xstrndup(file_name, strlen(file_name) - strlen(STATUS_SUFFIX));
	if (!dns_label_valid(name)) {
		free(name);
		return NULL;
	}
	return name;
}

int vm_status_list_names(const char *status_dir, char ***ret)
{
	DIR *d = opendir(status_dir);
	if (!d)
		return -errno;
	char **names = xcalloc(1, sizeof(char *));
	struct dirent *de;
	while ((de = readdir(d))) {
		char *name = vm_status_name_of_file(de->d_name);
		if (name)
			strv_push(&names, name);
	}
	closedir(d);
	strv_sort(names);
	*ret = names;
	return 0;
}

int vm_status_read(const char *status_dir, const char *name, VmStatus **ret)
{
	_cleanup_free_ char *p = NULL, *data = NULL;
	if (!dns_label_valid(name))
		return -EINVAL;
	p = vm_status_path(status_dir, name);
	int r = read_file_bounded(p, 1024 * 1024, &data, NULL);
	if (r < 0)
		return r;
	return vm_status_from_json(data, ret);
}

typedef struct {
	uint8_t digest[32]; /* sha256 of the content last written (observedAt left out) */
	VmStatus *last;     /* NULL when the file on disk could not be parsed */
} Entry;

struct StatusWriter {
	char *dir;
	uint64_t refresh_ms; /* 0: never refresh observedAt */
	Hashmap *entries;    /* name → Entry */
	AtomicBatch *batch;  /* non-NULL in batch mode */
	Hashmap *staged;     /* batch mode: names written or removed (→ NULL) */
};

static void end_batch(StatusWriter *w);

static void entry_free(Entry *e)
{
	if (!e)
		return;
	vm_status_free(e->last);
	free(e);
}

static void digest_of(const char *s, uint8_t out[32])
{
	Sha256 h;
	sha256_init(&h);
	sha256_update(&h, s, strlen(s));
	sha256_final(&h, out);
}

/* The digest of what a status says, without when it was said. */
static void content_digest(const VmStatus *s, uint8_t out[32])
{
	_cleanup_(vm_status_freep) VmStatus *c = vm_status_dup(s);
	c->observed_at_ms = 0;
	_cleanup_free_ char *json = vm_status_to_json(c);
	digest_of(json, out);
}

/* Remember what the status file at p holds as the entry for name (or
 * nothing, when there is no such file). */
static void seed_one(StatusWriter *w, const char *name, const char *p)
{
	_cleanup_free_ char *data = NULL;
	VmStatus *s = NULL;
	if (read_file_bounded(p, 1024 * 1024, &data, NULL) < 0)
		return;
	Entry *e = xcalloc(1, sizeof(Entry));
	digest_of(data, e->digest); /* never a content digest: rewritten */
	if (vm_status_from_json(data, &s) == 0 && streq(s->name, name)) {
		content_digest(s, e->digest);
		e->last = s;
	} else
		vm_status_free(s);
	entry_free(hashmap_put(w->entries, name, e));
}

/* A status temp file a crash left behind (a batch dies with its statuses
 * staged): only ours, ".<name>.status.json.<hex>.tmp", never the spec files
 * or anything else that may share the directory. */
static void remove_stale_temp(StatusWriter *w, const char *file_name)
{
	_cleanup_free_ char *target = atomic_temp_target(file_name), *name = NULL, *p = NULL;
	if (!target || !(name = vm_status_name_of_file(target)))
		return;
	p = path_join(w->dir, file_name);
	if (unlink(p) < 0 && errno != ENOENT)
		log_warn_errno(-errno, "remove stale status temp %s: %m", p);
	else
		log_debug("removed stale status temp %s", p);
}

/* Remember what is on disk, so an unchanged status after a restart is not
 * rewritten and transition times carry over. */
static void seed_from_disk(StatusWriter *w)
{
	DIR *d = opendir(w->dir);
	struct dirent *de;
	if (!d)
		return;
	while ((de = readdir(d))) {
		_cleanup_free_ char *name = vm_status_name_of_file(de->d_name), *p = NULL;
		if (!name) {
			remove_stale_temp(w, de->d_name);
			continue;
		}
		p = path_join(w->dir, de->d_name);
		seed_one(w, name, p);
	}
	closedir(d);
}

int status_writer_new(const char *status_dir, StatusWriter **ret)
{
	int r = mkdir_p(status_dir, 0755);
	if (r < 0)
		return log_errno(r, "create status dir %s: %m", status_dir);
	StatusWriter *w = xcalloc(1, sizeof(StatusWriter));
	w->dir = xstrdup(status_dir);
	w->entries = hashmap_new();
	seed_from_disk(w);
	*ret = w;
	return 0;
}

void status_writer_free(StatusWriter *w)
{
	if (!w)
		return;
	size_t st = 0;
	void *v;
	while (hashmap_iter(w->entries, &st, NULL, &v))
		entry_free(v);
	hashmap_free(w->entries);
	end_batch(w);
	free(w->dir);
	free(w);
}

void status_writer_begin_batch(StatusWriter *w)
{
	if (!w->batch) {
		w->batch = atomic_batch_new();
		w->staged = hashmap_new();
	}
}

static void end_batch(StatusWriter *w)
{
	atomic_batch_free(w->batch);
	w->batch = NULL;
	hashmap_free(w->staged);
	w->staged = NULL;
}

/* Forget what the writer remembers of every staged name and read it back
 * from its file: after a failed or discarded batch, memory and disk agree. */
static void reseed_staged(StatusWriter *w)
{
	_cleanup_strv_free_ char **names = hashmap_keys_sorted(w->staged);
	for (size_t i = 0; names[i]; i++) {
		_cleanup_free_ char *p = vm_status_path(w->dir, names[i]);
		entry_free(hashmap_remove(w->entries, names[i]));
		seed_one(w, names[i], p);
	}
}

int status_writer_flush(StatusWriter *w)
{
	int r = 0;
	if (w->batch && (r = atomic_batch_commit(w->batch)) < 0)
		reseed_staged(w); /* some renames may have happened, some not */
	end_batch(w);
	return r;
}

void status_writer_discard(StatusWriter *w)
{
	if (!w->batch)
		return;
	atomic_batch_free(w->batch); /* the temps go; nothing staged reaches the disk */
	w->batch = NULL;
	reseed_staged(w);
	end_batch(w);
}

void status_writer_set_refresh(StatusWriter *w, uint64_t interval_ms)
{
	w->refresh_ms = interval_ms;
}

static bool needs_refresh(const StatusWriter *w, const Entry *e, int64_t now)
{
	return w->refresh_ms &&
	       (!e->last || now - e->last->observed_at_ms >= (int64_t)w->refresh_ms);
}

/* Write s stamped with now; e (created when NULL) remembers it. */
static int write_stamped(StatusWriter *w, Entry *e, const VmStatus *s, const uint8_t digest[32],
			 int64_t now)
{
	_cleanup_(vm_status_freep) VmStatus *c = vm_status_dup(s);
	c->observed_at_ms = now;
	_cleanup_free_ char *json = vm_status_to_json(c), *p = vm_status_path(w->dir, s->name);
	int r;
	if (w->batch) {
		r = atomic_batch_write(w->batch, p, json, strlen(json), 0644);
		hashmap_put(w->staged, s->name, NULL);
	} else
		r = write_file_atomic(p, json, strlen(json), 0644);
	if (r < 0)
		return log_errno(r, "write status %s: %m", p);
	if (!e) {
		e = xcalloc(1, sizeof(Entry));
		hashmap_put(w->entries, s->name, e);
	}
	memcpy(e->digest, digest, 32);
	vm_status_free(e->last);
	e->last = TAKE_PTR(c);
	return 0;
}

int status_writer_write(StatusWriter *w, const VmStatus *s)
{
	uint8_t digest[32];
	int64_t now = time_now_realtime_ms();

	if (!dns_label_valid(s->name))
		return -EINVAL; /* never a path component we did not validate */
	content_digest(s, digest);
	Entry *e = hashmap_get(w->entries, s->name);
	bool same = e && memcmp(e->digest, digest, 32) == 0;
	if (same && !needs_refresh(w, e, now))
		return 0;
	int r = write_stamped(w, e, s, digest, now);
	return r < 0 ? r : same ? 0 : 1;
}

int status_writer_refresh(StatusWriter *w)
{
	int64_t now = time_now_realtime_ms();
	size_t st = 0;
	void *v;
	int n = 0;
	while (hashmap_iter(w->entries, &st, NULL, &v)) {
		Entry *e = v;
		if (!e->last || !needs_refresh(w, e, now))
			continue; /* an unparsable file is rewritten by the next reconcile */
		uint8_t digest[32];
		memcpy(digest, e->digest, 32);
		int r = write_stamped(w, e, e->last, digest, now);
		if (r < 0)
			return r;
		n++;
	}
	return n;
}

int status_writer_remove(StatusWriter *w, const char *name)
{
	_cleanup_free_ char *p = NULL;
	if (!dns_label_valid(name))
		return -EINVAL;
	entry_free(hashmap_remove(w->entries, name));
	p = vm_status_path(w->dir, name);
	int r;
	if (w->batch) {
		/* After the intent the batch holds is committed, like its writes
		 * (and it cancels a write of the same name staged before). */
		r = atomic_batch_remove(w->batch, p);
		hashmap_put(w->staged, name, NULL);
	} else
		r = unlink_durable(p);
	if (r < 0)
		return log_errno(r, "remove status %s: %m", p);
	return 0;
}

const VmStatus *status_writer_last(StatusWriter *w, const char *name)
{
	Entry *e = hashmap_get(w->entries, name);
	return e ? e->last : NULL;
}

char **status_writer_names(StatusWriter *w)
{
	return hashmap_keys_sorted(w->entries);
}
