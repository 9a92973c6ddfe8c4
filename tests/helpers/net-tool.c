/* net-tool — a small CLI over controller/net for tests/integration/t_net.sh.
 * Run it inside a private network namespace only.
 *
 *   net-tool bridge-ensure NAME CIDR
 *   net-tool tap-ensure TAP BRIDGE [MTU [OWNER]]   (MTU 0 = the bridge's)
 *   net-tool tap-delete TAP [OWNER [untagged-ok]]
 *   net-tool list PREFIX            one name per line
 *   net-tool exists NAME            exit 0 when it exists, 1 when not
 *   net-tool tap-name UID           print net_tap_name_for(UID)
 *   net-tool cycle N TAP BRIDGE     N x (tap-ensure, tap-ensure, list, exists,
 *                                   tap-delete); fails if the process holds
 *                                   more fds afterwards than before
 *   net-tool nl-cloexec             does plain libnl nl_connect() set
 *                                   FD_CLOEXEC? (prints yes/no)
 *
 * Failures exit with the errno of the failing call (e.g. 17 for EEXIST) so
 * the test can tell "refused" from "broken"; usage errors exit 64. */
#include "net/net.h"
#include "util/log.h"
#include "util/util.h"

#include <dirent.h>
#include <fcntl.h>
#include <netlink/netlink.h>
#include <stdio.h>

static int fail(int r, const char *what)
{
	fprintf(stderr, "net-tool: %s: %s\n", what, strerror(-r));
	return MIN(-r, 125);
}

/* Number of open fds, not counting the one opendir() itself uses. */
static int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

static int cycle_once(const char *tap, const char *bridge)
{
	_cleanup_strv_free_ char **l = NULL;
	int r;

	if ((r = net_tap_ensure(tap, bridge, 0, NULL)) < 0 ||
	    (r = net_tap_ensure(tap, bridge, 0, NULL)) < 0)
		return r;
	if ((r = net_list_links(tap, &l)) < 0)
		return r;
	if (!strv_contains(l, tap) || !net_link_exists(tap))
		return -ENOENT;
	if ((r = net_tap_delete(tap, NULL, false)) < 0)
		return r;
	return net_link_exists(tap) ? -EEXIST : 0;
}

static int cmd_cycle(int n, const char *tap, const char *bridge)
{
	int before = fd_count(), after, r;

	log_setup(LOG_LEVEL_WARN, LOG_FORMAT_TEXT, "net-tool"); /* 100 "created/deleted" lines */
	for (int i = 0; i < n; i++)
		if ((r = cycle_once(tap, bridge)) < 0)
			return fail(r, "cycle");
	after = fd_count();
	printf("fds before=%d after=%d cycles=%d\n", before, after, n);
	if (before < 0 || after != before) {
		fprintf(stderr, "net-tool: cycle: fd leak (%d -> %d)\n", before, after);
		return 1;
	}
	return 0;
}

static int cmd_nl_cloexec(void)
{
	struct nl_sock *sk = nl_socket_alloc();
	int fl;

	if (!sk || nl_connect(sk, NETLINK_ROUTE) < 0)
		return fail(-EIO, "nl_connect");
	fl = fcntl(nl_socket_get_fd(sk), F_GETFD);
	printf("%s\n", fl >= 0 && (fl & FD_CLOEXEC) ? "yes" : "no");
	nl_socket_free(sk);
	return 0;
}

static int cmd_list(const char *prefix)
{
	_cleanup_strv_free_ char **l = NULL;
	int r = net_list_links(prefix, &l);

	if (r < 0)
		return fail(r, "list");
	for (size_t i = 0; l[i]; i++)
		printf("%s\n", l[i]);
	return 0;
}

static int cmd_tap_ensure(int argc, char **argv)
{
	uint64_t mtu = 0;
	int r;

	if (argc > 4 && !streq(argv[4], "0") && parse_u64(argv[4], 68, 65535, &mtu) < 0)
		return fail(-EINVAL, "tap-ensure: MTU");
	r = net_tap_ensure(argv[2], argv[3], (unsigned)mtu, argc > 5 ? argv[5] : NULL);
	return r < 0 ? fail(r, "tap-ensure") : 0;
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	int r;

	log_setup(LOG_LEVEL_INFO, LOG_FORMAT_TEXT, "net-tool");
	if (streq(c, "bridge-ensure") && argc == 4) {
		r = net_bridge_ensure(argv[2], argv[3]);
		return r < 0 ? fail(r, "bridge-ensure") : 0;
	}
	if (streq(c, "tap-ensure") && argc >= 4 && argc <= 6)
		return cmd_tap_ensure(argc, argv);
	if (streq(c, "tap-delete") && argc >= 3 && argc <= 5) {
		r = net_tap_delete(argv[2], argc > 3 ? argv[3] : NULL,
				   argc > 4 && streq(argv[4], "untagged-ok"));
		return r < 0 ? fail(r, "tap-delete") : 0;
	}
	if (streq(c, "list") && argc == 3)
		return cmd_list(argv[2]);
	if (streq(c, "exists") && argc == 3)
		return net_link_exists(argv[2]) ? 0 : 1;
	if (streq(c, "tap-name") && argc == 3) {
		_cleanup_free_ char *t = net_tap_name_for(argv[2]);
		if (!t)
			return fail(-EINVAL, "tap-name");
		printf("%s\n", t);
		return 0;
	}
	if (streq(c, "cycle") && argc == 5)
		return cmd_cycle(atoi(argv[2]), argv[3], argv[4]);
	if (streq(c, "nl-cloexec") && argc == 2)
		return cmd_nl_cloexec();
	fprintf(stderr,
		"usage: net-tool bridge-ensure NAME CIDR | tap-ensure TAP BRIDGE [MTU [OWNER]] | "
		"tap-delete TAP [OWNER [untagged-ok]] | list PREFIX | exists NAME | tap-name UID | "
		"cycle N TAP BRIDGE | nl-cloexec\n");
	return 64;
}
