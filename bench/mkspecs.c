/* mkspecs DIR N — write N spec files DIR/vm-NNNNN.yaml (state: Stopped).
 * Plain writes, no fsync: the files only need to exist for the benchmark,
 * and generating them is not what is measured. */
#include "bench.h"

int main(int argc, char **argv)
{
	char name[64], file[128], text[1024];
	if (argc != 3)
		die("usage: mkspecs DIR N");
	long n = strtol(argv[2], NULL, 10);
	int dfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || n <= 0 || n > 1000000)
		die("mkspecs: bad dir %s or count %s: %m", argv[1], argv[2]);
	for (long i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "vm-%05ld", i);
		snprintf(file, sizeof(file), "%s.yaml", name);
		int len = spec_text(text, sizeof(text), name, 256);
		int fd = openat(dfd, file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write_all(fd, text, (size_t)len) < 0)
			die("mkspecs: write %s/%s: %m", argv[1], file);
		close(fd);
	}
	close(dfd);
	printf("files=%ld\n", n);
	return 0;
}
