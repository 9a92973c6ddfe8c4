/* store_spec.c — store_upsert_vm(): serialize a VmSpec the canonical way and
 * hand it to store_upsert_vm_raw(). Kept apart from store.c so the SQLite
 * layer (and its unit test) does not depend on the spec serializer. */
#include "store/store.h"
#include "util/log.h"

int store_upsert_vm(Store *s, const VmSpec *spec, const char *source_file, int64_t *ret_generation)
{
	_cleanup_free_ char *json = vm_spec_to_canonical_json(spec);
	char hash[65];

	if (!json)
		return log_errno(-ENOMEM, "store: vm %s: serialize spec", spec->name);
	vm_spec_hash(spec, hash);
	return store_upsert_vm_raw(s, spec->name, source_file, json, hash, spec->state,
				   ret_generation);
}
