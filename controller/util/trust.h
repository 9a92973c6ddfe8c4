/* trust.h — whom a root daemon believes: the spec-dir trust rule, and
 * opening files below a directory without being led out of it.
 *
 * The rule is sshd's StrictModes rule for authorized_keys (OpenSSH
 * misc.c safe_path): a file or directory is trusted when it is owned by
 * root or by one of the configured owners (--spec-owner) and is writable by
 * neither group nor others. For the spec dir itself, every directory from
 * it up to / must pass, on the canonical (realpath) path. Like sshd there is
 * no exception for sticky, world-writable parents such as /tmp: a spec dir
 * under /tmp is refused. Symlinks on the way to the spec dir (git-sync's
 * `current` link) are allowed when they are owned by root or a configured
 * owner and sit in a directory that passes the rule: only those can swap
 * them. Below the spec dir no symlink is ever followed (openat_beneath). */
#pragma once

#include "util.h"

#include <sys/stat.h>
#include <sys/types.h>

typedef struct {
	const uid_t *owners; /* trusted besides root; may be NULL when n_owners is 0 */
	size_t n_owners;
} TrustPolicy;

/* The pure predicate. 0 when st is trusted; -EPERM and *ret_why ("owned by
 * uid 1000, not root or a --spec-owner", "writable by group (mode 0664)")
 * otherwise: it reads after "<object> is ". */
int trust_check_stat(const struct stat *st, const TrustPolicy *p, char **ret_why);

/* The start-up check of a spec dir: path (made absolute), every symlink met
 * on the way, and every directory of its canonical path up to /. 0, or
 * -errno with *ret_why naming the offending directory or link and why. */
int trust_check_dir_path(const char *path, const TrustPolicy *p, char **ret_why);

/* USER as a name from the passwd database or a decimal uid. */
int trust_parse_owner(const char *user, uid_t *ret);

/* Open rel (a relative path) below dirfd: never through a symlink, never
 * outside dirfd's tree ("..", absolute paths refused). openat2 with
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, or, on a
 * kernel without openat2 (before 5.6), openat_beneath_walk. O_CLOEXEC is
 * added. Returns the fd or -errno (-ELOOP for a symlink on the way, -EXDEV
 * for an escape). */
int openat_beneath(int dirfd, const char *rel, int flags);
/* The fallback: one openat(O_NOFOLLOW) per component. Exposed for tests. */
int openat_beneath_walk(int dirfd, const char *rel, int flags);

/* Open rel below rootfd one component at a time (openat_beneath), checking
 * every directory on the way and the final object with trust_check_stat, so
 * what is read is what was checked. flags are for the final component. On
 * success the fd, with *ret_st its fstat. -EPERM with *ret_why ("team-a/ is
 * writable by group (mode 0775)", "web.yaml is owned by uid 65534, ...")
 * when something fails the rule; other -errno as openat_beneath. The caller
 * checks rootfd itself. */
int trust_openat(int rootfd, const char *rel, const TrustPolicy *p, int flags, struct stat *ret_st,
		 char **ret_why);
