/* baseline_cold SPEC_DIR STATUS_DIR — the floor under a cold sync: the least
 * work that turns N spec files into N durable status files.
 *
 * For every *.yaml in SPEC_DIR: read it, write a ~790-byte status JSON (the
 * size bangerd writes) to a temp file in STATUS_DIR. Then one syncfs(), every
 * rename, one fsync of STATUS_DIR — the batched durability bangerd's cold sync
 * uses (see util/fileio.h). No parsing, no database, no logging. */
#include "bench.h"

#include <dirent.h>

typedef struct {
	char *tmp, *dst;
} Staged;

static size_t status_text(char *buf, size_t cap, const char *name, size_t spec_len)
{
	int n = snprintf(buf, cap,
			 "{\n  \"apiVersion\": \"banger/v1\",\n  \"kind\": \"VMStatus\",\n"
			 "  \"name\": \"%s\",\n  \"generation\": 1,\n  \"observedGeneration\": 1,\n"
			 "  \"phase\": \"Stopped\",\n  \"specBytes\": %zu,\n  \"padding\": \"",
			 name, spec_len);
	while ((size_t)n < 780 && (size_t)n + 4 < cap)
		buf[n++] = 'x';
	n += snprintf(buf + n, cap - (size_t)n, "\"\n}\n");
	return (size_t)n;
}

int main(int argc, char **argv)
{
	char spec[65536], text[2048];
	Staged *st = NULL;
	size_t n = 0, cap = 0;

	if (argc != 3)
		die("usage: baseline_cold SPEC_DIR STATUS_DIR");
	uint64_t t0 = now_ns(), c0 = self_cpu_us();
	DIR *d = opendir(argv[1]);
	if (!d)
		die("opendir %s: %m", argv[1]);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !ends_with(de->d_name, ".yaml"))
			continue;
		ssize_t len = read_small(dirfd(d), de->d_name, spec, sizeof(spec));
		if (len < 0)
			die("read %s/%s: %s", argv[1], de->d_name, strerror((int)-len));
		char name[256];
		snprintf(name, sizeof(name), "%.*s", (int)(strlen(de->d_name) - 5), de->d_name);
		size_t tl = status_text(text, sizeof(text), name, (size_t)len);
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			st = realloc(st, cap * sizeof(*st));
			if (!st)
				die("out of memory");
		}
		if (asprintf(&st[n].tmp, "%s/.%s.status.json.tmp", argv[2], name) < 0 ||
		    asprintf(&st[n].dst, "%s/%s.status.json", argv[2], name) < 0)
			die("out of memory");
		int fd = open(st[n].tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write_all(fd, text, tl) < 0)
			die("write %s: %m", st[n].tmp);
		close(fd);
		n++;
	}
	closedir(d);
	int sfd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0 || syncfs(sfd) < 0)
		die("syncfs %s: %m", argv[2]);
	for (size_t i = 0; i < n; i++) {
		if (rename(st[i].tmp, st[i].dst) < 0)
			die("rename %s: %m", st[i].tmp);
		free(st[i].tmp);
		free(st[i].dst);
	}
	if (fsync(sfd) < 0)
		die("fsync %s: %m", argv[2]);
	close(sfd);
	free(st);
	printf("files=%zu\n", n);
	printf("cold_ms=%.1f\n", (double)(now_ns() - t0) / 1e6);
	printf("cpu_ms=%.1f\n", (double)(self_cpu_us() - c0) / 1e3);
	printf("hwm_kb=%ld\n", self_maxrss_kb());
	return 0;
}
