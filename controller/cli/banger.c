/* banger — the command-line client. It never talks to bangerd: it writes
 * spec files into the spec dir and reads status files, the same interface a
 * GitOps tool uses. */
#include "cli/cli.h"
#include "util/defaults.h"
#include "util/log.h"

#include <getopt.h>
#include <stdio.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: banger [GLOBAL OPTIONS] COMMAND [ARGS]\n"
		"\n"
		"Declarative microVMs: banger writes VM specs into the spec directory that\n"
		"bangerd watches, and reads the status files bangerd writes.\n"
		"\n"
		"Commands:\n"
		"  apply -f FILE|DIR|- [--dry-run] [--wait [--timeout S]]\n"
		"                       validate, then write each VM as <spec-dir>/<name>.yaml\n"
		"  delete NAME... | -f FILE [--wait [--timeout S]]\n"
		"                       remove the spec file that defines each VM\n"
		"  get [NAME] [-o table|wide|json|yaml]\n"
		"                       show status from <status-dir>/<name>.status.json\n"
		"  describe NAME        everything banger knows about one VM\n"
		"  logs NAME [-f] [--tail N] [--vmm]\n"
		"                       the VM's console output (or the VMM's log); -f follows\n"
		"  console NAME         interactive serial console (root; detach with Ctrl-])\n"
		"  validate [-f] FILE|DIR|- ...\n"
		"                       static check of spec files (no host access)\n"
		"\n"
		"Global options (each also from an environment variable):\n"
		"  --spec-dir DIR    BANGER_SPEC_DIR    (default " BANGER_DEFAULT_SPEC_DIR ")\n"
		"  --status-dir DIR  BANGER_STATUS_DIR  (default: the spec dir)\n"
		"  --state-dir DIR   BANGER_STATE_DIR   (default " BANGER_DEFAULT_STATE_DIR ")\n"
		"  -h, --help        this help; `banger COMMAND --help` for a command\n"
		"\n"
		"Exit status: 0 success, 1 failure (invalid spec, refused, not found,\n"
		"timeout), 2 usage error.\n");
}

static const char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);
	return v && *v ? v : def;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "spec-dir", required_argument, NULL, 's' },
		{ "status-dir", required_argument, NULL, 'S' },
		{ "state-dir", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	CliDirs dirs = {
		.spec_dir = env_or("BANGER_SPEC_DIR", BANGER_DEFAULT_SPEC_DIR),
		.status_dir = env_or("BANGER_STATUS_DIR", NULL),
		.state_dir = env_or("BANGER_STATE_DIR", BANGER_DEFAULT_STATE_DIR),
	};
	int c;

	log_setup(LOG_LEVEL_WARN, LOG_FORMAT_TEXT, "banger");
	/* '+': stop at the first non-option, the command. */
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			dirs.spec_dir = optarg;
			break;
		case 'S':
			dirs.status_dir = optarg;
			break;
		case 't':
			dirs.state_dir = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!dirs.status_dir)
		dirs.status_dir = dirs.spec_dir;
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[optind];
	int sub_argc = argc - optind;
	char **sub_argv = argv + optind;
	optind = 0; /* GNU getopt: 0 fully re-initialises for the command's own options */
	if (streq(cmd, "apply"))
		return cli_apply(&dirs, sub_argc, sub_argv);
	if (streq(cmd, "delete"))
		return cli_delete(&dirs, sub_argc, sub_argv);
	if (streq(cmd, "get"))
		return cli_get(&dirs, sub_argc, sub_argv);
	if (streq(cmd, "describe"))
		return cli_describe(&dirs, sub_argc, sub_argv);
	if (streq(cmd, "logs"))
		return cli_logs(&dirs, sub_argc, sub_argv);
	if (streq(cmd, "console"))
		return cli_console(&dirs, sub_argc, sub_argv);
	if (streq(cmd, "validate"))
		return cli_validate(sub_argc, sub_argv);
	if (streq(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "banger: unknown command '%s'\n\n", cmd);
	usage(stderr);
	return 2;
}
