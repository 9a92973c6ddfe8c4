/* path.c — which file names are spec files (see spec_path_is_candidate in
 * spec.h). Shared by the watcher and `banger validate` so both agree on
 * what a spec directory contains. */
#include "spec/spec.h"

static bool component_ignored(const char *c, size_t len)
{
	if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
		return false;
	return c[0] == '.';
}

static bool basename_is_candidate(const char *base)
{
	size_t n = strlen(base);
	static const char *const junk[] = { "~", ".swp", ".swx", ".tmp", ".status.json" };

	if (n == 0 || base[0] == '.')
		return false;
	if (base[0] == '#' && n > 1 && base[n - 1] == '#')
		return false;
	for (size_t i = 0; i < ELEMENTSOF(junk); i++)
		if (endswith(base, junk[i]))
			return false;
	return (endswith(base, ".yaml") && n > 5) || (endswith(base, ".yml") && n > 4) ||
	       (endswith(base, ".json") && n > 5);
}

bool spec_path_is_candidate(const char *path)
{
	const char *p, *slash, *base;

	if (!path || !*path)
		return false;
	for (p = path; (slash = strchr(p, '/')); p = slash + 1)
		if (component_ignored(p, (size_t)(slash - p)))
			return false;
	base = p;
	return basename_is_candidate(base);
}
