/* common.c — see common.h. */
#include "cli/common.h"
#include "cli/selector.h"
#include "spec/specdir.h"
#include "util/escape.h"
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
		int e = -errno;
		cli_error("%s: %s", path, strerror(-e));
		return e;
	}
	if (!S_ISDIR(st.st_mode)) {
		strv_push(files, xstrdup(path));
		return 0;
	}
	_cleanup_strv_free_ char **rel = NULL;
	int r = spec_dir_list(path, &rel);
	if (r < 0) {
		cli_error("%s: %s", path, strerror(-r));
		return r;
	}
	if (!rel || !rel[0]) {
		cli_error("%s: no spec files (*.yaml, *.yml, *.json) in this directory", path);
		return -ENOENT;
	}
	for (size_t i = 0; rel[i]; i++)
		strv_push(files, path_join(path, rel[i]));
	return 0;
}

int cli_parse_input(const char *path, SpecFile **ret, char **ret_data)
{
	_cleanup_free_ char *data = NULL;
	SpecFile *sf = NULL;
	size_t len = 0;
	int r;
	if (streq(path, "-"))
		r = read_fd_bounded(STDIN_FILENO, SPEC_MAX_FILE_BYTES, &data, &len);
	else
		r = read_file_bounded(path, SPEC_MAX_FILE_BYTES, &data, &len);
	if (r < 0) {
		cli_error("%s: %s", path,
			  r == -EFBIG ? "input is larger than 1 MiB" : strerror(-r));
		return r;
	}
	r = spec_parse_buffer(path, data, len, &sf);
	if (r < 0) {
		cli_error("%s: %s", path, strerror(-r));
		return r;
	}
	for (size_t i = 0; i < sf->diags.n; i++) {
		_cleanup_free_ char *line = diag_format(&sf->diags.items[i]);
		escape_fputs(stderr, line, ESCAPE_DISPLAY); /* file names are anyone's */
		fputc('\n', stderr);
	}
	*ret = sf;
	if (ret_data)
		*ret_data = strlen(data) == len ? TAKE_PTR(data) : NULL; /* no NUL bytes */
	return 0;
}

struct SpecDirIndex {
	Hashmap *by_name; /* name → strv of rel */
	Hashmap *by_file; /* rel → strv of names */
	Hashmap *specs;   /* name → VmSpec of its first valid definition */
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
	size_t st = 0;
	void *v;
	while (idx->specs && hashmap_iter(idx->specs, &st, NULL, &v))
		vm_spec_free(v);
	hashmap_free(idx->specs);
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
	idx->specs = hashmap_new();
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
			if (sf->docs[k].spec && !hashmap_contains(idx->specs, sf->docs[k].name))
				hashmap_put(idx->specs, sf->docs[k].name,
					    TAKE_PTR(sf->docs[k].spec));
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

const VmSpec *spec_dir_index_spec(SpecDirIndex *idx, const char *name)
{
	return hashmap_get(idx->specs, name);
}

char **spec_dir_index_all_names(SpecDirIndex *idx)
{
	return hashmap_keys_sorted(idx->by_name);
}

int cli_load_statuses(const char *status_dir, VmStatus ***ret, size_t *ret_n)
{
	_cleanup_strv_free_ char **names = NULL;
	VmStatus **v = NULL;
	size_t n = 0;
	int r = vm_status_list_names(status_dir, &names);
	if (r < 0)
		return r;
	for (size_t i = 0; names[i]; i++) {
		VmStatus *st = NULL;
		if (vm_status_read(status_dir, names[i], &st) < 0)
			continue;
		v = xrealloc(v, (n + 1) * sizeof(VmStatus *));
		v[n++] = st;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int cli_select_names(const CliDirs *dirs, const char *selector, char ***ret)
{
	_cleanup_(selector_freep) Selector *sel = NULL;
	_cleanup_free_ char *err = NULL;
	if (selector_parse(selector, &sel, &err) < 0) {
		cli_error("-l: %s", err);
		return -EDOM;
	}
	_cleanup_(spec_dir_index_freep) SpecDirIndex *idx = NULL;
	int r = spec_dir_index_build(dirs->spec_dir, &idx);
	if (r < 0) {
		cli_error("spec dir %s: %s", dirs->spec_dir, strerror(-r));
		return r;
	}
	_cleanup_strv_free_ char **all = spec_dir_index_all_names(idx);
	char **out = NULL;
	for (size_t i = 0; all[i]; i++) {
		const VmSpec *s = spec_dir_index_spec(idx, all[i]);
		if (selector_matches(sel, s ? s->labels : NULL, s ? s->n_labels : 0))
			strv_push(&out, xstrdup(all[i]));
	}
	if (!out) {
		cli_error("no VM in %s matches the selector '%s'", dirs->spec_dir, selector);
		return -ENOENT;
	}
	*ret = out;
	return 0;
}

int cli_resolve_names(const CliDirs *dirs, char *const *names, bool must_exist)
{
	_cleanup_(spec_dir_index_freep) SpecDirIndex *idx = NULL;
	int rc = 0;
	for (size_t i = 0; names[i]; i++) {
		if (!cli_check_name(names[i])) {
			rc = -EINVAL;
			continue;
		}
		if (!must_exist)
			continue;
		_cleanup_free_ char *p = vm_status_path(dirs->status_dir, names[i]);
		if (access(p, F_OK) == 0)
			continue;
		if (!idx && spec_dir_index_build(dirs->spec_dir, &idx) < 0)
			idx = NULL;
		if (idx && spec_dir_index_definers(idx, names[i]))
			continue;
		cli_error("vm/%s not found (no status file in %s, no spec in %s)", names[i],
			  dirs->status_dir, dirs->spec_dir);
		if (!rc)
			rc = -ENOENT;
	}
	return rc;
}

void cli_format_age(int64_t since_ms, char *buf, size_t n)
{
	int64_t s = since_ms > 0 ? (time_now_realtime_ms() - since_ms) / 1000 : -1;
	if (s < 0)
		snprintf(buf, n, "-");
	else if (s < 120)
		snprintf(buf, n, "%llds", (long long)s);
	else if (s < 7200)
		snprintf(buf, n, "%lldm", (long long)(s / 60));
	else if (s < 172800)
		snprintf(buf, n, "%lldh", (long long)(s / 3600));
	else
		snprintf(buf, n, "%lldd", (long long)(s / 86400));
}

int cli_compile_jsonpath(const char *opt, const char *tmpl, JsonPath **ret)
{
	_cleanup_free_ char *err = NULL;
	int r = jsonpath_compile(tmpl, ret, &err);
	if (r < 0)
		cli_error("%s: %s", opt, err ?: "template not understood");
	return r;
}
