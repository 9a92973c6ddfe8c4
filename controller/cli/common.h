/* common.h — pieces the banger subcommands share: reading inputs, an index
 * of which spec file defines which VM, and waiting on status files. */
#pragma once

#include "cli/cli.h"
#include "cli/jsonpath.h"
#include "spec/spec.h"
#include "status/status.h"

/* Append FILE, every candidate file below DIR, or "-" to *files. Prints a
 * message and returns -errno when path does not exist, -ENOENT when a
 * directory holds no candidate file. */
int cli_expand_input(const char *path, char ***files);
/* Parse one input ("-" = stdin), printing every diagnostic to stderr. With
 * ret_data, also the bytes read (NULL when they hold a NUL byte). */
int cli_parse_input(const char *path, SpecFile **ret, char **ret_data);

/* What `apply`, `diff` and `delete -f` read: every VM of every input, all
 * valid, names unique. raw[i] is the user's own bytes when specs[i] was the
 * only document of a YAML input (apply writes them as they are, comments
 * and all), else NULL. */
typedef struct {
	VmSpec **specs;
	char **raw;
	size_t n;
} SpecInputs;
/* Prints every problem; -EINVAL when any input is invalid or none holds a
 * VM. */
int cli_read_specs(char *const *paths, SpecInputs *ret);
void spec_inputs_clear(SpecInputs *in);

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
/* The first valid definition of name (owned by idx), NULL when none. */
const VmSpec *spec_dir_index_spec(SpecDirIndex *idx, const char *name);
/* Every name some file defines, sorted (caller frees). */
char **spec_dir_index_all_names(SpecDirIndex *idx);

/* Render a validated spec as the YAML `banger apply` writes. */
char *cli_spec_to_yaml(const VmSpec *s);

/* Wait (inotify on the status dir, wait.c) until every VM's status reports
 * this spec (specHash) settled: Running with Ready=True, Stopped, Failed or
 * Invalid. Prints vm/NAME PHASE for each. -EIO when any settled Failed or
 * Invalid, -ETIMEDOUT (after saying which VMs are missing). */
int cli_wait_settled(const CliDirs *dirs, VmSpec **specs, size_t n, uint64_t timeout_ms);
/* Wait until the status files of names are gone. */
int cli_wait_gone(const CliDirs *dirs, char **names, uint64_t timeout_ms);

/* The names (sorted) of the VMs whose spec labels match selector text.
 * -EDOM on a selector syntax error, -ENOENT when nothing matches (both
 * after a message). */
int cli_select_names(const CliDirs *dirs, const char *selector, char ***ret);
/* Check that each name is a valid VM name and, when must_exist, that it has
 * a status file or a spec file defining it. -EINVAL / -ENOENT after a
 * message. */
int cli_resolve_names(const CliDirs *dirs, char *const *names, bool must_exist);

/* All status files in the status dir, sorted by name. */
int cli_load_statuses(const char *status_dir, VmStatus ***ret, size_t *ret_n);

/* jsonpath_compile, saying "OPT: what is wrong" when tmpl is not understood
 * (-o, --for and custom-columns take templates alike). */
int cli_compile_jsonpath(const char *opt, const char *tmpl, JsonPath **ret);

/* "42s", "5m", "3h", "2d" since since_ms (wall clock ms); "-" when unknown. */
void cli_format_age(int64_t since_ms, char *buf, size_t n);
