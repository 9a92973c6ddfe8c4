/* replay-main.h — the main() of the corpus replayers: runs the libFuzzer
 * entry point of the fuzz target #included before this header over every
 * file given (directories: every regular file inside, one level), so the
 * test suite replays each corpus with the normal (or sanitizer) build.
 * Prints TAP, one line per file. The includer defines REPLAY_MAX_BYTES. */
#include "util/fileio.h"

#include <dirent.h>
#include <sys/stat.h>

static int replay_n;

static void replay_file(const char *path)
{
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int r = read_file_bounded(path, REPLAY_MAX_BYTES, &data, &len);

	if (r < 0) {
		printf("not ok %d - %s: %s\n", ++replay_n, path, strerror(-r));
		exit(1);
	}
	LLVMFuzzerTestOneInput((const uint8_t *)data, len);
	printf("ok %d - %s (%zu bytes)\n", ++replay_n, path, len);
}

static void replay_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d) {
		printf("not ok %d - %s: %m\n", ++replay_n, dir);
		exit(1);
	}
	while ((de = readdir(d))) {
		_cleanup_free_ char *p = path_join(dir, de->d_name);
		struct stat st;
		if (de->d_name[0] != '.' && stat(p, &st) == 0 && S_ISREG(st.st_mode))
			replay_file(p);
	}
	closedir(d);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
			replay_dir(argv[i]);
		else
			replay_file(argv[i]);
	}
	printf("1..%d\n", replay_n);
	return 0;
}
