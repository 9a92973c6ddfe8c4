/* specdir.h — listing the candidate spec files below a directory.
 *
 * Shared by bangerd's full sync, `banger validate` and `banger apply`, so
 * every component agrees on which files are specs. Dot-entries are skipped
 * (.git), symlinks below the top are never followed (a spec tree must not
 * lead a root daemon to /etc), depth is bounded. The top directory itself
 * may be a symlink (git-sync). */
#pragma once

#include "util/util.h"

#define SPEC_DIR_MAX_DEPTH 16

/* Sorted relative paths of candidate files (spec_path_is_candidate) below
 * dir. -errno when dir cannot be opened. */
int spec_dir_list(const char *dir, char ***ret_rel_strv);
