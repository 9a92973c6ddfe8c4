/* Unit tests for the host-service pieces of util/: the sd_notify datagram
 * protocol (util/notify.c) against sockets this test listens on, path and
 * abstract, and the journal stream log format (util/log.c). */
#include "tap.h"
#include "util/log.h"
#include "util/notify.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

/* A datagram socket bound to name ("@x" abstract, else a path). */
static int listen_dgram(const char *name)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t n = strlen(name);
	memcpy(a.sun_path, name, n);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	if (name[0] == '@')
		a.sun_path[0] = 0;
	else
		len++;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, len) < 0)
		return -1;
	return fd;
}

static void check_roundtrip(const char *name, const char *what)
{
	char buf[256] = { 0 };
	int fd = listen_dgram(name);
	CHECK(fd >= 0, "%s: test socket bound", what);
	setenv("NOTIFY_SOCKET", name, 1);
	CHECK_INTEQ(notify_send("READY=1\nSTATUS=2 VMs: 2 Running"), 1, "%s: sent", what);
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
	CHECK(n > 0, "%s: datagram received", what);
	CHECK_STREQ(buf, "READY=1\nSTATUS=2 VMs: 2 Running", "%s: payload intact", what);
	close(fd);
}

static void test_notify(void)
{
	char path[] = "/tmp/banger-notify-XXXXXX";
	CHECK(mkdtemp(path) != NULL, "temp dir");
	_cleanup_free_ char *sock = path_join(path, "notify");
	check_roundtrip(sock, "path socket");
	unlink(sock);
	rmdir(path);
	_cleanup_free_ char *abstract = xasprintf("@banger-test-notify-%d", (int)getpid());
	check_roundtrip(abstract, "abstract socket");

	unsetenv("NOTIFY_SOCKET");
	CHECK_INTEQ(notify_send("READY=1"), 0, "no NOTIFY_SOCKET: nothing sent, no error");
	setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
	CHECK_INTEQ(notify_send("READY=1"), -EAFNOSUPPORT, "unsupported address → -EAFNOSUPPORT");
	setenv("NOTIFY_SOCKET", "@", 1);
	CHECK_INTEQ(notify_send("READY=1"), -EINVAL, "empty abstract name → -EINVAL");
	char longp[200];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = 0;
	setenv("NOTIFY_SOCKET", longp, 1);
	CHECK_INTEQ(notify_send("READY=1"), -EINVAL, "path longer than sun_path → -EINVAL");
	setenv("NOTIFY_SOCKET", "/nonexistent/banger/notify", 1);
	CHECK_INTEQ(notify_send("READY=1"), -ENOENT, "missing socket → -ENOENT");
	unsetenv("NOTIFY_SOCKET");
}

static void test_watchdog(void)
{
	unsetenv("WATCHDOG_PID");
	unsetenv("WATCHDOG_USEC");
	CHECK_INTEQ((int)notify_watchdog_usec(), 0, "no WATCHDOG_USEC: no watchdog");
	setenv("WATCHDOG_USEC", "4000000", 1);
	CHECK(notify_watchdog_usec() == 4000000, "WATCHDOG_USEC read");
	_cleanup_free_ char *me = xasprintf("%d", (int)getpid());
	setenv("WATCHDOG_PID", me, 1);
	CHECK(notify_watchdog_usec() == 4000000, "WATCHDOG_PID = us: armed");
	setenv("WATCHDOG_PID", "1", 1);
	CHECK_INTEQ((int)notify_watchdog_usec(), 0, "WATCHDOG_PID = another process: not ours");
	unsetenv("WATCHDOG_PID");
	setenv("WATCHDOG_USEC", "soon", 1);
	CHECK_INTEQ((int)notify_watchdog_usec(), 0, "malformed WATCHDOG_USEC: ignored");
	unsetenv("WATCHDOG_USEC");
}

/* Log one info and one error line with stderr on a temp file, with
 * JOURNAL_STREAM naming that file (or not); returns what was written. */
static char *log_lines(bool journal, LogFormat fmt)
{
	char path[] = "/tmp/banger-log-XXXXXX";
	int fd = mkstemp(path), saved = dup(STDERR_FILENO);
	struct stat st;
	char buf[1024] = { 0 };
	if (fd < 0 || saved < 0 || fstat(fd, &st) < 0)
		return xstrdup("");
	unlink(path);
	if (journal) {
		_cleanup_free_ char *v = xasprintf("%llu:%llu", (unsigned long long)st.st_dev,
						   (unsigned long long)st.st_ino);
		setenv("JOURNAL_STREAM", v, 1);
	} else
		setenv("JOURNAL_STREAM", "1:2", 1); /* a stream that is not our stderr */
	dup2(fd, STDERR_FILENO);
	log_setup(LOG_LEVEL_INFO, fmt, "bangerd");
	log_info("hello %s", "journal");
	log_errno(-ENOENT, "open x: %m");
	dup2(saved, STDERR_FILENO);
	close(saved);
	ssize_t _unused_ n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	unsetenv("JOURNAL_STREAM");
	log_setup(LOG_LEVEL_INFO, LOG_FORMAT_TEXT, "test");
	return xstrdup(buf);
}

static void test_journal_log(void)
{
	_cleanup_free_ char *j = log_lines(true, LOG_FORMAT_TEXT);
	CHECK_STREQ(j, "<6>hello journal\n<3>open x: No such file or directory\n",
		    "journal: <N> priority, no timestamp, level or ident");
	_cleanup_free_ char *t = log_lines(false, LOG_FORMAT_TEXT);
	CHECK(strstr(t, " bangerd info  hello journal\n") && t[0] == '2' && !strchr(t, '<'),
	      "not the journal (JOURNAL_STREAM is another stream): timestamped text");
	_cleanup_free_ char *js = log_lines(true, LOG_FORMAT_JSON);
	CHECK(startswith(js, "<6>{\"level\":\"info\"") && !strstr(js, "\"time\""),
	      "journal + json: <N> prefix, no time field");
}

int main(void)
{
	test_notify();
	test_watchdog();
	test_journal_log();
	return tap_done();
}
