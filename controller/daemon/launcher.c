/* launcher.c — see launcher.h. */
#include "daemon/launcher.h"
#include "util/log.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>

typedef struct Job {
	struct Launcher *owner;
	VmLaunch *launch;
	pthread_t thread;
	struct Job *next;
} Job;

struct Launcher {
	unsigned max;
	int efd;
	size_t in_flight; /* loop thread only: submitted, not collected */
	pthread_mutex_t lock;
	Job *done; /* finished by workers, not yet collected (under lock) */
	char **waiters;
	size_t whead, wlen, wcap;
};

int launcher_new(unsigned max, Launcher **ret)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return log_errno(-errno, "launcher: eventfd: %m");
	Launcher *l = xcalloc(1, sizeof(Launcher));
	l->max = max ? max : 1;
	l->efd = fd;
	pthread_mutex_init(&l->lock, NULL);
	*ret = l;
	return 0;
}

int launcher_fd(const Launcher *l)
{
	return l->efd;
}

size_t launcher_in_flight(const Launcher *l)
{
	return l ? l->in_flight : 0;
}

bool launcher_full(const Launcher *l)
{
	return l && l->in_flight >= l->max;
}

/* The worker: the blocking launch, then hand it back and wake the loop. */
static void *launch_worker(void *arg)
{
	Job *j = arg;
	Launcher *l = j->owner;
	vm_launch_run(j->launch);
	pthread_mutex_lock(&l->lock);
	j->next = l->done;
	l->done = j;
	pthread_mutex_unlock(&l->lock);
	uint64_t one = 1;
	/* Only EAGAIN (counter saturated) can fail, and then it is readable. */
	(void)!write(l->efd, &one, sizeof(one));
	return NULL;
}

int launcher_submit(Launcher *l, VmLaunch *launch)
{
	if (launcher_full(l))
		return -EBUSY;
	Job *j = xcalloc(1, sizeof(Job));
	j->owner = l;
	j->launch = launch;
	/* The worker inherits the loop's signal mask (SIGTERM, SIGINT, SIGHUP
	 * blocked for the signalfd): signals stay the loop's. */
	int e = pthread_create(&j->thread, NULL, launch_worker, j);
	if (e != 0) {
		free(j);
		return log_errno(-e, "%s: no thread for its launch: %m", vm_launch_name(launch));
	}
	l->in_flight++;
	return 0;
}

static void wait_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
}

size_t launcher_collect(Launcher *l, bool wait, VmLaunch ***ret)
{
	uint64_t n;
	size_t count = 0;
	*ret = NULL;
	if (wait && l->in_flight > 0)
		wait_readable(l->efd);
	(void)!read(l->efd, &n, sizeof(n)); /* EAGAIN: nothing new; the list says */
	pthread_mutex_lock(&l->lock);
	Job *list = l->done;
	l->done = NULL;
	pthread_mutex_unlock(&l->lock);
	for (Job *j = list; j; j = j->next)
		count++;
	VmLaunch **out = xcalloc(count + 1, sizeof(VmLaunch *));
	size_t i = count;
	/* The list is newest first: hand them back in the order they finished. */
	while (list) {
		Job *j = list;
		list = j->next;
		int e = pthread_join(j->thread, NULL);
		if (e != 0)
			log_warn_errno(-e, "%s: join its launch thread: %m",
				       vm_launch_name(j->launch));
		out[--i] = j->launch;
		l->in_flight--;
		free(j);
	}
	*ret = out;
	return count;
}

void launcher_wait_slot(Launcher *l, const char *name)
{
	if (l->whead + l->wlen == l->wcap) {
		if (l->whead > 0) {
			memmove(l->waiters, l->waiters + l->whead, l->wlen * sizeof(char *));
			l->whead = 0;
		} else {
			l->wcap = l->wcap ? l->wcap * 2 : 64;
			l->waiters = xrealloc(l->waiters, l->wcap * sizeof(char *));
		}
	}
	l->waiters[l->whead + l->wlen++] = xstrdup(name);
}

char *launcher_next_waiter(Launcher *l)
{
	if (l->wlen == 0)
		return NULL;
	char *name = l->waiters[l->whead++];
	if (--l->wlen == 0)
		l->whead = 0;
	return name;
}

void launcher_free(Launcher *l, Runtime *rt)
{
	if (!l)
		return;
	while (l->in_flight > 0) {
		VmLaunch **done = NULL;
		launcher_collect(l, true, &done);
		for (size_t i = 0; done[i]; i++) {
			_cleanup_free_ char *err = NULL;
			(void)!vm_launch_finish(rt, done[i], &err);
		}
		free(done);
	}
	for (size_t i = 0; i < l->wlen; i++)
		free(l->waiters[l->whead + i]);
	free(l->waiters);
	pthread_mutex_destroy(&l->lock);
	close(l->efd);
	free(l);
}
