/* canonical.c — the canonical JSON form of a VmSpec, its hash, and the
 * boot-relevant comparison.
 *
 * Canonical form: one compact JSON object, keys sorted by byte value at
 * every level, every field that has a default written out, fields that are
 * genuinely optional and unset (node, vmm, kernel.args, kernel.initrd,
 * network.guestIP, network.mac, readiness.tcpPort, workDisk) omitted, and
 * labels always present (possibly {}). Because it is produced from the
 * validated VmSpec and never from the source text, comments, key order,
 * quoting style and explicitly written defaults cannot change it. Reading
 * it back goes through the same validator as a spec file, so a stored spec
 * obeys exactly the rules a fresh one does. */
#include "spec/spec-internal.h"
#include "util/escape.h"
#include "util/sha256.h"

#include <inttypes.h>
#include <stdio.h>

typedef struct {
	char *p;
	size_t n, cap;
	bool first; /* no comma needed before the next key */
} Buf;

static void buf_put(Buf *b, const char *s, size_t len)
{
	if (b->n + len + 1 > b->cap) {
		b->cap = MAX(b->cap * 2, b->n + len + 64);
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, s, len);
	b->n += len;
	b->p[b->n] = 0;
}

static void buf_puts(Buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

static void buf_string(Buf *b, const char *s)
{
	buf_puts(b, "\"");
	if (escape_needed(s, ESCAPE_JSON)) {
		_cleanup_free_ char *e = escape_str(s, ESCAPE_JSON);
		buf_puts(b, e);
	} else
		buf_puts(b, s);
	buf_puts(b, "\"");
}

static void buf_key(Buf *b, const char *key)
{
	if (!b->first)
		buf_puts(b, ",");
	b->first = false;
	buf_string(b, key);
	buf_puts(b, ":");
}

static void buf_open(Buf *b, const char *key)
{
	if (key)
		buf_key(b, key);
	buf_puts(b, "{");
	b->first = true;
}

static void buf_close(Buf *b)
{
	buf_puts(b, "}");
	b->first = false;
}

static void put_str(Buf *b, const char *key, const char *value)
{
	if (!value)
		return;
	buf_key(b, key);
	buf_string(b, value);
}

static void put_uint(Buf *b, const char *key, uint64_t value)
{
	char num[32];

	snprintf(num, sizeof(num), "%" PRIu64, value);
	buf_key(b, key);
	buf_puts(b, num);
}

static void put_metadata(Buf *b, const VmSpec *s)
{
	buf_open(b, "metadata");
	buf_open(b, "labels");
	for (size_t i = 0; i < s->n_labels; i++)
		put_str(b, s->labels[i].key, s->labels[i].value);
	buf_close(b);
	put_str(b, "name", s->name);
	buf_close(b);
}

/* Keys in byte order: kernel memoryMiB network node readiness restartPolicy
 * rootfs state vcpus vmm workDisk. */
static void put_spec(Buf *b, const VmSpec *s)
{
	buf_open(b, "spec");
	buf_open(b, "kernel");
	put_str(b, "args", s->kernel_args);
	put_str(b, "initrd", s->initrd_path);
	put_str(b, "path", s->kernel_path);
	buf_close(b);
	put_uint(b, "memoryMiB", s->memory_mib);
	buf_open(b, "network");
	buf_key(b, "enabled");
	buf_puts(b, s->network_enabled ? "true" : "false");
	put_str(b, "guestIP", s->guest_ip);
	put_str(b, "mac", s->mac);
	buf_close(b);
	put_str(b, "node", s->node);
	buf_open(b, "readiness");
	if (s->readiness_tcp_port)
		put_uint(b, "tcpPort", s->readiness_tcp_port);
	put_uint(b, "timeoutSeconds", s->readiness_timeout_s);
	buf_close(b);
	put_str(b, "restartPolicy", restart_policy_to_string(s->restart_policy));
	buf_open(b, "rootfs");
	put_str(b, "path", s->rootfs_path);
	buf_close(b);
	put_str(b, "state", vm_desired_state_to_string(s->state));
	put_uint(b, "vcpus", s->vcpus);
	if (s->vmm != VMM_KIND_DEFAULT)
		put_str(b, "vmm", vmm_kind_to_string(s->vmm));
	if (s->work_disk_mib) {
		buf_open(b, "workDisk");
		put_uint(b, "sizeMiB", s->work_disk_mib);
		buf_close(b);
	}
	buf_close(b);
}

char *vm_spec_to_canonical_json(const VmSpec *s)
{
	Buf b = { 0 };

	buf_open(&b, NULL);
	put_str(&b, "apiVersion", SPEC_API_VERSION);
	put_str(&b, "kind", SPEC_KIND);
	put_metadata(&b, s);
	put_spec(&b, s);
	buf_close(&b);
	return b.p;
}

int vm_spec_from_json(const char *json, VmSpec **ret)
{
	_cleanup_(spec_file_freep) SpecFile *f = NULL;
	int r;

	if (!json || !ret)
		return -EINVAL;
	r = spec_parse_buffer("<json>", json, strlen(json), &f);
	if (r < 0)
		return r;
	if (f->unreadable || f->diags.n > 0 || f->n_docs != 1 || !f->docs[0].spec)
		return -EINVAL;
	*ret = TAKE_PTR(f->docs[0].spec);
	return 0;
}

void vm_spec_hash(const VmSpec *s, char out[65])
{
	_cleanup_free_ char *json = vm_spec_to_canonical_json(s);
	sha256_hex(json, strlen(json), out);
}

/* ---- boot-relevant comparison ---- */

#define WHY_SHOWN 3

typedef struct {
	char *text;
	size_t n;
} Why;

static void why_add(Why *w, const char *field, const char *a, const char *b)
{
	w->n++;
	if (w->n > WHY_SHOWN)
		return;
	char *t = xasprintf("%s%s%s %s\xe2\x86\x92%s", w->text ? w->text : "", w->text ? ", " : "",
			    field, a ? a : "(unset)", b ? b : "(unset)");
	free(w->text);
	w->text = t;
}

static void cmp_str(Why *w, const char *field, const char *a, const char *b)
{
	if (!streq_ptr(a, b))
		why_add(w, field, a, b);
}

static void cmp_uint(Why *w, const char *field, uint64_t a, uint64_t b)
{
	char x[32], y[32];

	if (a == b)
		return;
	snprintf(x, sizeof(x), "%" PRIu64, a);
	snprintf(y, sizeof(y), "%" PRIu64, b);
	why_add(w, field, x, y);
}

/* Fields in the canonical (alphabetical) order so summaries are stable. */
bool vm_spec_boot_equal(const VmSpec *a, const VmSpec *b, char **ret_why)
{
	Why w = { 0 };

	cmp_str(&w, "kernel.args", a->kernel_args, b->kernel_args);
	cmp_str(&w, "kernel.initrd", a->initrd_path, b->initrd_path);
	cmp_str(&w, "kernel.path", a->kernel_path, b->kernel_path);
	cmp_uint(&w, "memoryMiB", a->memory_mib, b->memory_mib);
	cmp_str(&w, "name", a->name, b->name);
	cmp_str(&w, "network.enabled", a->network_enabled ? "true" : "false",
		b->network_enabled ? "true" : "false");
	cmp_str(&w, "network.guestIP", a->guest_ip, b->guest_ip);
	cmp_str(&w, "network.mac", a->mac, b->mac);
	cmp_str(&w, "rootfs.path", a->rootfs_path, b->rootfs_path);
	cmp_uint(&w, "vcpus", a->vcpus, b->vcpus);
	cmp_str(&w, "vmm", vmm_kind_to_string(a->vmm), vmm_kind_to_string(b->vmm));
	cmp_uint(&w, "workDisk.sizeMiB", a->work_disk_mib, b->work_disk_mib);
	if (w.n > WHY_SHOWN) {
		char *t = xasprintf("%s and %zu more", w.text, w.n - WHY_SHOWN);
		free(w.text);
		w.text = t;
	}
	if (ret_why)
		*ret_why = TAKE_PTR(w.text); /* NULL when equal */
	free(w.text);
	return w.n == 0;
}
