/* imageroot.h — which files a spec may use as a base image or kernel.
 *
 * A spec names files by path; the host admin configures image roots (e.g.
 * /var/lib/banger/images). A path is accepted only when its realpath lies
 * inside the realpath of one of the roots, comparing whole components, and
 * names a readable regular file. That refuses "../../etc/shadow", symlinks
 * that lead out of a root, "/imagesX/..." against a root "/images", block
 * devices such as /dev/sda (even inside a root) and directories.
 *
 * The check resolves the path once; callers must then use the returned real
 * path, not the path from the spec. (A root that an attacker can write to
 * can still race a symlink swap between check and open: roots are assumed to
 * be admin-owned.) */
#pragma once

#include "util/util.h"

/* On success *ret_realpath (caller frees) is the resolved path.
 * -EINVAL: empty path, a directory, a device or other non-regular file;
 * -ENOENT: the path (or a component) does not exist;
 * -EPERM:  outside every root, or no usable root configured;
 * -EACCES: not readable.
 * Every failure is logged naming the path and the allowed roots. */
int image_path_check(const char *path, char *const *roots_strv, char **ret_realpath);

/* Pure: true when path equals dir or lies below it, comparing whole
 * components. Both must be absolute and normalised (from realpath). */
bool storage_path_is_under(const char *path, const char *dir);
