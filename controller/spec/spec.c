/* spec.c — bytes → documents: the hostile-input gate (size, encoding,
 * limits), the libyaml event loop that builds one bounded node tree per
 * document, and the per-file rules (duplicate names). See spec.h.
 *
 * Limits are checked as events arrive, so a billion-laughs file or a
 * 100,000-deep nesting is refused after at most SPEC_MAX_NODES events and
 * never expanded: aliases are refused outright, not resolved. */
#include "spec/spec-internal.h"
#include "util/fileio.h"

#include <stdio.h>
#include <yaml.h>

typedef struct {
	const char *file;
	SpecFile *f;
	YNode *root;
	YNode *stack[SPEC_MAX_DEPTH];
	size_t depth, nodes, ndocs;
	unsigned doc_line;
	Diags doc_diags; /* problems of the document being built */
	bool stop;
} Builder;

size_t spec_utf8_invalid_offset(const char *data, size_t len)
{
	const unsigned char *s = (const unsigned char *)data;
	size_t i = 0;

	while (i < len) {
		unsigned c = s[i], need, cp, min;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			need = 1, cp = c & 0x1f, min = 0x80;
		else if (c >= 0xe0 && c <= 0xef)
			need = 2, cp = c & 0x0f, min = 0x800;
		else if (c >= 0xf0 && c <= 0xf4)
			need = 3, cp = c & 0x07, min = 0x10000;
		else
			return i;
		if (len - i <= need)
			return i;
		for (unsigned k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += need + 1;
	}
	return len;
}

static void offset_to_position(const char *data, size_t off, unsigned *line, unsigned *col)
{
	unsigned l = 1, c = 1;
	for (size_t i = 0; i < off; i++) {
		if (data[i] == '\n')
			l++, c = 1;
		else
			c++;
	}
	*line = l;
	*col = c;
}

static void builder_emit_doc_diags(Builder *b);

/* A file-level problem that makes the document list untrustworthy. The
 * problems already found in the unfinished document are still reported. */
static void builder_fatal(Builder *b, unsigned line, unsigned col, const char *msg)
{
	builder_emit_doc_diags(b);
	diags_add(&b->f->diags, b->file, line, col, "", "%s", msg);
	b->f->unreadable = true;
	b->stop = true;
}

/* Hostile input can produce a problem per node; past the report cap only
 * one is needed to keep the document invalid, so stop formatting them. */
static bool builder_room(const Builder *b)
{
	return b->doc_diags.n <= SPEC_MAX_DIAGS;
}

static char *tag_display(const char *tag)
{
	static const char core[] = "tag:yaml.org,2002:";
	if (startswith(tag, core))
		return xasprintf("!!%s", tag + strlen(core));
	return xstrdup(tag);
}

static char *key_text(const YNode *k)
{
	if (k->kind != YNODE_SCALAR)
		return xstrdup("?");
	for (size_t i = 0; i < k->len; i++)
		if (k->value[i] <= ' ' || k->value[i] > '~' || k->len > 64)
			return ynode_quote(k);
	return xstrdup(k->len ? k->value : "\"\"");
}

static char *path_append(char *path, const char *part, bool index)
{
	char *p;
	if (index)
		p = xasprintf("%s[%s]", path, part);
	else
		p = xasprintf("%s%s%s", path, path[0] ? "." : "", part);
	free(path);
	return p;
}

/* Dotted field path of the node about to be added at the current depth
 * (with_next) or of the innermost open container, for diagnostics. */
static char *builder_path(const Builder *b, bool with_next)
{
	char *path = xstrdup("");

	for (size_t j = 0; j < b->depth; j++) {
		const YNode *parent = b->stack[j];
		bool last = j + 1 == b->depth;
		size_t n = parent->n + (last ? 1 : 0); /* count with the child in place */
		if (last && !with_next)
			break;
		if (parent->kind == YNODE_MAP && n % 2 == 0) {
			_cleanup_free_ char *k = key_text(parent->items[n - 2]);
			path = path_append(path, k, false);
		} else if (parent->kind == YNODE_SEQ) {
			char idx[32];
			snprintf(idx, sizeof(idx), "%zu", n - 1);
			path = path_append(path, idx, true);
		}
	}
	return path;
}

/* Anchors, aliases and explicit tags make a document invalid (not the
 * file): the rest of the document is still checked. */
static void builder_check_props(Builder *b, const YNode *n, const char *anchor, const char *tag)
{
	_cleanup_free_ char *path = NULL;

	if ((!anchor && !tag) || !builder_room(b))
		return;
	path = builder_path(b, true);
	if (anchor)
		diags_add(&b->doc_diags, b->file, n->line, n->col, path,
			  "YAML anchors (&%s) are not supported; write the value out", anchor);
	if (tag) {
		_cleanup_free_ char *t = tag_display(tag);
		diags_add(&b->doc_diags, b->file, n->line, n->col, path,
			  "YAML tags (%s) are not supported; write a plain value", t);
	}
}

static void builder_add(Builder *b, YNode *n)
{
	if (b->depth == 0) {
		if (b->root)
			ynode_free(b->root);
		b->root = n;
	} else {
		ynode_append(b->stack[b->depth - 1], n);
	}
}

static int key_cmp(const void *x, const void *y)
{
	const YNode *a = *(YNode *const *)x, *c = *(YNode *const *)y;
	int r;

	if (a->len != c->len)
		return a->len < c->len ? -1 : 1;
	r = memcmp(a->value, c->value, a->len);
	if (r)
		return r;
	/* Equal keys: keep file order so the first one is reported as first. */
	return (a->line > c->line || (a->line == c->line && a->col > c->col)) -
	       (a->line < c->line || (a->line == c->line && a->col < c->col));
}

/* Keys must be scalars and unique. Sorting keeps this O(n log n) for a
 * hostile mapping with 100,000 keys. */
static void builder_check_keys(Builder *b, const YNode *map)
{
	_cleanup_free_ YNode **keys = xmalloc((map->n / 2 + 1) * sizeof(YNode *));
	_cleanup_free_ char *path = builder_path(b, false);
	size_t nk = 0;

	for (size_t i = 0; i + 1 < map->n; i += 2) {
		YNode *k = map->items[i];
		if (k->kind == YNODE_SCALAR)
			keys[nk++] = k;
		else if (k->kind != YNODE_ALIAS && builder_room(b))
			diags_add(&b->doc_diags, b->file, k->line, k->col, path,
				  "mapping keys must be strings, got %s",
				  k->kind == YNODE_MAP ? "a mapping" : "a sequence");
	}
	qsort(keys, nk, sizeof(YNode *), key_cmp);
	for (size_t i = 1, g = 0; i < nk && builder_room(b); i++) {
		const YNode *first = keys[g], *k = keys[i];
		if (k->len != first->len || memcmp(k->value, first->value, k->len)) {
			g = i;
			continue;
		}
		_cleanup_free_ char *kt = key_text(k), *q = ynode_quote(k);
		_cleanup_free_ char *field = path_append(xstrdup(path), kt, false);
		diags_add(&b->doc_diags, b->file, k->line, k->col, field,
			  "duplicate key %s (first defined at line %u)", q, first->line);
	}
}

static void builder_push(Builder *b, YNode *n)
{
	if (b->depth == SPEC_MAX_DEPTH) {
		char msg[128];
		snprintf(msg, sizeof(msg), "YAML nesting deeper than %d levels", SPEC_MAX_DEPTH);
		builder_fatal(b, n->line, n->col, msg);
		ynode_free(n);
		return;
	}
	builder_add(b, n);
	b->stack[b->depth++] = n;
}

static void builder_fatal_yaml(Builder *b, const yaml_parser_t *p, const char *data)
{
	unsigned line = (unsigned)p->problem_mark.line + 1,
		 col = (unsigned)p->problem_mark.column + 1;
	_cleanup_free_ char *msg = NULL;

	if (p->error == YAML_READER_ERROR)
		offset_to_position(data, p->problem_offset, &line, &col);
	if (p->error == YAML_MEMORY_ERROR)
		msg = xstrdup("YAML parser ran out of memory");
	else if (p->context)
		msg = xasprintf("YAML syntax error: %s (%s at line %zu)",
				p->problem ? p->problem : "unknown problem", p->context,
				p->context_mark.line + 1);
	else
		msg = xasprintf("YAML syntax error: %s",
				p->problem ? p->problem : "unknown problem");
	builder_fatal(b, line, col, msg);
}

typedef struct {
	Diag d;
	size_t i;
} DiagSlot;

static int diag_slot_cmp(const void *x, const void *y)
{
	const DiagSlot *a = x, *c = y;
	if (a->d.line != c->d.line)
		return a->d.line < c->d.line ? -1 : 1;
	if (a->d.col != c->d.col)
		return a->d.col < c->d.col ? -1 : 1;
	return a->i < c->i ? -1 : a->i > c->i;
}

/* Stable sort of one document's diagnostics by position, so a reader sees
 * them in file order whichever pass (tree building, validation) found them. */
static void diags_sort_stable(Diags *d)
{
	_cleanup_free_ DiagSlot *slots = NULL;

	if (d->n < 2)
		return;
	slots = xmalloc(d->n * sizeof(DiagSlot));
	for (size_t i = 0; i < d->n; i++)
		slots[i] = (DiagSlot){ d->items[i], i };
	qsort(slots, d->n, sizeof(DiagSlot), diag_slot_cmp);
	for (size_t i = 0; i < d->n; i++)
		d->items[i] = slots[i].d;
}

static void builder_emit_doc_diags(Builder *b)
{
	Diags *dst = &b->f->diags;

	diags_sort_stable(&b->doc_diags);
	for (size_t i = 0; i < b->doc_diags.n; i++) {
		Diag *x = &b->doc_diags.items[i];
		if (dst->n < SPEC_MAX_DIAGS)
			diags_add(dst, x->file, x->line, x->col, x->field, "%s", x->message);
		else if (dst->n == SPEC_MAX_DIAGS)
			diags_add(dst, b->file, x->line, x->col, "",
				  "too many problems; only the first %d are shown", SPEC_MAX_DIAGS);
	}
	diags_clear(&b->doc_diags);
}

/* Same metadata.name twice in one file: the later document is invalid. */
static void builder_check_duplicate_name(Builder *b, SpecDoc *doc)
{
	if (!doc->name)
		return;
	for (size_t i = 0; i < b->f->n_docs; i++) {
		const SpecDoc *o = &b->f->docs[i];
		if (!o->name || !streq(o->name, doc->name))
			continue;
		_cleanup_free_ char *q = NULL;
		YNode tmp = { .value = doc->name, .len = strlen(doc->name) };
		q = ynode_quote(&tmp);
		diags_add(&b->doc_diags, b->file, doc->name_line, doc->name_col, "metadata.name",
			  "duplicate name %s: already defined at line %u", q, o->name_line);
		vm_spec_free(TAKE_PTR(doc->spec));
		return;
	}
}

static void builder_finish_doc(Builder *b)
{
	_cleanup_(ynode_freep) YNode *root = TAKE_PTR(b->root);
	size_t pre = b->doc_diags.n;
	SpecDoc doc = { .line = b->doc_line };

	if ((!root || ynode_is_null(root)) && pre == 0)
		return; /* empty document ("---" alone, comments only) */
	if (root)
		spec_validate_document(b->file, root, &doc, &b->doc_diags);
	if (pre > 0)
		vm_spec_free(TAKE_PTR(doc.spec));
	builder_check_duplicate_name(b, &doc);
	builder_emit_doc_diags(b);
	b->f->docs = xrealloc(b->f->docs, (b->f->n_docs + 1) * sizeof(SpecDoc));
	b->f->docs[b->f->n_docs++] = doc;
}

static YNode *node_from_event(const yaml_event_t *ev, YNodeKind kind)
{
	return ynode_new(kind, (unsigned)ev->start_mark.line + 1,
			 (unsigned)ev->start_mark.column + 1);
}

/* Counts every node against SPEC_MAX_NODES; false when over budget. */
static bool builder_count(Builder *b, const yaml_event_t *ev)
{
	char msg[128];

	if (++b->nodes <= SPEC_MAX_NODES)
		return true;
	snprintf(msg, sizeof(msg), "more than %d YAML nodes in one file", SPEC_MAX_NODES);
	builder_fatal(b, (unsigned)ev->start_mark.line + 1, (unsigned)ev->start_mark.column + 1,
		      msg);
	return false;
}

static void builder_scalar(Builder *b, const yaml_event_t *ev)
{
	YNode *n = node_from_event(ev, YNODE_SCALAR);

	n->len = ev->data.scalar.length;
	n->value = xmalloc(n->len + 1);
	memcpy(n->value, ev->data.scalar.value, n->len);
	n->value[n->len] = 0;
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	builder_check_props(b, n, (const char *)ev->data.scalar.anchor,
			    (const char *)ev->data.scalar.tag);
	builder_add(b, n);
}

static void builder_alias(Builder *b, const yaml_event_t *ev)
{
	YNode *n = node_from_event(ev, YNODE_ALIAS);

	if (builder_room(b)) {
		_cleanup_free_ char *path = builder_path(b, true);
		diags_add(&b->doc_diags, b->file, n->line, n->col, path,
			  "YAML aliases (*%s) are not supported; write the value out",
			  (const char *)ev->data.alias.anchor);
	}
	builder_add(b, n);
}

static void builder_start(Builder *b, const yaml_event_t *ev, YNodeKind kind, const char *anchor,
			  const char *tag)
{
	YNode *n = node_from_event(ev, kind);

	builder_check_props(b, n, anchor, tag);
	builder_push(b, n);
}

static void builder_end(Builder *b)
{
	YNode *n = b->stack[b->depth - 1];

	if (n->kind == YNODE_MAP)
		builder_check_keys(b, n); /* while n is on the stack: its path is known */
	b->depth--;
}

static void builder_document_start(Builder *b, const yaml_event_t *ev)
{
	char msg[128];

	if (++b->ndocs > SPEC_MAX_DOCS) {
		snprintf(msg, sizeof(msg), "more than %d YAML documents in one file",
			 SPEC_MAX_DOCS);
		builder_fatal(b, (unsigned)ev->start_mark.line + 1,
			      (unsigned)ev->start_mark.column + 1, msg);
		return;
	}
	b->doc_line = (unsigned)ev->start_mark.line + 1;
}

static void builder_event(Builder *b, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT: builder_document_start(b, ev); break;
	case YAML_DOCUMENT_END_EVENT: builder_finish_doc(b); break;
	case YAML_SCALAR_EVENT:
		if (builder_count(b, ev))
			builder_scalar(b, ev);
		break;
	case YAML_ALIAS_EVENT:
		if (builder_count(b, ev))
			builder_alias(b, ev);
		break;
	case YAML_SEQUENCE_START_EVENT:
		if (builder_count(b, ev))
			builder_start(b, ev, YNODE_SEQ,
				      (const char *)ev->data.sequence_start.anchor,
				      (const char *)ev->data.sequence_start.tag);
		break;
	case YAML_MAPPING_START_EVENT:
		if (builder_count(b, ev))
			builder_start(b, ev, YNODE_MAP, (const char *)ev->data.mapping_start.anchor,
				      (const char *)ev->data.mapping_start.tag);
		break;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT: builder_end(b); break;
	default: break;
	}
}

static void spec_parse_yaml(SpecFile *f, const char *data, size_t len)
{
	Builder b = { .file = f->path, .f = f };
	yaml_parser_t p;

	if (!yaml_parser_initialize(&p))
		abort();
	yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
	yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);
	while (!b.stop) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&p, &ev)) {
			builder_fatal_yaml(&b, &p, data);
			break;
		}
		builder_event(&b, &ev);
		bool end = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
		if (end)
			break;
	}
	yaml_parser_delete(&p);
	ynode_free(b.root);
	diags_clear(&b.doc_diags);
}

static SpecFile *spec_file_new(const char *path)
{
	SpecFile *f = xcalloc(1, sizeof(SpecFile));
	f->path = xstrdup(path ? path : "-");
	return f;
}

int spec_parse_buffer(const char *path, const char *data, size_t len, SpecFile **ret)
{
	SpecFile *f;
	size_t bad;

	if (!ret || (!data && len > 0))
		return -EINVAL;
	f = spec_file_new(path);
	if (len > SPEC_MAX_FILE_BYTES) {
		diags_add(&f->diags, f->path, 0, 0, "",
			  "file is larger than the %d byte limit; not reading it",
			  SPEC_MAX_FILE_BYTES);
		f->unreadable = true;
	} else if ((bad = spec_utf8_invalid_offset(data, len)) < len) {
		unsigned line, col;
		offset_to_position(data, bad, &line, &col);
		diags_add(
			&f->diags, f->path, line, col, "",
			"file is not valid UTF-8 (byte 0x%02x at offset %zu); specs must be UTF-8",
			(unsigned char)data[bad], bad);
		f->unreadable = true;
	} else {
		spec_parse_yaml(f, data ? data : "", len);
	}
	*ret = f;
	return 0;
}

int spec_parse_file(const char *path, SpecFile **ret)
{
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int r;

	if (!path || !ret)
		return -EINVAL;
	r = read_file_bounded(path, SPEC_MAX_FILE_BYTES, &data, &len);
	if (r == -EFBIG) {
		SpecFile *f = spec_file_new(path);
		diags_add(&f->diags, f->path, 0, 0, "",
			  "file is larger than the %d byte limit; not reading it",
			  SPEC_MAX_FILE_BYTES);
		f->unreadable = true;
		*ret = f;
		return 0;
	}
	if (r < 0) {
		SpecFile *f = spec_file_new(path);
		diags_add(&f->diags, f->path, 0, 0, "", "cannot read file: %s",
			  r == -EINVAL ? "not a regular file" : strerror(-r));
		f->unreadable = true;
		*ret = f;
		return 0;
	}
	return spec_parse_buffer(path, data, len, ret);
}

void spec_file_free(SpecFile *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n_docs; i++) {
		free(f->docs[i].name);
		vm_spec_free(f->docs[i].spec);
	}
	free(f->docs);
	diags_clear(&f->diags);
	free(f->path);
	free(f);
}

void vm_spec_free(VmSpec *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_labels; i++) {
		free(s->labels[i].key);
		free(s->labels[i].value);
	}
	free(s->labels);
	free(s->name);
	free(s->node);
	free(s->kernel_path);
	free(s->kernel_args);
	free(s->initrd_path);
	free(s->rootfs_path);
	free(s->guest_ip);
	free(s->mac);
	free(s);
}

static char *strdup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

VmSpec *vm_spec_dup(const VmSpec *s)
{
	VmSpec *d;

	if (!s)
		return NULL;
	d = xmalloc(sizeof(VmSpec));
	*d = *s;
	d->labels = s->n_labels ? xcalloc(s->n_labels, sizeof(SpecLabel)) : NULL;
	for (size_t i = 0; i < s->n_labels; i++) {
		d->labels[i].key = xstrdup(s->labels[i].key);
		d->labels[i].value = xstrdup(s->labels[i].value);
	}
	d->name = strdup_or_null(s->name);
	d->node = strdup_or_null(s->node);
	d->kernel_path = strdup_or_null(s->kernel_path);
	d->kernel_args = strdup_or_null(s->kernel_args);
	d->initrd_path = strdup_or_null(s->initrd_path);
	d->rootfs_path = strdup_or_null(s->rootfs_path);
	d->guest_ip = strdup_or_null(s->guest_ip);
	d->mac = strdup_or_null(s->mac);
	return d;
}

static const char *const vm_state_table[_VM_STATE_MAX] = {
	[VM_STATE_RUNNING] = "Running",
	[VM_STATE_STOPPED] = "Stopped",
	[VM_STATE_SUSPENDED] = "Suspended",
};

static const char *const vmm_kind_table[_VMM_KIND_MAX] = {
	[VMM_KIND_DEFAULT] = "default",
	[VMM_KIND_FIRECRACKER] = "firecracker",
	[VMM_KIND_QEMU] = "qemu",
};

static const char *const restart_table[_RESTART_MAX] = {
	[RESTART_ALWAYS] = "Always",
	[RESTART_ON_FAILURE] = "OnFailure",
	[RESTART_NEVER] = "Never",
};

static int table_lookup(const char *const *table, size_t n, const char *s)
{
	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (table[i] && streq(table[i], s))
			return (int)i;
	return -EINVAL;
}

const char *vm_desired_state_to_string(VmDesiredState s)
{
	return (unsigned)s < _VM_STATE_MAX ? vm_state_table[s] : NULL;
}
int vm_desired_state_from_string(const char *s)
{
	return table_lookup(vm_state_table, _VM_STATE_MAX, s);
}
const char *vmm_kind_to_string(VmmKind k)
{
	return (unsigned)k < _VMM_KIND_MAX ? vmm_kind_table[k] : NULL;
}
/* "default" is not a value a spec may write; only the two drivers parse. */
int vmm_kind_from_string(const char *s)
{
	int r = table_lookup(vmm_kind_table, _VMM_KIND_MAX, s);
	return r == VMM_KIND_DEFAULT ? -EINVAL : r;
}
const char *restart_policy_to_string(RestartPolicy p)
{
	return (unsigned)p < _RESTART_MAX ? restart_table[p] : NULL;
}
int restart_policy_from_string(const char *s)
{
	return table_lookup(restart_table, _RESTART_MAX, s);
}
