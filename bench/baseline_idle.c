/* baseline_idle [PERIOD_S] — the floor under idle wake-ups: a process that
 * does nothing but block in epoll_wait on a periodic timerfd (PERIOD_S,
 * default 60 s: bangerd's default resync period), the least an idle
 * controller with a periodic resync can cost. Runs until killed. */
#include "bench.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>

int main(int argc, char **argv)
{
	long period = argc > 1 ? strtol(argv[1], NULL, 10) : 60;
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct itimerspec its = { .it_value = { .tv_sec = period },
				  .it_interval = { .tv_sec = period } };
	struct epoll_event e = { .events = EPOLLIN };
	if (period <= 0 || tfd < 0 || ep < 0 || timerfd_settime(tfd, 0, &its, NULL) < 0 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &e) < 0)
		die("baseline_idle: set-up: %m");
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		uint64_t exp;
		if (epoll_wait(ep, &e, 1, -1) == 1 && read(tfd, &exp, sizeof(exp)) < 0)
			die("read timerfd: %m");
	}
}
