/* cli.h — `banger` subcommands. Each takes the subcommand's own argv
 * (argv[0] is the subcommand name) and returns the process exit status. */
#pragma once

/* banger validate [-f] FILE|DIR|- ...: static check of spec files, no host
 * access. Diagnostics go to stderr as "file:line:col: field: message".
 * Exit 0 when everything is valid, 1 when anything is not, 2 on usage
 * errors. */
int cli_validate(int argc, char **argv);
