/* common.h — pieces the banger subcommands share: reading inputs, an index
 * of which spec file defines which VM, and waiting on status files. */
#pragma once

#include "cli/cli.h"
#include "spec/spec.h"
#include "status/status.h"

/* Append FILE, every candidate file below DIR, or "-" to *files. Prints a
 * message and returns -errno when path does not exist. */
int cli_expand_input(const char *path, char ***files);
/* Parse one input ("-" = stdin), printing every diagnostic to stderr. */
int cli_parse_input(const char *path, SpecFile **ret);

/* Which file of the spec dir defines which name (valid-label names only,
 * from valid and invalid documents alike). */
typedef struct SpecDirIndex SpecDirIndex;
int spec_dir_index_build(const char *spec_dir, SpecDirIndex **ret);
void spec_dir_index_free(SpecDirIndex *idx);
DEFINE_TRIVIAL_CLEANUP_FUNC(SpecDirIndex *, spec_dir_index_free)
/* Relative paths of the files that define name (NULL when none). */
char *const *spec_dir_index_definers(SpecDirIndex *idx, const char *name);
/* Names defined by the file at rel (NULL when none). */
char *const *spec_dir_index_names(SpecDirIndex *idx, const char *rel);

/* Render a validated spec as the YAML `banger apply` writes. */
char *cli_spec_to_yaml(const VmSpec *s);

/* Wait until every VM's status reports this spec (specHash) settled:
 * Running with Ready=True, Stopped, Failed or Invalid. Prints progress. */
int cli_wait_settled(const CliDirs *dirs, VmSpec **specs, size_t n, unsigned timeout_s);
/* Wait until the status files of names are gone. */
int cli_wait_gone(const CliDirs *dirs, char **names, unsigned timeout_s);

/* All status files in the status dir, sorted by name. */
int cli_load_statuses(const char *status_dir, VmStatus ***ret, size_t *ret_n);

/* "42s", "5m", "3h", "2d" since since_ms (wall clock ms); "-" when unknown. */
void cli_format_age(int64_t since_ms, char *buf, size_t n);
