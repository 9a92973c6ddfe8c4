/* layout.c — see layout.h. */
#include "util/layout.h"
#include "util/util.h"

#include <ctype.h>

int layout_short_id(const char *uid, char ret[LAYOUT_SHORT_ID_LEN + 1])
{
	size_t n = 0;
	for (const char *p = uid; p && *p && n < LAYOUT_SHORT_ID_LEN; p++) {
		if (*p == '-')
			continue;
		if (!isxdigit((unsigned char)*p))
			return -EINVAL;
		ret[n++] = (char)tolower((unsigned char)*p);
	}
	if (n < LAYOUT_SHORT_ID_LEN)
		return -EINVAL;
	ret[n] = '\0';
	return 0;
}

bool layout_is_short_id(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (n >= LAYOUT_SHORT_ID_LEN || !isxdigit((unsigned char)s[n]) ||
		    isupper((unsigned char)s[n]))
			return false;
	return n == LAYOUT_SHORT_ID_LEN;
}

char *layout_db_path(const char *state_dir)
{
	return path_join(state_dir, LAYOUT_DB_FILE);
}

char *layout_lock_path(const char *dir)
{
	return path_join(dir, LAYOUT_LOCK_FILE);
}

char *layout_vm_dir(const char *state_dir, const char *uid)
{
	return xasprintf("%s/" LAYOUT_VMS_DIR "/%s", state_dir, uid);
}

char *layout_disk_pool_dir(const char *state_dir)
{
	return path_join(state_dir, LAYOUT_DISK_POOL_DIR);
}

char *layout_vm_file(const char *vm_dir, const char *file)
{
	return path_join(vm_dir, file);
}

char *layout_runtime_sock(const char *runtime_dir, const char *uid, const char *suffix)
{
	char sid[LAYOUT_SHORT_ID_LEN + 1];
	if (layout_short_id(uid, sid) < 0)
		return NULL;
	return xasprintf("%s/%s%s", runtime_dir, sid, suffix);
}

char *layout_api_sock(const char *runtime_dir, const char *uid)
{
	return layout_runtime_sock(runtime_dir, uid, LAYOUT_SOCK_SUFFIX);
}

bool layout_name_short_id(const char *file_name, const char *suffix,
			  char ret[LAYOUT_SHORT_ID_LEN + 1])
{
	size_t len = strlen(file_name);
	if (len != LAYOUT_SHORT_ID_LEN + strlen(suffix) || !endswith(file_name, suffix))
		return false;
	memcpy(ret, file_name, LAYOUT_SHORT_ID_LEN);
	ret[LAYOUT_SHORT_ID_LEN] = '\0';
	return layout_is_short_id(ret);
}

bool layout_sock_short_id(const char *file_name, char ret[LAYOUT_SHORT_ID_LEN + 1])
{
	return layout_name_short_id(file_name, LAYOUT_SOCK_SUFFIX, ret);
}
