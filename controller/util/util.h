/* util.h — small helpers every module may use: cleanup attributes, ownership
 * transfer, bounded string helpers. Depends on nothing else in banger.
 *
 * Conventions (see shared STYLE.md): functions return >= 0 on success and
 * -errno on failure; out-parameters are named ret_* and are only written on
 * success; every *_free() accepts NULL. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f)   __attribute__((cleanup(f)))
#define _unused_       __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _warn_unused_  __attribute__((warn_unused_result))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b)     ((a) < (b) ? (a) : (b))
#define MAX(a, b)     ((a) > (b) ? (a) : (b))

static inline void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
#define _cleanup_close_ _cleanup_(closep)

/* Take ownership out of a _cleanup_ variable so it is not freed on return. */
#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _p = (p);                                                            \
		(p) = NULL;                                                                        \
		_p;                                                                                \
	})
#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _fd = (fd);                                                                    \
		(fd) = -1;                                                                         \
		_fd;                                                                               \
	})

#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                    \
	static inline void func##p(type *p)                                                        \
	{                                                                                          \
		if (*p)                                                                            \
			func(*p);                                                                  \
	}

static inline bool streq(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}
static inline bool streq_ptr(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}
static inline bool startswith(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}
bool endswith(const char *s, const char *suffix);

/* Allocation helpers that abort on OOM: banger cannot do anything useful
 * without memory, and checking every strdup obscures the real error paths. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) _printf_(1, 2);

/* Replace *dst with a copy of src (NULL allowed); frees the old value. */
void free_and_replace_str(char **dst, const char *src);

/* Join dir and name with one '/'. */
char *path_join(const char *dir, const char *name);

/* True when s is a DNS-1123 label: [a-z0-9-], 1..63, starts and ends alnum. */
bool dns_label_valid(const char *s);

/* Parse a decimal unsigned integer with bounds; -EINVAL / -ERANGE. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* strv: NULL-terminated array of owned strings. */
void strv_free(char **v);
size_t strv_length(char *const *v);
int strv_push(char ***v, char *s); /* takes ownership of s */
bool strv_contains(char *const *v, const char *s);
/* Sort a strv in strcmp order (NULL is an empty strv). */
void strv_sort(char **v);
/* qsort/bsearch comparator over an array of `char *`: the one string
 * comparator. */
int strcmp_ptr(const void *a, const void *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free)
#define _cleanup_strv_free_ _cleanup_(strv_freep)
