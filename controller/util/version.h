/* version.h — banger's version, stamped at build time from `git describe`
 * (or the VERSION file of a release tarball) by the Makefile. */
#pragma once

extern const char banger_version[];
