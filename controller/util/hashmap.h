/* hashmap.h — string-keyed hash map (open addressing, linear probing).
 * Keys are copied and owned by the map; values are opaque pointers owned by
 * the caller (free them before hashmap_free, e.g. with hashmap_foreach). */
#pragma once

#include "util.h"

typedef struct Hashmap Hashmap;

Hashmap *hashmap_new(void);
void hashmap_free(Hashmap *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Hashmap *, hashmap_free)

void *hashmap_get(const Hashmap *m, const char *key);
bool hashmap_contains(const Hashmap *m, const char *key);
/* Insert or replace; returns the previous value (or NULL). */
void *hashmap_put(Hashmap *m, const char *key, void *value);
/* Remove; returns the removed value (or NULL). */
void *hashmap_remove(Hashmap *m, const char *key);
size_t hashmap_size(const Hashmap *m);

/* Iterate: for (size_t i = 0; hashmap_iter(m, &i, &k, &v);) { ... }
 * Removing the current key during iteration is allowed. */
bool hashmap_iter(const Hashmap *m, size_t *state, const char **ret_key, void **ret_value);
/* Sorted copy of all keys (strv, caller frees). */
char **hashmap_keys_sorted(const Hashmap *m);
