/* cli.h — `banger` subcommands. Each takes the subcommand's own argv
 * (argv[0] is the subcommand name) and returns the process exit status:
 * 0 success, 1 failure (invalid input, refused, not found, timeout),
 * 2 usage error. */
#pragma once

#include "util/util.h"

/* banger validate [-f] FILE|DIR|- ...: static check of spec files, no host
 * access. Diagnostics go to stderr as "file:line:col: field: message".
 * Exit 0 when everything is valid, 1 when anything is not, 2 on usage
 * errors. */
int cli_validate(int argc, char **argv);

/* Directories shared by every subcommand: flags, else BANGER_* environment
 * variables, else defaults. */
typedef struct {
	const char *spec_dir;
	const char *status_dir;
	const char *state_dir;
} CliDirs;

int cli_apply(const CliDirs *dirs, int argc, char **argv);
int cli_delete(const CliDirs *dirs, int argc, char **argv);
int cli_get(const CliDirs *dirs, int argc, char **argv);
int cli_describe(const CliDirs *dirs, int argc, char **argv);
/* banger logs NAME [-f] [--tail N] [--vmm]; banger console NAME (logs.c). */
int cli_logs(const CliDirs *dirs, int argc, char **argv);
int cli_console(const CliDirs *dirs, int argc, char **argv);
