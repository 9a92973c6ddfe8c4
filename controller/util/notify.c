/* notify.c — see notify.h. */
#include "notify.h"

#include <sys/socket.h>
#include <sys/un.h>

/* Fill addr from $NOTIFY_SOCKET. Returns the address length, 0 when the
 * variable is unset, -errno when it names something we cannot reach. */
static int notify_address(struct sockaddr_un *addr)
{
	const char *e = getenv("NOTIFY_SOCKET");
	if (!e || !*e)
		return 0;
	size_t n = strlen(e);
	/* Abstract names carry a leading NUL instead of '@' and no terminator. */
	if (e[0] != '/' && e[0] != '@')
		return -EAFNOSUPPORT; /* e.g. vsock: addresses banger has no use for */
	if (n >= sizeof(addr->sun_path) || (e[0] == '@' && n < 2))
		return -EINVAL;
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	memcpy(addr->sun_path, e, n);
	if (e[0] == '@')
		addr->sun_path[0] = 0;
	return (int)(offsetof(struct sockaddr_un, sun_path) + n + (e[0] == '/'));
}

int notify_send(const char *state)
{
	struct sockaddr_un addr;
	int len = notify_address(&addr);
	if (len <= 0)
		return len;
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	size_t n = strlen(state);
	ssize_t w = sendto(fd, state, n, MSG_NOSIGNAL, (struct sockaddr *)&addr, (socklen_t)len);
	if (w < 0)
		return -errno;
	return (size_t)w == n ? 1 : -EIO;
}

uint64_t notify_watchdog_usec(void)
{
	uint64_t usec, pid;
	const char *u = getenv("WATCHDOG_USEC"), *p = getenv("WATCHDOG_PID");
	if (!u || parse_u64(u, 1, UINT64_MAX, &usec) < 0)
		return 0;
	/* A watchdog armed for another process (our parent) is not ours. */
	if (p && *p && (parse_u64(p, 1, UINT32_MAX, &pid) < 0 || pid != (uint64_t)getpid()))
		return 0;
	return usec;
}
