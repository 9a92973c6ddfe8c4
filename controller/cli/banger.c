/* banger.c — minimal CLI entry point: dispatches subcommands (the full CLI
 * replaces this file). */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "validate") == 0)
		return cli_validate(argc - 1, argv + 1);
	fprintf(stderr, "Usage: banger validate [-f] FILE|DIR|- ...\n");
	return 2;
}
