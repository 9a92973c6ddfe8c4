/* banger — the command-line client. It never talks to bangerd: it writes
 * spec files into the spec dir and reads status files, the same interface a
 * GitOps tool uses (and, read-only, banger.db and the lock in the state dir). */
#include "cli/cli.h"
#include "util/defaults.h"
#include "util/log.h"
#include "util/version.h"

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

static void usage(FILE *f)
{
	fprintf(f, "Usage: banger [GLOBAL OPTIONS] COMMAND [ARGS] [GLOBAL OPTIONS]\n"
		   "\n"
		   "Declarative microVMs: banger writes VM specs into the spec directory that\n"
		   "bangerd watches, and reads the status files bangerd writes.\n"
		   "\n"
		   "Commands:\n");
	for (size_t i = 0; i < cli_n_commands; i++) {
		const CliCommand *c = &cli_commands[i];
		fprintf(f, "  %s %s\n", c->name, c->synopsis);
		fprintf(f, "                       %s\n", c->summary);
	}
	fprintf(f,
		"\n"
		"Global options, before or after the command (each also from an environment\n"
		"variable):\n"
		"  --spec-dir DIR     BANGER_SPEC_DIR     (default " BANGER_DEFAULT_SPEC_DIR ")\n"
		"  --status-dir DIR   BANGER_STATUS_DIR   (default " BANGER_DEFAULT_STATUS_DIR ")\n"
		"  --state-dir DIR    BANGER_STATE_DIR    (default " BANGER_DEFAULT_STATE_DIR ")\n"
		"  --runtime-dir DIR  BANGER_RUNTIME_DIR  (default " BANGER_DEFAULT_RUNTIME_DIR
		")\n"
		"  --version          print the version and exit\n"
		"  -h, --help         this help; `banger COMMAND --help` for a command\n"
		"\n"
		"Exit status: 0 success, 1 failure (invalid spec, refused, not found,\n"
		"timeout), 2 usage error; `banger diff`: 0 no differences, 1 differences,\n"
		">1 error.\n");
}

/* The value of global option `opt` at argv[*i] ("--opt X" or "--opt=X"),
 * advancing *i past it; NULL when argv[*i] is not that option. */
static const char *global_value(int argc, char **argv, int *i, const char *opt, bool *missing)
{
	size_t n = strlen(opt);
	if (strncmp(argv[*i], opt, n) != 0)
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n] != 0)
		return NULL;
	if (*i + 1 >= argc) {
		*missing = true;
		return NULL;
	}
	return argv[++*i];
}

/* Take the global options out of argv wherever they are (kubectl accepts
 * them before and after the command), up to a "--". Returns the new argc,
 * or -EINVAL when an option lacks its value. */
static int take_global_options(int argc, char **argv, CliDirs *dirs)
{
	static const struct {
		const char *opt;
		size_t field;
	} globals[] = {
		{ "--spec-dir", offsetof(CliDirs, spec_dir) },
		{ "--status-dir", offsetof(CliDirs, status_dir) },
		{ "--state-dir", offsetof(CliDirs, state_dir) },
		{ "--runtime-dir", offsetof(CliDirs, runtime_dir) },
	};
	int out = 1;
	bool rest = false;
	for (int i = 1; i < argc; i++) {
		const char *v = NULL;
		bool missing = false;
		if (streq(argv[i], "--"))
			rest = true;
		for (size_t g = 0; !rest && g < ELEMENTSOF(globals) && !v; g++) {
			v = global_value(argc, argv, &i, globals[g].opt, &missing);
			if (missing) {
				fprintf(stderr, "banger: %s needs a directory\n", globals[g].opt);
				return -EINVAL;
			}
			if (v)
				*(const char **)((char *)dirs + globals[g].field) = v;
		}
		if (!v)
			argv[out++] = argv[i];
	}
	argv[out] = NULL;
	return out;
}

int main(int argc, char **argv)
{
	CliDirs dirs = {
		.spec_dir = banger_env_or(BANGER_ENV_SPEC_DIR, BANGER_DEFAULT_SPEC_DIR),
		.status_dir = banger_env_or(BANGER_ENV_STATUS_DIR, BANGER_DEFAULT_STATUS_DIR),
		.state_dir = banger_env_or(BANGER_ENV_STATE_DIR, BANGER_DEFAULT_STATE_DIR),
		.runtime_dir = banger_env_or(BANGER_ENV_RUNTIME_DIR, BANGER_DEFAULT_RUNTIME_DIR),
	};

	log_setup(LOG_LEVEL_WARN, LOG_FORMAT_TEXT, "banger");
	argc = take_global_options(argc, argv, &dirs);
	if (argc < 0) {
		usage(stderr);
		return 2;
	}
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (streq(cmd, "-h") || streq(cmd, "--help") || streq(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (streq(cmd, "--version")) {
		printf("banger %s\n", banger_version);
		return 0;
	}
	const CliCommand *c = cli_command_find(cmd);
	if (!c) {
		fprintf(stderr, "banger: unknown %s '%s'\n\n", cmd[0] == '-' ? "option" : "command",
			cmd);
		usage(stderr);
		return 2;
	}
	static char prog[64];
	snprintf(prog, sizeof(prog), "banger %s", c->name);
	cli_prog = prog;
	argv[1] = prog; /* getopt's own messages then read "banger get: ..." */
	optind = 0;     /* GNU getopt: 0 fully re-initialises for the command's own options */
	return c->run(&dirs, argc - 1, argv + 1);
}
