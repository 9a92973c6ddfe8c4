/* specdir.h — listing the candidate spec files below a directory.
 *
 * Shared by bangerd's full sync, `banger validate` and `banger apply`, so
 * every component agrees on which files are specs. Dot-entries are skipped
 * (.git), symlinks below the top are never followed (a spec tree must not
 * lead a root daemon to /etc), depth is bounded. The top directory itself
 * may be a symlink (git-sync).
 *
 * What is passed over without being a plain "not a spec" is reported through
 * a callback, so bangerd can log it and `banger validate` can print it:
 * symlinks (to a directory, or with a spec file's name), FIFOs, sockets and
 * devices with a spec file's name, and directories deeper than
 * SPEC_DIR_MAX_DEPTH (not entered, so nothing below them is seen). */
#pragma once

#include "util/util.h"

#define SPEC_DIR_MAX_DEPTH 16

typedef enum {
	SPEC_SKIP_SYMLINK,
	SPEC_SKIP_SPECIAL,
	SPEC_SKIP_TOO_DEEP,
	_SPEC_SKIP_MAX,
} SpecSkipKind;

/* "a symlink; symlinks below the spec dir are never followed", ... */
const char *spec_skip_reason(SpecSkipKind kind);

/* rel: relative to the listed directory. */
typedef void (*SpecDirSkipFn)(void *userdata, const char *rel, SpecSkipKind kind);

/* Sorted relative paths of candidate files (spec_path_is_candidate) below
 * dir. -errno when dir, or a directory below it, cannot be read (out of file
 * descriptors, I/O error): a partial list would look like deleted files, so
 * there is none. skip may be NULL. */
int spec_dir_list_full(const char *dir, SpecDirSkipFn skip, void *userdata, char ***ret_rel_strv);
int spec_dir_list(const char *dir, char ***ret_rel_strv);
