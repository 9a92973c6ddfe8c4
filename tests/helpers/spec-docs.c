/* spec-docs FILE... — for the schema-agreement test: per file, prints
 * "file PATH", then "unreadable" when the document list is untrustworthy,
 * then one line per document: "valid CANONICAL-JSON" or "invalid". */
#include "spec/spec.h"

#include <stdio.h>

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		_cleanup_(spec_file_freep) SpecFile *f = NULL;
		if (spec_parse_file(argv[i], &f) < 0)
			return 2;
		printf("file %s\n", argv[i]);
		if (f->unreadable)
			printf("unreadable\n");
		for (size_t d = 0; d < f->n_docs; d++) {
			if (!f->docs[d].spec) {
				printf("invalid\n");
				continue;
			}
			_cleanup_free_ char *json = vm_spec_to_canonical_json(f->docs[d].spec);
			printf("valid %s\n", json);
		}
	}
	return 0;
}
