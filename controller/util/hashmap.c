/* hashmap.c — see hashmap.h. Tombstones keep probing chains intact after
 * removals; the table grows at 70% load counting tombstones. */
#include "hashmap.h"

typedef struct {
	char *key; /* NULL: empty; TOMBSTONE: removed */
	void *value;
	uint64_t hash;
} Slot;

struct Hashmap {
	Slot *slots;
	size_t cap, size, used; /* used = live + tombstones */
};

static char tombstone_marker;
#define TOMBSTONE (&tombstone_marker)

static uint64_t hash_str(const char *s)
{
	/* FNV-1a 64; keys come from file names and VM names, not from an
	 * adversary who can pick collisions cheaply enough to matter at our
	 * sizes, and a bounded number of files limits the damage anyway. */
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

Hashmap *hashmap_new(void)
{
	Hashmap *m = xcalloc(1, sizeof(Hashmap));
	m->cap = 16;
	m->slots = xcalloc(m->cap, sizeof(Slot));
	return m;
}

void hashmap_free(Hashmap *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key && m->slots[i].key != TOMBSTONE)
			free(m->slots[i].key);
	free(m->slots);
	free(m);
}

static Slot *find(const Hashmap *m, const char *key, uint64_t h)
{
	for (size_t i = h & (m->cap - 1), n = 0; n < m->cap; i = (i + 1) & (m->cap - 1), n++) {
		Slot *s = &m->slots[i];
		if (!s->key)
			return NULL;
		if (s->key != TOMBSTONE && s->hash == h && streq(s->key, key))
			return s;
	}
	return NULL;
}

static void grow(Hashmap *m)
{
	Slot *old = m->slots;
	size_t oldcap = m->cap;
	m->cap = m->size * 2 >= m->cap / 2 ? m->cap * 2 : m->cap;
	m->slots = xcalloc(m->cap, sizeof(Slot));
	m->used = m->size;
	for (size_t i = 0; i < oldcap; i++) {
		Slot *s = &old[i];
		if (!s->key || s->key == TOMBSTONE)
			continue;
		size_t j = s->hash & (m->cap - 1);
		while (m->slots[j].key)
			j = (j + 1) & (m->cap - 1);
		m->slots[j] = *s;
	}
	free(old);
}

void *hashmap_get(const Hashmap *m, const char *key)
{
	Slot *s = find(m, key, hash_str(key));
	return s ? s->value : NULL;
}

bool hashmap_contains(const Hashmap *m, const char *key)
{
	return find(m, key, hash_str(key)) != NULL;
}

void *hashmap_put(Hashmap *m, const char *key, void *value)
{
	uint64_t h = hash_str(key);
	Slot *s = find(m, key, h);
	if (s) {
		void *prev = s->value;
		s->value = value;
		return prev;
	}
	if ((m->used + 1) * 10 >= m->cap * 7)
		grow(m);
	size_t i = h & (m->cap - 1);
	while (m->slots[i].key && m->slots[i].key != TOMBSTONE)
		i = (i + 1) & (m->cap - 1);
	if (!m->slots[i].key)
		m->used++;
	m->slots[i] = (Slot){ .key = xstrdup(key), .value = value, .hash = h };
	m->size++;
	return NULL;
}

void *hashmap_remove(Hashmap *m, const char *key)
{
	Slot *s = find(m, key, hash_str(key));
	if (!s)
		return NULL;
	void *v = s->value;
	free(s->key);
	s->key = TOMBSTONE;
	s->value = NULL;
	m->size--;
	return v;
}

size_t hashmap_size(const Hashmap *m)
{
	return m->size;
}

bool hashmap_iter(const Hashmap *m, size_t *state, const char **ret_key, void **ret_value)
{
	for (size_t i = *state; i < m->cap; i++) {
		Slot *s = &m->slots[i];
		if (s->key && s->key != TOMBSTONE) {
			*state = i + 1;
			if (ret_key)
				*ret_key = s->key;
			if (ret_value)
				*ret_value = s->value;
			return true;
		}
	}
	*state = m->cap;
	return false;
}

char **hashmap_keys_sorted(const Hashmap *m)
{
	char **v = xcalloc(m->size + 1, sizeof(char *));
	size_t n = 0, st = 0;
	const char *k;
	while (hashmap_iter(m, &st, &k, NULL))
		v[n++] = xstrdup(k);
	qsort(v, n, sizeof(char *), strcmp_ptr);
	return v;
}
