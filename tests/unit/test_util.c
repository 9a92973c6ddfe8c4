/* Unit tests for controller/util: sha256 vectors, name rules, integer
 * parsing, atomic file replacement (single and batched). */
#include "tap.h"
#include "util/fileio.h"
#include "util/proc.h"
#include "util/sha256.h"
#include "util/util.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

static void test_sha256(void)
{
	char hex[65];
	sha256_hex("", 0, hex);
	CHECK_STREQ(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		    "sha256 of empty string");
	sha256_hex("abc", 3, hex);
	CHECK_STREQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		    "sha256 of abc");
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	sha256_hex(two, strlen(two), hex);
	CHECK_STREQ(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
		    "sha256 of the two-block vector");
	char *mil = xmalloc(1000000);
	memset(mil, 'a', 1000000);
	sha256_hex(mil, 1000000, hex);
	free(mil);
	CHECK_STREQ(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
		    "sha256 of a million a");
}

static void test_names(void)
{
	CHECK(dns_label_valid("web-1"), "web-1 is a label");
	CHECK(dns_label_valid("a"), "single char is a label");
	CHECK(!dns_label_valid(""), "empty is not");
	CHECK(!dns_label_valid("-a"), "leading dash is not");
	CHECK(!dns_label_valid("a-"), "trailing dash is not");
	CHECK(!dns_label_valid("Web"), "upper case is not");
	CHECK(!dns_label_valid("../etc"), "path is not");
	CHECK(!dns_label_valid("a.b"), "dot is not");
	char long64[65];
	memset(long64, 'a', 64);
	long64[64] = 0;
	CHECK(!dns_label_valid(long64), "64 chars is not");
	long64[63] = 0;
	CHECK(dns_label_valid(long64), "63 chars is");
}

static void test_parse_u64(void)
{
	uint64_t v = 7;
	CHECK(parse_u64("42", 0, 100, &v) == 0 && v == 42, "parse 42");
	CHECK(parse_u64("101", 0, 100, &v) == -ERANGE && v == 42, "range error keeps out param");
	CHECK(parse_u64("4x", 0, 100, &v) == -EINVAL, "junk rejected");
	CHECK(parse_u64("99999999999999999999999", 0, UINT64_MAX, &v) == -ERANGE, "overflow");
	CHECK(parse_u64("", 0, 1, &v) == -EINVAL, "empty rejected");
}

/* Only the last staged word on a path reaches the disk, whatever the file
 * held before: bangerd's event batches write and remove the same status
 * file several times in one batch (delete and re-create, A → B → A). */
static void test_batch_last_word(const char *dir)
{
	_cleanup_free_ char *a = path_join(dir, "lw-a"), *r = path_join(dir, "lw-r"),
			    *c = path_join(dir, "lw-c"), *got = NULL;
	size_t len;
	CHECK(write_file_atomic(a, "A", 1, 0644) == 0 && write_file_atomic(r, "R", 1, 0644) == 0,
	      "last word: seed files");
	AtomicBatch *b = atomic_batch_new();
	CHECK(atomic_batch_write(b, a, "B", 1, 0644) == 1, "A → B staged");
	CHECK(atomic_batch_write(b, a, "A", 1, 0644) == 0,
	      "B → A: equal to the disk, nothing staged");
	CHECK(atomic_batch_write(b, r, "R2", 2, 0644) == 1, "write staged before a removal");
	CHECK(atomic_batch_remove(b, r) == 1, "removal staged");
	CHECK(atomic_batch_write(b, c, "C", 1, 0644) == 1, "new file staged");
	CHECK(atomic_batch_remove(b, c) == 0,
	      "removal of a file not on disk: its staged write goes");
	CHECK(access(r, F_OK) == 0, "nothing removed before the commit");
	CHECK(atomic_batch_commit(b) == 0, "last word: commit");
	CHECK(read_file_bounded(a, 10, &got, &len) == 0 && len == 1 && got[0] == 'A',
	      "A → B → A ends as A");
	CHECK(access(r, F_OK) < 0 && errno == ENOENT, "write then remove: removed");
	CHECK(access(c, F_OK) < 0 && errno == ENOENT, "create then remove: never there");
	CHECK(atomic_batch_write(b, r, "R3", 2, 0644) == 1, "the batch is reusable after a commit");
	CHECK(atomic_batch_remove(b, r) == 0 && atomic_batch_write(b, r, "R4", 2, 0644) == 1,
	      "remove then write: the write stays");
	CHECK(atomic_batch_commit(b) == 0, "second commit");
	free(got);
	got = NULL;
	CHECK(read_file_bounded(r, 10, &got, &len) == 0 && len == 2 && memcmp(got, "R4", 2) == 0,
	      "remove then write ends as the write");
	atomic_batch_free(b);
	DIR *d = opendir(dir);
	struct dirent *de;
	int temps = 0;
	while (d && (de = readdir(d)))
		temps += endswith(de->d_name, ".tmp");
	if (d)
		closedir(d);
	CHECK(temps == 0, "no temp file left (%d)", temps);

	char *t = atomic_temp_target(".web-1.status.json.0123456789abcdef.tmp");
	CHECK(t && streq(t, "web-1.status.json"), "temp name → its target");
	free(t);
	CHECK(atomic_temp_target(".web-1.status.json.0123456789abcdeg.tmp") == NULL,
	      "not 16 hex digits: not ours");
	CHECK(atomic_temp_target("web-1.status.json.0123456789abcdef.tmp") == NULL,
	      "no leading dot: not ours");
	CHECK(atomic_temp_target(".put.123.tmp") == NULL, "someone else's temp: not ours");
}

static void test_atomic(void)
{
	char dir[] = "/tmp/banger-test-util-XXXXXX";
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	_cleanup_free_ char *p = path_join(dir, "f.json");
	_cleanup_free_ char *got = NULL;
	size_t len = 0;

	CHECK(write_file_atomic_if_changed(p, "one", 3, 0644) == 1, "first write writes");
	CHECK(write_file_atomic_if_changed(p, "one", 3, 0644) == 0, "same content is a no-op");
	CHECK(write_file_atomic_if_changed(p, "two!", 4, 0644) == 1, "new content writes");
	CHECK(read_file_bounded(p, 100, &got, &len) == 0 && len == 4 && streq(got, "two!"),
	      "content replaced");
	free(got);
	got = NULL;
	CHECK(read_file_bounded(p, 3, &got, &len) == -EFBIG, "bounded read refuses big file");

	AtomicBatch *b = atomic_batch_new();
	char *names[3];
	for (int i = 0; i < 3; i++) {
		char buf[16];
		snprintf(buf, sizeof(buf), "b%d", i);
		names[i] = path_join(dir, buf);
		CHECK(atomic_batch_write(b, names[i], buf, strlen(buf), 0644) == 1, "stage %s",
		      buf);
	}
	CHECK(atomic_batch_write(b, p, "two!", 4, 0644) == 0, "unchanged file not staged");
	CHECK(atomic_batch_commit(b) == 0, "batch commit");
	atomic_batch_free(b);
	for (int i = 0; i < 3; i++) {
		struct stat st;
		CHECK(stat(names[i], &st) == 0 && st.st_size == 2, "batch file %d present", i);
		free(names[i]);
	}
	test_batch_last_word(dir);
	CHECK(rm_rf(dir) == 0, "rm_rf");
	struct stat st;
	CHECK(stat(dir, &st) < 0 && errno == ENOENT, "dir gone");
}

static void test_proc(void)
{
	char *t[] = { "/bin/true", NULL }, *f[] = { "/bin/false", NULL };
	char *missing[] = { "/nonexistent/prog", NULL };
	char *slow[] = { "/bin/sleep", "5", NULL };
	CHECK_INTEQ(proc_run(t, NULL, 5000), 0, "proc_run true exits 0");
	CHECK_INTEQ(proc_run(f, NULL, 5000), 1, "proc_run false exits 1");
	CHECK_INTEQ(proc_run(missing, NULL, 5000), -ENOENT, "exec failure reported as -ENOENT");
	CHECK_INTEQ(proc_run(slow, NULL, 100), -ETIMEDOUT, "timeout kills and reports");

	uint64_t st = 0;
	CHECK(proc_start_time(getpid(), &st) == 0 && st > 0, "own start time");
	CHECK(proc_alive(getpid(), st), "alive with matching start time");
	CHECK(!proc_alive(getpid(), st + 1), "not alive with other start time");
	_cleanup_free_ char *sh = NULL;
	CHECK(find_executable("sh", &sh) == 0 && sh[0] == '/', "find sh in PATH");
}

/* The spawn gate: the hook sees the child before it execs, a failing hook
 * means the program never runs. */
typedef struct {
	pid_t pid;
	uint64_t st;
	char comm[64];
	int result;
} GateSeen;

static int gate_hook(void *userdata, pid_t pid, uint64_t start_time)
{
	GateSeen *g = userdata;
	char path[64];
	g->pid = pid;
	g->st = start_time;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	_cleanup_free_ char *comm = NULL;
	if (read_file_bounded(path, 64, &comm, NULL) >= 0)
		snprintf(g->comm, sizeof(g->comm), "%s", comm);
	return g->result;
}

static void test_spawn_gate(void)
{
	char tmpl[] = "/tmp/banger-gate.XXXXXX";
	const char *dir = mkdtemp(tmpl);
	CHECK(dir != NULL, "gate: temp dir");
	if (!dir)
		return;
	_cleanup_free_ char *mark = path_join(dir, "ran");
	char *argv[] = { "/usr/bin/touch", mark, NULL };
	GateSeen g = { .result = -EIO };
	SpawnOptions o = { .before_exec = gate_hook, .userdata = &g };
	pid_t pid = 0;
	CHECK_INTEQ(proc_spawn(argv, NULL, &o, &pid), -EIO, "gate: the hook's error is returned");
	CHECK(g.pid > 0 && pid == 0, "gate: hook saw the child, no pid handed out");
	CHECK(!strstr(g.comm, "touch"), "gate: the child had not exec'd yet (comm %s)", g.comm);
	CHECK(access(mark, F_OK) < 0, "gate: a refused child never runs the program");
	CHECK(!proc_alive(g.pid, g.st), "gate: the refused child is gone");

	g = (GateSeen){ .result = 0 };
	CHECK_INTEQ(proc_spawn(argv, NULL, &o, &pid), 0, "gate: open gate spawns");
	CHECK(pid == g.pid, "gate: the hook got the spawned pid");
	CHECK_INTEQ(proc_wait_exit(pid, 0, 5000), 0, "gate: the program ran and exited");
	CHECK(access(mark, F_OK) == 0, "gate: the program ran after the hook");
	rm_rf(dir);
}

/* A gated child that cannot become the program reports why: its set-up (a
 * missing cwd) or its exec (a missing binary). The hook saw it first; it is
 * reaped, not left a zombie. */
static void test_spawn_gate_errors(void)
{
	char *missing[] = { "/nonexistent/prog", NULL };
	char *ok[] = { "/bin/true", NULL };
	GateSeen g = { .result = 0 };
	SpawnOptions o = { .before_exec = gate_hook, .userdata = &g };
	pid_t pid = 0;
	CHECK_INTEQ(proc_spawn(missing, NULL, &o, &pid), -ENOENT, "gate: exec failure is -ENOENT");
	CHECK(g.pid > 0 && pid == 0, "gate: the hook saw the child that failed to exec");
	CHECK(waitpid(g.pid, NULL, WNOHANG) < 0 && errno == ECHILD, "gate: it was reaped");
	g = (GateSeen){ .result = 0 };
	o.cwd = "/nonexistent/dir";
	CHECK_INTEQ(proc_spawn(ok, NULL, &o, &pid), -ENOENT, "gate: set-up failure (cwd) reported");
	CHECK(waitpid(g.pid, NULL, WNOHANG) < 0 && errno == ECHILD, "gate: that one reaped too");
}

/* Launches spawn from several threads at once (daemon/launcher.c): each
 * gated spawn gets its own child, and its hook sees that child's pid. */
typedef struct {
	int ok;
} SpawnerResult;

static int same_pid_hook(void *userdata, pid_t pid, uint64_t start_time)
{
	pid_t *seen = userdata;
	(void)start_time;
	*seen = pid;
	return 0;
}

static void *spawner(void *arg)
{
	SpawnerResult *res = arg;
	char *argv[] = { "/bin/true", NULL };
	for (int i = 0; i < 4; i++) {
		pid_t seen = 0, pid = 0;
		SpawnOptions o = { .before_exec = same_pid_hook, .userdata = &seen };
		if (proc_spawn(argv, NULL, &o, &pid) == 0 && pid == seen &&
		    proc_wait_exit(pid, 0, 5000) == 0)
			res->ok++;
	}
	return NULL;
}

static void test_spawn_concurrent(void)
{
	pthread_t t[6];
	SpawnerResult res[6] = { 0 };
	for (int i = 0; i < 6; i++)
		CHECK(pthread_create(&t[i], NULL, spawner, &res[i]) == 0, "concurrent: thread %d",
		      i);
	int total = 0;
	for (int i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		total += res[i].ok;
	}
	CHECK_INTEQ(total, 24, "concurrent: 24 gated spawns from 6 threads, each hook saw its own");
}

/* pass_fds: the named fds reach the program at their numbers, every other
 * fd (CLOEXEC or not) does not; an fd that would land on stdio is refused. */
static void test_spawn_pass_fds(void)
{
	char tmpl[] = "/tmp/banger-passfd.XXXXXX";
	const char *dir = mkdtemp(tmpl);
	CHECK(dir != NULL, "pass_fds: temp dir");
	if (!dir)
		return;
	_cleanup_free_ char *out = path_join(dir, "out"), *text = NULL;
	_cleanup_close_ int passed = open("/dev/null", O_RDONLY | O_CLOEXEC);
	/* Not CLOEXEC, and high: ls itself opens the lowest free numbers. */
	_cleanup_close_ int other = fcntl(passed, F_DUPFD, 200);
	char *argv[] = { "/usr/bin/ls", "/proc/self/fd", NULL };
	int fds[] = { passed };
	SpawnOptions o = { .stdout_path = out, .pass_fds = fds, .n_pass_fds = 1 };
	pid_t pid;
	CHECK_INTEQ(proc_spawn(argv, NULL, &o, &pid), 0, "pass_fds: spawns");
	CHECK_INTEQ(proc_wait_exit(pid, 0, 5000), 0, "pass_fds: ls ran");
	waitpid(pid, NULL, 0);
	CHECK(read_file_bounded(out, 4096, &text, NULL) >= 0, "pass_fds: read the listing");
	char want[16], unwanted[16];
	snprintf(want, sizeof(want), "\n%d\n", passed);
	snprintf(unwanted, sizeof(unwanted), "\n%d\n", other);
	_cleanup_free_ char *list = xasprintf("\n%s", text ? text : "");
	CHECK(strstr(list, want) != NULL, "pass_fds: fd %d inherited", passed);
	CHECK(strstr(list, unwanted) == NULL, "pass_fds: fd %d (not passed) closed", other);
	int stdio[] = { 1 };
	o.pass_fds = stdio;
	CHECK_INTEQ(proc_spawn(argv, NULL, &o, &pid), -EBADF, "pass_fds: stdio numbers refused");
	rm_rf(dir);
}

/* A gated child holds none of the parent's other fds while it waits: with
 * concurrent launches another child's gate must never stay open through it
 * (daemon/launcher.c). The hook runs while the child waits at the gate. */
typedef struct {
	char pipe_name[64]; /* "pipe:[inode]" of an unrelated pipe in the parent */
	bool held;          /* the gated child still held it after 2 s */
	int n_fds;          /* fds of the gated child at that point */
} FdSeen;

static bool child_holds(pid_t pid, const char *target, int *ret_n)
{
	char dir[64], path[384], link[128];
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(dir);
	bool found = false;
	int n = 0;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		n++;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		ssize_t k = readlink(path, link, sizeof(link) - 1);
		if (k > 0 && (link[k] = 0, streq(link, target)))
			found = true;
	}
	if (d)
		closedir(d);
	*ret_n = n;
	return found;
}

static int fd_hook(void *userdata, pid_t pid, uint64_t start_time)
{
	FdSeen *f = userdata;
	(void)start_time;
	f->held = true;
	for (int i = 0; i < 200 && f->held; i++) {
		f->held = child_holds(pid, f->pipe_name, &f->n_fds);
		if (f->held)
			usleep(10000);
	}
	return 0;
}

static void test_spawn_closes_fds(void)
{
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0, "fds: an unrelated pipe (as another launch's gate)");
	char link[64];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", p[1]);
	FdSeen f = { 0 };
	ssize_t k = readlink(link, f.pipe_name, sizeof(f.pipe_name) - 1);
	CHECK(k > 0, "fds: its name");
	char *argv[] = { "/bin/true", NULL };
	SpawnOptions o = { .before_exec = fd_hook, .userdata = &f };
	pid_t pid = 0;
	CHECK_INTEQ(proc_spawn(argv, NULL, &o, &pid), 0, "fds: spawned");
	CHECK(!f.held, "fds: the gated child let go of the parent's other pipe before its gate");
	CHECK(f.n_fds <= 5, "fds: it held only stdio, its error pipe and its gate (%d)", f.n_fds);
	CHECK_INTEQ(proc_wait_exit(pid, 0, 5000), 0, "fds: the program ran");
	close(p[0]);
	close(p[1]);
}

/* Who serves a socket is asked of the socket (SO_PEERCRED), not of
 * /proc/net/unix. */
static void test_socket_peer(void)
{
	char tmpl[] = "/tmp/banger-peer.XXXXXX";
	const char *dir = mkdtemp(tmpl);
	CHECK(dir != NULL, "peer: temp dir");
	if (!dir)
		return;
	_cleanup_free_ char *path = path_join(dir, "s.sock");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK_INTEQ(proc_socket_served_by(path, getpid()), -ESRCH, "peer: no socket: -ESRCH");
	CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "peer: bound");
	CHECK_INTEQ(proc_socket_served_by(path, getpid()), -ESRCH, "peer: not listening: -ESRCH");
	CHECK(listen(fd, 4) == 0, "peer: listening");
	CHECK_INTEQ(proc_socket_served_by(path, getpid()), 0, "peer: served by us");
	CHECK_INTEQ(proc_socket_served_by(path, 1), -EPERM, "peer: not served by pid 1");
	pid_t pid = 0;
	uint64_t st = 0, own = 0;
	proc_start_time(getpid(), &own);
	CHECK(proc_find_socket_owner(path, &pid, &st) == 0 && pid == getpid() && st == own,
	      "peer: owner is us, with our start time");
	rm_rf(dir);
}

int main(void)
{
	test_proc();
	test_spawn_pass_fds();
	test_spawn_gate();
	test_spawn_gate_errors();
	test_spawn_concurrent();
	test_spawn_closes_fds();
	test_socket_peer();
	test_sha256();
	test_names();
	test_parse_u64();
	test_atomic();
	return tap_done();
}
