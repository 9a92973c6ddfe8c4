/* cli.h — `banger` subcommands. Each takes the subcommand's own argv
 * (argv[0] is the subcommand name) and returns the process exit status:
 * 0 success, 1 failure (invalid input, refused, not found, timeout),
 * 2 usage error. `banger diff` follows kubectl instead: 0 no difference,
 * 1 differences, 2 and above errors. */
#pragma once

#include "util/util.h"

#include <stdio.h>

/* Directories shared by every subcommand: flags, else BANGER_* environment
 * variables, else defaults. */
typedef struct {
	const char *spec_dir;
	const char *status_dir;
	const char *state_dir;
	const char *runtime_dir;
} CliDirs;

/* The command table (commands.c): the one list banger.c dispatches from and
 * the shell completions and the top-level usage are generated from. Add a
 * command here and nowhere else. */
typedef struct {
	const char *name;
	int (*run)(const CliDirs *dirs, int argc, char **argv);
	const char *synopsis; /* arguments after the name, for usage lines */
	const char *summary;  /* one line */
	const char *options;  /* space-separated, for completion: "-o --output -l ..." */
	bool vm_names;        /* positional arguments are VM names (completion) */
} CliCommand;

extern const CliCommand cli_commands[];
extern const size_t cli_n_commands;
const CliCommand *cli_command_find(const char *name);

/* "banger COMMAND", set by main before dispatch; every error a command
 * prints starts with it. */
extern const char *cli_prog;
void cli_error(const char *fmt, ...) _printf_(1, 2);
void cli_warn(const char *fmt, ...) _printf_(1, 2);
/* True when name is a valid VM name; otherwise says why (as an invalid
 * name, not as a system error) and returns false. */
bool cli_check_name(const char *name);
/* A duration: "30s", "2m", "1h", "500ms" or plain seconds; at most a day. */
int cli_parse_duration_ms(const char *s, uint64_t *ret_ms);

/* One form an option's argument may take (`get -o`, `wait --for`): a word
 * ("json", "delete") or a KEY= prefix ("jsonpath=") that a value follows.
 * usage spells it for messages ("jsonpath=TEMPLATE"), complete is what shell
 * completion offers ("condition=Ready"); NULL: the form itself. An option's
 * table of forms is the one list of what it accepts: the parser, its
 * messages and the completions all come from it. */
typedef struct {
	const char *form;
	const char *usage;
	const char *complete;
} CliForm;
/* The tables of `get -o` (get.c) and `wait --for` (wait.c). */
extern const CliForm cli_output_forms[];
extern const size_t cli_n_output_forms;
extern const CliForm cli_for_forms[];
extern const size_t cli_n_for_forms;
/* The index in forms[0..n) of the form arg takes, and in *ret_value what
 * follows a KEY= form's '=' (never empty) or "" for a word; -EINVAL when
 * arg takes none (*ret_value untouched). Pure. */
int cli_form_match(const CliForm *forms, size_t n, const char *arg, const char **ret_value);
/* "A, B or C" from the forms' usages (caller frees). Pure. */
char *cli_forms_expected(const CliForm *forms, size_t n);
/* cli_form_match, saying "OPT: expected A, B or C, got 'ARG'" when arg
 * takes none of the forms. */
int cli_parse_form(const char *opt, const CliForm *forms, size_t n, const char *arg,
		   const char **ret_value);

/* banger validate [-f] FILE|DIR|- ...: static check of spec files, no host
 * access. Diagnostics go to stderr as "file:line:col: field: message".
 * Exit 0 when everything is valid, 1 when anything is not (also when a
 * directory holds no spec file), 2 on usage errors. */
int cli_validate(int argc, char **argv);

int cli_apply(const CliDirs *dirs, int argc, char **argv);
int cli_delete(const CliDirs *dirs, int argc, char **argv);
int cli_get(const CliDirs *dirs, int argc, char **argv);
int cli_describe(const CliDirs *dirs, int argc, char **argv);
/* banger events [-w] [NAME]: the event journal (status/events.h). */
int cli_events(const CliDirs *dirs, int argc, char **argv);
/* The last last_n events of VM name, as `describe` shows them. */
void cli_print_events(const char *status_dir, const char *name, size_t last_n);
int cli_wait(const CliDirs *dirs, int argc, char **argv);
int cli_diff(const CliDirs *dirs, int argc, char **argv);
int cli_completion(const CliDirs *dirs, int argc, char **argv);
/* banger logs NAME [-f] [--tail N] [--vmm]; banger console NAME (logs.c). */
int cli_logs(const CliDirs *dirs, int argc, char **argv);
int cli_console(const CliDirs *dirs, int argc, char **argv);
