/* commands.c — the command table (see cli.h) and the small helpers every
 * command uses for its messages. */
#include "cli/cli.h"

#include <stdarg.h>

static int run_validate(const CliDirs *dirs, int argc, char **argv)
{
	return cli_validate(argc, argv);
}

const CliCommand cli_commands[] = {
	{ "apply", cli_apply, "-f FILE|DIR|- [--dry-run] [--wait [--timeout D]]",
	  "validate, then write each VM as <spec-dir>/<name>.yaml",
	  "-f --filename --dry-run --wait --timeout -h --help", false },
	{ "delete", cli_delete, "NAME... | -f FILE | -l SELECTOR [--wait [--timeout D]]",
	  "remove the spec file that defines each VM",
	  "-f --filename -l --selector --wait --timeout -h --help", true },
	{ "get", cli_get,
	  "[NAME...] [-l SELECTOR] [-w] [-o table|wide|json|yaml|name|jsonpath=T|custom-columns=C]",
	  "show VM status (<status-dir>/<name>.status.json)",
	  "-o --output -l --selector -w --watch -h --help", true },
	{ "describe", cli_describe, "NAME... | -l SELECTOR", "everything banger knows about a VM",
	  "-l --selector -h --help", true },
	{ "logs", cli_logs, "NAME [-f] [--tail N] [--vmm]",
	  "the VM's console output (or the VMM's log); -f follows across restarts",
	  "-f --follow --tail --vmm -h --help", true },
	{ "console", cli_console, "NAME", "interactive serial console (root; detach with Ctrl-])",
	  "-h --help", true },
	{ "events", cli_events, "[-w] [NAME]", "what happened to VMs (the event journal)",
	  "-w --watch -h --help", true },
	{ "wait", cli_wait,
	  "NAME... | -l SELECTOR --for=condition=C[=V]|phase=P|delete|jsonpath=T=V [--timeout D]",
	  "wait until VMs meet a condition (inotify on the status dir)",
	  "--for -l --selector --timeout -h --help", true },
	{ "diff", cli_diff, "-f FILE|DIR|-", "what `apply -f` would change, field by field",
	  "-f --filename -h --help", false },
	{ "validate", run_validate, "[-f] [--spec-owner USER] FILE|DIR|- ...",
	  "static check of spec files (no host access)", "-f --spec-owner -h --help", false },
	{ "completion", cli_completion, "bash|zsh", "print a shell completion script", "-h --help",
	  false },
};
const size_t cli_n_commands = ELEMENTSOF(cli_commands);

const CliCommand *cli_command_find(const char *name)
{
	for (size_t i = 0; i < cli_n_commands; i++)
		if (streq(cli_commands[i].name, name))
			return &cli_commands[i];
	return NULL;
}

const char *cli_prog = "banger";

void cli_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", cli_prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void cli_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: warning: ", cli_prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

bool cli_check_name(const char *name)
{
	if (dns_label_valid(name))
		return true;
	cli_error("'%s' is not a valid VM name (1-63 characters a-z, 0-9 and '-', starting and "
		  "ending with a letter or digit)",
		  name);
	return false;
}

int cli_form_match(const CliForm *forms, size_t n, const char *arg, const char **ret_value)
{
	for (size_t i = 0; i < n; i++) {
		const char *f = forms[i].form;
		size_t len = strlen(f);
		bool key = len > 0 && f[len - 1] == '=';
		/* A KEY= form wants a value: "phase=" alone is no form at all. */
		if (key ? strncmp(arg, f, len) == 0 && arg[len] : streq(arg, f)) {
			*ret_value = arg + len;
			return (int)i;
		}
	}
	return -EINVAL;
}

char *cli_forms_expected(const CliForm *forms, size_t n)
{
	char *s = xstrdup("");
	for (size_t i = 0; i < n; i++) {
		const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
		char *next = xasprintf("%s%s%s", s, sep, forms[i].usage ?: forms[i].form);
		free(s);
		s = next;
	}
	return s;
}

int cli_parse_form(const char *opt, const CliForm *forms, size_t n, const char *arg,
		   const char **ret_value)
{
	int i = cli_form_match(forms, n, arg, ret_value);
	if (i < 0) {
		_cleanup_free_ char *expected = cli_forms_expected(forms, n);
		cli_error("%s: expected %s, got '%s'", opt, expected, arg);
	}
	return i;
}

int cli_parse_duration_ms(const char *s, uint64_t *ret_ms)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 } };
	size_t len = strlen(s), digits = strspn(s, "0123456789");
	uint64_t mult = 1000, v;
	if (digits == 0 || digits > 12)
		return -EINVAL;
	if (digits < len) {
		mult = 0;
		for (size_t i = 0; i < ELEMENTSOF(units); i++)
			if (streq(s + digits, units[i].suffix))
				mult = units[i].ms;
		if (!mult)
			return -EINVAL;
	}
	_cleanup_free_ char *num = xstrndup(s, digits);
	if (parse_u64(num, 0, UINT64_C(86400000), &v) < 0 || v * mult > UINT64_C(86400000))
		return -ERANGE;
	*ret_ms = v * mult;
	return 0;
}
