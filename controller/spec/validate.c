/* validate.c — one document's node tree → VmSpec with every default filled,
 * or diagnostics. Each mapping is walked against a table of its allowed
 * fields, so unknown fields, missing required ones and type errors are
 * all found in one pass; nothing stops at the first problem.
 *
 * The rules here and schema/vm.schema.json describe the same format; the
 * schema-agreement test keeps them honest. */
#include "spec/spec-internal.h"
#include "util/ip4.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

typedef struct {
	const char *file;
	Diags *d;
	size_t errors;
	VmSpec *s;
	SpecDoc *doc;
	const YNode *tcp_port; /* for the network/readiness cross-check */
} V;

typedef void (*FieldFn)(V *v, const YNode *val, const char *path);

typedef struct {
	const char *name;
	FieldFn fn;
	bool required;
} Field;

static void _printf_(4, 5) verr(V *v, const YNode *n, const char *path, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;

	v->errors++;
	if (v->d->n > SPEC_MAX_DIAGS)
		return; /* hostile input; the file-level report is capped anyway */
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	diags_add(v->d, v->file, n->line, n->col, path, "%s", msg);
}

/* ---- scalar helpers: each reports its own error and returns false ---- */

static bool want_kind_scalar(V *v, const YNode *n, const char *path, const char *expected)
{
	if (n->kind == YNODE_SCALAR)
		return true;
	if (n->kind != YNODE_ALIAS) { /* aliases were reported while parsing */
		_cleanup_free_ char *got = ynode_describe(n);
		verr(v, n, path, "must be %s, got %s", expected, got);
	} else {
		v->errors++;
	}
	return false;
}

static const char *want_string(V *v, const YNode *n, const char *path)
{
	if (!want_kind_scalar(v, n, path, "a string"))
		return NULL;
	if (ynode_scalar_type(n) != YSCALAR_STRING) {
		_cleanup_free_ char *got = ynode_describe(n);
		verr(v, n, path, "must be a string, got %s (quote it if you mean a string)", got);
		return NULL;
	}
	if (strlen(n->value) != n->len) {
		verr(v, n, path, "must not contain NUL bytes");
		return NULL;
	}
	return n->value;
}

/* Integers in [min, max]; a float with no fraction (2.0, 1e2) counts as an
 * integer, as in JSON Schema. */
static bool want_uint(V *v, const YNode *n, const char *path, uint64_t min, uint64_t max,
		      uint64_t *ret)
{
	YScalarType t = n->kind == YNODE_SCALAR ? ynode_scalar_type(n) : _YSCALAR_MAX;
	_cleanup_free_ char *got = NULL;
	uint64_t x;

	if (t == YSCALAR_INT) {
		const char *s = n->value + (n->value[0] == '+');
		if (parse_u64(s, min, max, &x) >= 0) {
			*ret = x;
			return true;
		}
	} else if (t == YSCALAR_FLOAT) {
		double d = strtod(n->value, NULL);
		if (d >= (double)min && d <= (double)max && d == (double)(uint64_t)d) {
			*ret = (uint64_t)d;
			return true;
		}
	}
	if (n->kind == YNODE_ALIAS) {
		v->errors++;
		return false;
	}
	got = (t == YSCALAR_INT || t == YSCALAR_FLOAT) ? ynode_quote(n) : ynode_describe(n);
	verr(v, n, path, "must be an integer between %" PRIu64 " and %" PRIu64 ", got %s", min, max,
	     got);
	return false;
}

static bool want_bool(V *v, const YNode *n, const char *path, bool *ret)
{
	_cleanup_free_ char *got = NULL;

	if (n->kind == YNODE_SCALAR && ynode_scalar_type(n) == YSCALAR_BOOL) {
		*ret = n->value[0] == 't' || n->value[0] == 'T';
		return true;
	}
	if (n->kind == YNODE_ALIAS) {
		v->errors++;
		return false;
	}
	got = n->kind == YNODE_SCALAR && n->plain ? ynode_quote(n) : ynode_describe(n);
	verr(v, n, path, "must be true or false, got %s", got);
	return false;
}

static bool want_enum(V *v, const YNode *n, const char *path, const char *const *names,
		      size_t count, int *ret)
{
	_cleanup_free_ char *list = xstrdup(""), *got = NULL;
	const char *s = want_string(v, n, path), *hint = NULL;

	if (!s)
		return false;
	for (size_t i = 0; i < count; i++) {
		if (!names[i])
			continue;
		if (streq(s, names[i])) {
			*ret = (int)i;
			return true;
		}
		if (strcasecmp(s, names[i]) == 0)
			hint = names[i];
		char *l = xasprintf("%s%s%s", list, list[0] ? ", " : "", names[i]);
		free(list);
		list = l;
	}
	got = ynode_quote(n);
	if (hint)
		verr(v, n, path, "must be one of %s, got %s (did you mean %s?)", list, got, hint);
	else
		verr(v, n, path, "must be one of %s, got %s", list, got);
	return false;
}

/* ---- the map walker ---- */

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[65];

	if (la > 64 || lb > 64)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t sub = diag + (a[i - 1] != b[j - 1]);
			row[j] = MIN(MIN(row[j] + 1, row[j - 1] + 1), sub);
			diag = up;
		}
	}
	return row[lb];
}

static const char *closest_field(const char *key, const Field *fields, size_t nf)
{
	const char *best = NULL;
	size_t best_d = 3;

	for (size_t i = 0; i < nf; i++) {
		if (strcasecmp(key, fields[i].name) == 0)
			return fields[i].name;
		size_t d = edit_distance(key, fields[i].name);
		if (d < best_d && d < strlen(fields[i].name) / 2 + 1) {
			best_d = d;
			best = fields[i].name;
		}
	}
	return best;
}

static bool key_printable(const YNode *k)
{
	if (k->len == 0 || k->len > 64)
		return false;
	for (size_t i = 0; i < k->len; i++)
		if (k->value[i] <= ' ' || k->value[i] > '~')
			return false;
	return true;
}

static char *child_path(const char *path, const char *name)
{
	return path[0] ? xasprintf("%s.%s", path, name) : xstrdup(name);
}

static char *field_list(const Field *fields, size_t nf)
{
	char *list = xstrdup("");
	for (size_t i = 0; i < nf; i++) {
		char *l = xasprintf("%s%s%s", list, i ? ", " : "", fields[i].name);
		free(list);
		list = l;
	}
	return list;
}

static void unknown_field(V *v, const YNode *k, const char *path, const Field *fields, size_t nf)
{
	_cleanup_free_ char *list = field_list(fields, nf), *name = NULL, *p = NULL;
	const char *hint = NULL;

	name = key_printable(k) ? xstrdup(k->value) : ynode_quote(k);
	p = child_path(path, name);
	if (key_printable(k))
		hint = closest_field(k->value, fields, nf);
	if (hint)
		verr(v, k, p, "unknown field; did you mean %s? (allowed: %s)", hint, list);
	else
		verr(v, k, p, "unknown field (allowed: %s)", list);
}

static bool want_map(V *v, const YNode *n, const char *path, const Field *fields, size_t nf)
{
	_cleanup_free_ char *list = NULL, *got = NULL;

	if (n->kind == YNODE_MAP)
		return true;
	if (n->kind == YNODE_ALIAS) {
		v->errors++;
		return false;
	}
	got = ynode_describe(n);
	list = field_list(fields, nf);
	verr(v, n, path, "must be a mapping (with fields %s), got %s", list, got);
	return false;
}

static void walk_map(V *v, const YNode *n, const char *path, const Field *fields, size_t nf)
{
	bool seen[16] = { false };

	if (!want_map(v, n, path, fields, nf))
		return;
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		const YNode *k = n->items[i], *val = n->items[i + 1];
		size_t f;
		if (k->kind != YNODE_SCALAR)
			continue; /* reported while parsing */
		for (f = 0; f < nf; f++)
			if (k->len == strlen(fields[f].name) && streq(k->value, fields[f].name))
				break;
		if (f == nf) {
			if (v->d->n > SPEC_MAX_DIAGS)
				v->errors++; /* past the report cap: skip the hint search */
			else
				unknown_field(v, k, path, fields, nf);
			continue;
		}
		seen[f] = true;
		_cleanup_free_ char *p = child_path(path, fields[f].name);
		fields[f].fn(v, val, p);
	}
	for (size_t f = 0; f < nf; f++) {
		if (!fields[f].required || seen[f])
			continue;
		_cleanup_free_ char *p = child_path(path, fields[f].name);
		verr(v, n, p, "required field is missing");
	}
}

/* ---- value rules ---- */

static bool label_token_valid(const char *s, bool allow_empty)
{
	size_t n = strlen(s);

	if (n == 0)
		return allow_empty;
	if (n > SPEC_LABEL_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum =
			(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || i == n - 1))
			return false;
		if (!alnum && c != '-' && c != '_' && c != '.')
			return false;
	}
	return true;
}

static bool subdomain_valid(const char *s)
{
	_cleanup_free_ char *copy = NULL;
	char *save = NULL;

	if (strlen(s) > SPEC_NODE_MAX || !*s || s[0] == '.' || endswith(s, ".") || strstr(s, ".."))
		return false;
	copy = xstrdup(s);
	for (char *t = strtok_r(copy, ".", &save); t; t = strtok_r(NULL, ".", &save))
		if (!dns_label_valid(t))
			return false;
	return true;
}

/* Lower-case aa:bb:cc:dd:ee:ff into out (18 bytes); -EINVAL. */
static int mac_parse(const char *s, char out[18])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[6];

	if (strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		const char *p = s + i * 3;
		int hi = -1, lo = -1;
		if (i < 5 && p[2] != ':')
			return -EINVAL;
		for (int k = 0; k < 16; k++) {
			if (hex[k] == (p[0] | 0x20))
				hi = k;
			if (hex[k] == (p[1] | 0x20))
				lo = k;
		}
		if (hi < 0 || lo < 0)
			return -EINVAL;
		b[i] = (uint8_t)(hi << 4 | lo);
	}
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
	return b[0] & 1 ? -EADDRNOTAVAIL : 0;
}

static void check_abs_path(V *v, const YNode *n, const char *path, char **dst)
{
	const char *s = want_string(v, n, path);
	_cleanup_free_ char *q = NULL;

	if (!s)
		return;
	q = ynode_quote(n);
	if (s[0] != '/') {
		verr(v, n, path, "must be an absolute path (starting with /), got %s", q);
		return;
	}
	if (n->len > SPEC_MAX_STRING) {
		verr(v, n, path, "must be at most %d bytes long, got %zu", SPEC_MAX_STRING, n->len);
		return;
	}
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			verr(v, n, path, "must not contain control characters, got %s", q);
			return;
		}
	}
	free_and_replace_str(dst, s);
}

/* ---- field handlers ---- */

static void f_api_version(V *v, const YNode *n, const char *path)
{
	const char *s = want_string(v, n, path);
	_cleanup_free_ char *q = NULL;

	if (s && !streq(s, SPEC_API_VERSION)) {
		q = ynode_quote(n);
		verr(v, n, path, "must be \"" SPEC_API_VERSION "\", got %s", q);
	}
}

static void f_kind(V *v, const YNode *n, const char *path)
{
	const char *s = want_string(v, n, path);
	_cleanup_free_ char *q = NULL;

	if (s && !streq(s, SPEC_KIND)) {
		q = ynode_quote(n);
		verr(v, n, path, "must be \"" SPEC_KIND "\", got %s", q);
	}
}

static void f_name(V *v, const YNode *n, const char *path)
{
	const char *s = want_string(v, n, path);
	_cleanup_free_ char *q = NULL;

	if (!s)
		return;
	free_and_replace_str(&v->doc->name, s);
	v->doc->name_line = n->line;
	v->doc->name_col = n->col;
	v->doc->name_valid = dns_label_valid(s);
	if (v->doc->name_valid) {
		free_and_replace_str(&v->s->name, s);
		return;
	}
	q = ynode_quote(n);
	verr(v, n, path,
	     "must be a DNS-1123 label (1-%d characters a-z, 0-9 and '-', starting and ending "
	     "with a letter or digit), got %s",
	     SPEC_NAME_MAX, q);
}

static void label_add(V *v, const YNode *k, const YNode *val, const char *path)
{
	_cleanup_free_ char *p = NULL, *q = NULL;
	const char *key = NULL, *value;

	if (k->kind != YNODE_SCALAR)
		return;
	p = key_printable(k) ? child_path(path, k->value) : xstrdup(path);
	if (ynode_scalar_type(k) != YSCALAR_STRING || strlen(k->value) != k->len) {
		q = ynode_describe(k);
		verr(v, k, p, "label keys must be strings, got %s", q);
	} else if (!label_token_valid(k->value, false)) {
		q = ynode_quote(k);
		verr(v, k, p,
		     "label key must be 1-%d characters of a-z, A-Z, 0-9, '-', '_' and '.', "
		     "starting and ending with a letter or digit, got %s",
		     SPEC_LABEL_MAX, q);
	} else {
		key = k->value;
	}
	value = want_string(v, val, p);
	if (value && !label_token_valid(value, true)) {
		free(q);
		q = ynode_quote(val);
		verr(v, val, p,
		     "label value must be empty or 1-%d characters of a-z, A-Z, 0-9, '-', '_' "
		     "and '.', starting and ending with a letter or digit, got %s",
		     SPEC_LABEL_MAX, q);
		value = NULL;
	}
	if (!key || !value)
		return;
	v->s->labels = xrealloc(v->s->labels, (v->s->n_labels + 1) * sizeof(SpecLabel));
	v->s->labels[v->s->n_labels++] = (SpecLabel){ xstrdup(key), xstrdup(value) };
}

static int label_cmp(const void *a, const void *b)
{
	return strcmp(((const SpecLabel *)a)->key, ((const SpecLabel *)b)->key);
}

static void f_labels(V *v, const YNode *n, const char *path)
{
	_cleanup_free_ char *got = NULL;

	if (n->kind != YNODE_MAP) {
		if (n->kind == YNODE_ALIAS) {
			v->errors++;
			return;
		}
		got = ynode_describe(n);
		verr(v, n, path, "must be a mapping of label names to strings, got %s", got);
		return;
	}
	if (n->n / 2 > SPEC_MAX_LABELS) {
		verr(v, n, path, "at most %d labels are allowed, got %zu", SPEC_MAX_LABELS,
		     n->n / 2);
		return;
	}
	for (size_t i = 0; i + 1 < n->n; i += 2)
		label_add(v, n->items[i], n->items[i + 1], path);
	if (v->s->n_labels > 1)
		qsort(v->s->labels, v->s->n_labels, sizeof(SpecLabel), label_cmp);
}

static void f_state(V *v, const YNode *n, const char *path)
{
	static const char *const names[] = { "Running", "Stopped", "Suspended" };
	int x;

	if (want_enum(v, n, path, names, ELEMENTSOF(names), &x))
		v->s->state = (VmDesiredState)x;
}

static void f_node(V *v, const YNode *n, const char *path)
{
	const char *s = want_string(v, n, path);
	_cleanup_free_ char *q = NULL;

	if (!s)
		return;
	if (subdomain_valid(s)) {
		free_and_replace_str(&v->s->node, s);
		return;
	}
	q = ynode_quote(n);
	verr(v, n, path,
	     "must be a host name (DNS-1123 labels joined by '.', lower-case, at most %d "
	     "characters), got %s",
	     SPEC_NODE_MAX, q);
}

static void f_vmm(V *v, const YNode *n, const char *path)
{
	static const char *const names[] = { NULL, "firecracker", "qemu" };
	int x;

	if (want_enum(v, n, path, names, ELEMENTSOF(names), &x))
		v->s->vmm = (VmmKind)x;
}

static void f_vcpus(V *v, const YNode *n, const char *path)
{
	uint64_t x;
	if (want_uint(v, n, path, SPEC_VCPUS_MIN, SPEC_VCPUS_MAX, &x))
		v->s->vcpus = (unsigned)x;
}

static void f_memory(V *v, const YNode *n, const char *path)
{
	uint64_t x;
	if (want_uint(v, n, path, SPEC_MEMORY_MIB_MIN, SPEC_MEMORY_MIB_MAX, &x))
		v->s->memory_mib = (unsigned)x;
}

static void f_kernel_path(V *v, const YNode *n, const char *path)
{
	check_abs_path(v, n, path, &v->s->kernel_path);
}

static void f_initrd(V *v, const YNode *n, const char *path)
{
	check_abs_path(v, n, path, &v->s->initrd_path);
}

static void f_rootfs_path(V *v, const YNode *n, const char *path)
{
	check_abs_path(v, n, path, &v->s->rootfs_path);
}

static void f_args(V *v, const YNode *n, const char *path)
{
	const char *s = want_string(v, n, path);

	if (!s)
		return;
	if (n->len > SPEC_KERNEL_ARGS_MAX) {
		verr(v, n, path, "must be at most %d characters long, got %zu",
		     SPEC_KERNEL_ARGS_MAX, n->len);
		return;
	}
	for (const char *p = s; *p; p++) {
		if (*p < ' ' || *p > '~') {
			verr(v, n, path, "must be printable ASCII (a kernel command line)");
			return;
		}
	}
	free_and_replace_str(&v->s->kernel_args, s);
}

static void f_work_disk_size(V *v, const YNode *n, const char *path)
{
	uint64_t x;
	if (want_uint(v, n, path, SPEC_WORK_DISK_MIB_MIN, SPEC_WORK_DISK_MIB_MAX, &x))
		v->s->work_disk_mib = x;
}

static void f_enabled(V *v, const YNode *n, const char *path)
{
	bool b;
	if (want_bool(v, n, path, &b))
		v->s->network_enabled = b;
}

static void f_guest_ip(V *v, const YNode *n, const char *path)
{
	const char *s = want_string(v, n, path);
	_cleanup_free_ char *q = NULL;
	uint32_t a;

	if (!s)
		return;
	q = ynode_quote(n);
	if (ip4_parse(s, &a) < 0) {
		verr(v, n, path, "must be an IPv4 address like 172.16.0.10, got %s", q);
		return;
	}
	if ((a >> 24) == 0 || (a >> 24) == 127 || (a >> 24) >= 224) {
		verr(v, n, path,
		     "must be a unicast IPv4 address (not 0.0.0.0/8, loopback, multicast or "
		     "reserved), got %s",
		     q);
		return;
	}
	free_and_replace_str(&v->s->guest_ip, s);
}

static void f_mac(V *v, const YNode *n, const char *path)
{
	const char *s = want_string(v, n, path);
	_cleanup_free_ char *q = NULL;
	char mac[18];
	int r;

	if (!s)
		return;
	q = ynode_quote(n);
	r = mac_parse(s, mac);
	if (r == -EINVAL)
		verr(v, n, path, "must be a MAC address like 06:00:ac:10:00:0a, got %s", q);
	else if (r < 0 || streq(mac, "00:00:00:00:00:00"))
		verr(v, n, path,
		     "must be a unicast MAC address (lowest bit of the first byte clear, not "
		     "all zero), got %s",
		     q);
	else
		free_and_replace_str(&v->s->mac, mac);
}

static void f_tcp_port(V *v, const YNode *n, const char *path)
{
	uint64_t x;

	v->tcp_port = n;
	if (want_uint(v, n, path, 1, 65535, &x))
		v->s->readiness_tcp_port = (unsigned)x;
}

static void f_timeout(V *v, const YNode *n, const char *path)
{
	uint64_t x;
	if (want_uint(v, n, path, SPEC_TIMEOUT_S_MIN, SPEC_TIMEOUT_S_MAX, &x))
		v->s->readiness_timeout_s = (unsigned)x;
}

static void f_restart(V *v, const YNode *n, const char *path)
{
	static const char *const names[] = { "Always", "OnFailure", "Never" };
	int x;

	if (want_enum(v, n, path, names, ELEMENTSOF(names), &x))
		v->s->restart_policy = (RestartPolicy)x;
}

/* ---- section tables ---- */

#define SECTION(fn, table)                                                                         \
	static void fn(V *v, const YNode *n, const char *path)                                     \
	{                                                                                          \
		walk_map(v, n, path, table, ELEMENTSOF(table));                                    \
	}

static const Field kernel_fields[] = {
	{ "path", f_kernel_path, true },
	{ "args", f_args, false },
	{ "initrd", f_initrd, false },
};
SECTION(f_kernel, kernel_fields)

static const Field rootfs_fields[] = {
	{ "path", f_rootfs_path, true },
};
SECTION(f_rootfs, rootfs_fields)

static const Field work_disk_fields[] = {
	{ "sizeMiB", f_work_disk_size, true },
};
SECTION(f_work_disk, work_disk_fields)

static const Field network_fields[] = {
	{ "enabled", f_enabled, false },
	{ "guestIP", f_guest_ip, false },
	{ "mac", f_mac, false },
};
SECTION(f_network, network_fields)

static const Field readiness_fields[] = {
	{ "tcpPort", f_tcp_port, false },
	{ "timeoutSeconds", f_timeout, false },
};
SECTION(f_readiness, readiness_fields)

static const Field spec_fields[] = {
	{ "state", f_state, false },
	{ "node", f_node, false },
	{ "vmm", f_vmm, false },
	{ "vcpus", f_vcpus, false },
	{ "memoryMiB", f_memory, false },
	{ "kernel", f_kernel, true },
	{ "rootfs", f_rootfs, true },
	{ "workDisk", f_work_disk, false },
	{ "network", f_network, false },
	{ "readiness", f_readiness, false },
	{ "restartPolicy", f_restart, false },
};

SECTION(f_spec, spec_fields)

static const Field metadata_fields[] = {
	{ "name", f_name, true },
	{ "labels", f_labels, false },
};
SECTION(f_metadata, metadata_fields)

static const Field root_fields[] = {
	{ "apiVersion", f_api_version, true },
	{ "kind", f_kind, true },
	{ "metadata", f_metadata, true },
	{ "spec", f_spec, true },
};

static void vm_spec_defaults(VmSpec *s)
{
	*s = (VmSpec){
		.state = VM_STATE_RUNNING,
		.vmm = VMM_KIND_DEFAULT,
		.vcpus = SPEC_VCPUS_DEFAULT,
		.memory_mib = SPEC_MEMORY_MIB_DEFAULT,
		.network_enabled = true,
		.readiness_timeout_s = SPEC_TIMEOUT_S_DEFAULT,
		.restart_policy = RESTART_ALWAYS,
	};
}

static void check_cross_fields(V *v)
{
	if (v->tcp_port && v->s->readiness_tcp_port && !v->s->network_enabled)
		verr(v, v->tcp_port, "spec.readiness.tcpPort",
		     "a TCP readiness probe needs the network; remove it or set "
		     "spec.network.enabled: true");
}

size_t spec_validate_document(const char *file, const YNode *root, SpecDoc *doc, Diags *d)
{
	_cleanup_(vm_spec_freep) VmSpec *s = xmalloc(sizeof(VmSpec));
	V v = { .file = file, .d = d, .s = s, .doc = doc };

	vm_spec_defaults(s);
	if (root->kind != YNODE_MAP) {
		_cleanup_free_ char *got = ynode_describe(root);
		verr(&v, root, "",
		     "a document must be a mapping with apiVersion, kind, metadata and spec, got %s",
		     got);
		return v.errors;
	}
	walk_map(&v, root, "", root_fields, ELEMENTSOF(root_fields));
	check_cross_fields(&v);
	if (v.errors == 0)
		doc->spec = TAKE_PTR(s);
	return v.errors;
}
