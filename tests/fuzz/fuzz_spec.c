/* fuzz_spec.c — libFuzzer target for the spec parser.
 *
 * Besides "never crash, never leak", it checks the invariants other modules
 * rely on: an unreadable file says why; a valid document has a valid name;
 * canonical JSON reads back to the same canonical JSON (and hash); a spec
 * is boot-equal to its own copy.
 *
 * Build (clang): see tests/fuzz/README or docs/spec.md; replayed over its
 * corpus by tests/helpers/spec-replay.c in `make test`. */
#include "spec/spec.h"

#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_spec: invariant violated: %s\n", what);
		abort();
	}
}

static void fuzz_check_spec(const SpecDoc *doc)
{
	const VmSpec *s = doc->spec;
	_cleanup_free_ char *json = vm_spec_to_canonical_json(s), *again = NULL, *why = NULL;
	_cleanup_(vm_spec_freep) VmSpec *back = NULL, *dup = NULL;
	char h1[65], h2[65];

	fuzz_check(doc->name_valid && doc->name && dns_label_valid(doc->name),
		   "valid document has a valid name");
	fuzz_check(streq(doc->name, s->name), "doc name == spec name");
	fuzz_check(vm_spec_from_json(json, &back) == 0, "canonical JSON reads back");
	again = vm_spec_to_canonical_json(back);
	fuzz_check(streq(json, again), "canonical JSON round trip is exact");
	vm_spec_hash(s, h1);
	vm_spec_hash(back, h2);
	fuzz_check(streq(h1, h2), "hash survives the round trip");
	dup = vm_spec_dup(s);
	fuzz_check(vm_spec_boot_equal(s, dup, &why) && !why, "a copy is boot-equal");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_(spec_file_freep) SpecFile *f = NULL;

	fuzz_check(spec_parse_buffer("fuzz.yaml", (const char *)data, size, &f) == 0, "parse");
	fuzz_check(!f->unreadable || f->diags.n > 0, "unreadable says why");
	fuzz_check(f->n_docs <= SPEC_MAX_DOCS, "document limit");
	for (size_t i = 0; i < f->diags.n; i++) {
		_cleanup_free_ char *line = diag_format(&f->diags.items[i]);
		fuzz_check(line[0] != 0, "diagnostic renders");
	}
	for (size_t i = 0; i < f->n_docs; i++) {
		if (f->docs[i].name_valid)
			fuzz_check(dns_label_valid(f->docs[i].name), "name_valid means a label");
		if (f->docs[i].spec)
			fuzz_check_spec(&f->docs[i]);
	}
	return 0;
}
