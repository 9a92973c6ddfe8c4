/* common.c — see common.h. */
#include "cli/common.h"
#include "util/escape.h"
#include "spec/specdir.h"
#include "util/fileio.h"
#include "util/hashmap.h"
#include "util/timeutil.h"

#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

int cli_expand_input(const char *path, char ***files)
{
	struct stat st;
	if (streq(path, "-")) {
		strv_push(files, xstrdup("-"));
		return 0;
	}
	if (stat(path, &st) < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		strv_push(files, xstrdup(path));
		return 0;
	}
	_cleanup_strv_free_ char **rel = NULL;
	int r = spec_dir_list(path, &rel);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(-r));
		return r;
	}
	for (size_t i = 0; rel[i]; i++)
		strv_push(files, path_join(path, rel[i]));
	return 0;
}

int cli_parse_input(const char *path, SpecFile **ret)
{
	SpecFile *sf = NULL;
	int r;
	if (streq(path, "-")) {
		_cleanup_free_ char *data = NULL;
		size_t len = 0;
		r = read_fd_bounded(STDIN_FILENO, SPEC_MAX_FILE_BYTES, &data, &len);
		if (r < 0) {
			fprintf(stderr, "-: %s\n", r == -EFBIG ? "input is larger than 1 MiB"
							       : strerror(-r));
			return r;
		}
		r = spec_parse_buffer("-", data, len, &sf);
	} else
		r = spec_parse_file(path, &sf);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(-r));
		return r;
	}
	for (size_t i = 0; i < sf->diags.n; i++) {
		_cleanup_free_ char *line = diag_format(&sf->diags.items[i]);
		escape_fputs(stderr, line, ESCAPE_DISPLAY); /* file names are anyone's */
		fputc('\n', stderr);
	}
	*ret = sf;
	return 0;
}

struct SpecDirIndex {
	Hashmap *by_name; /* name → strv of rel */
	Hashmap *by_file; /* rel → strv of names */
};

static void strv_map_free(Hashmap *m)
{
	size_t st = 0;
	void *v;
	while (m && hashmap_iter(m, &st, NULL, &v))
		strv_free(v);
	hashmap_free(m);
}

void spec_dir_index_free(SpecDirIndex *idx)
{
	if (!idx)
		return;
	strv_map_free(idx->by_name);
	strv_map_free(idx->by_file);
	free(idx);
}

static void map_push(Hashmap *m, const char *key, const char *val)
{
	char **v = hashmap_get(m, key);
	if (strv_contains(v, val))
		return;
	strv_push(&v, xstrdup(val));
	hashmap_put(m, key, v);
}

int spec_dir_index_build(const char *spec_dir, SpecDirIndex **ret)
{
	_cleanup_strv_free_ char **rel = NULL;
	int r = spec_dir_list(spec_dir, &rel);
	if (r < 0)
		return r;
	SpecDirIndex *idx = xcalloc(1, sizeof(SpecDirIndex));
	idx->by_name = hashmap_new();
	idx->by_file = hashmap_new();
	for (size_t i = 0; rel[i]; i++) {
		_cleanup_free_ char *p = path_join(spec_dir, rel[i]);
		_cleanup_(spec_file_freep) SpecFile *sf = NULL;
		if (spec_parse_file(p, &sf) < 0)
			continue;
		for (size_t k = 0; k < sf->n_docs; k++) {
			if (!sf->docs[k].name || !sf->docs[k].name_valid)
				continue;
			map_push(idx->by_name, sf->docs[k].name, rel[i]);
			map_push(idx->by_file, rel[i], sf->docs[k].name);
		}
	}
	*ret = idx;
	return 0;
}

char *const *spec_dir_index_definers(SpecDirIndex *idx, const char *name)
{
	return hashmap_get(idx->by_name, name);
}

char *const *spec_dir_index_names(SpecDirIndex *idx, const char *rel)
{
	return hashmap_get(idx->by_file, rel);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

static bool settled(const VmStatus *st, const VmSpec *spec, const char *hash)
{
	/* Only a status about exactly this spec counts: an older one may still
	 * be on disk while bangerd works. */
	if (!st || !streq_ptr(st->spec_hash, hash) || st->observed_generation != st->generation)
		return false;
	switch (st->phase) {
	case VM_PHASE_RUNNING: {
		const Condition *c = vm_status_get_condition(st, "Ready");
		return c && c->status == COND_TRUE;
	}
	case VM_PHASE_STOPPED:
		return spec->state == VM_STATE_STOPPED;
	case VM_PHASE_FAILED:
	case VM_PHASE_INVALID:
		return true;
	default:
		return false;
	}
}

int cli_wait_settled(const CliDirs *dirs, VmSpec **specs, size_t n, unsigned timeout_s)
{
	uint64_t deadline = time_now_ms() + (uint64_t)timeout_s * 1000;
	bool *done = xcalloc(n, sizeof(bool));
	size_t left = n;
	int rc = 0;

	while (left > 0) {
		for (size_t i = 0; i < n; i++) {
			if (done[i])
				continue;
			char hash[65];
			VmStatus *st = NULL;
			vm_spec_hash(specs[i], hash);
			vm_status_read(dirs->status_dir, specs[i]->name, &st);
			if (settled(st, specs[i], hash)) {
				done[i] = true;
				left--;
				bool ok = st->phase == VM_PHASE_RUNNING || st->phase == VM_PHASE_STOPPED;
				printf("vm/%s %s%s%s\n", specs[i]->name, vm_phase_to_string(st->phase),
				       st->last_error && !ok ? ": " : "",
				       st->last_error && !ok ? st->last_error : "");
				if (!ok)
					rc = -EIO;
			}
			vm_status_free(st);
		}
		if (left == 0)
			break;
		if (time_now_ms() >= deadline) {
			for (size_t i = 0; i < n; i++)
				if (!done[i])
					fprintf(stderr,
						"banger: timed out after %u s waiting for vm/%s "
						"(is bangerd running on %s?)\n",
						timeout_s, specs[i]->name, dirs->spec_dir);
			rc = -ETIMEDOUT;
			break;
		}
		sleep_ms(100);
	}
	free(done);
	return rc;
}

int cli_wait_gone(const CliDirs *dirs, char **names, unsigned timeout_s)
{
	uint64_t deadline = time_now_ms() + (uint64_t)timeout_s * 1000;
	for (;;) {
		size_t left = 0;
		for (size_t i = 0; names[i]; i++) {
			_cleanup_free_ char *p =
				xasprintf("%s/%s" STATUS_SUFFIX, dirs->status_dir, names[i]);
			if (access(p, F_OK) == 0)
				left++;
		}
		if (left == 0)
			return 0;
		if (time_now_ms() >= deadline) {
			fprintf(stderr, "banger: timed out after %u s waiting for %zu VM(s) to go\n",
				timeout_s, left);
			return -ETIMEDOUT;
		}
		sleep_ms(100);
	}
}

static int cmp_status(const void *a, const void *b)
{
	return strcmp((*(VmStatus *const *)a)->name, (*(VmStatus *const *)b)->name);
}

int cli_load_statuses(const char *status_dir, VmStatus ***ret, size_t *ret_n)
{
	DIR *d = opendir(status_dir);
	struct dirent *de;
	VmStatus **v = NULL;
	size_t n = 0;
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !endswith(de->d_name, STATUS_SUFFIX))
			continue;
		_cleanup_free_ char *name =
			xstrndup(de->d_name, strlen(de->d_name) - strlen(STATUS_SUFFIX));
		VmStatus *st = NULL;
		if (vm_status_read(status_dir, name, &st) < 0)
			continue;
		v = xrealloc(v, (n + 1) * sizeof(VmStatus *));
		v[n++] = st;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(VmStatus *), cmp_status);
	*ret = v;
	*ret_n = n;
	return 0;
}
