/* baseline_fcspawn — the floor for starting N Firecracker VMMs: spawn N
 * doubles and configure each through its API, CONC at a time, with nothing
 * else (no spec, no store, no status, no tap, no cgroup).
 *
 *   baseline_fcspawn DIR N CONC DOUBLE KERNEL
 *
 * CONC worker threads take VM indexes in turn; each makes DIR/<i>/ and a
 * sparse 8 MiB root disk there, spawns `DOUBLE --api-sock DIR/<i>/api.sock
 * --id b-<i>` (new session, output to DIR/<i>/fc.log), waits for the socket
 * (connect every 10 ms, as bangerd's driver polls), then sends the boot
 * plan bangerd sends, one connection per request: PUT /boot-source,
 * /drives/rootfs, /machine-config, /network-interfaces/eth0 (host_dev_name
 * is only a string to the double), /actions InstanceStart; every answer must
 * be 204. total_ms is from the first spawn to the last InstanceStart
 * answered. Then it reads every double's RSS (/proc status: VmRSS and
 * RssAnon, summed and averaged), SIGKILLs and reaps them all. */
#include "vmbench.h"

#include <pthread.h>
#include <sys/stat.h>

#define SOCK_WAIT_MS 10000

typedef struct {
	const char *dir, *dbl, *kernel;
	long n;
	long next; /* the next VM index to start (under lock) */
	pthread_mutex_t lock;
	pid_t *pids;
	uint64_t *lat_ns; /* spawn → InstanceStart answered, per VM */
	int failed;
} Job;

/* One HTTP/1.1 request on a new connection; 0 when answered 204. */
static int http_204(const char *sock, const char *method, const char *path, const char *body)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char req[2048], resp[1024];
	if (strlen(sock) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	int len = snprintf(req, sizeof(req),
			   "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
			   "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
			   method, path, strlen(body), body);
	size_t got = 0;
	ssize_t k = 0;
	int r = write_all(fd, req, (size_t)len);
	while (r >= 0 && got < sizeof(resp) - 1 &&
	       (k = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0)
		got += (size_t)k;
	close(fd);
	resp[got] = 0;
	if (r < 0 || strncmp(resp, "HTTP/1.1 204", 12)) {
		fprintf(stderr, "baseline_fcspawn: %s %s %s: %.200s\n", sock, method, path, resp);
		return -EPROTO;
	}
	return 0;
}

static int wait_sock(const char *sock, pid_t pid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(sock) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	uint64_t deadline = now_ns() + (uint64_t)SOCK_WAIT_MS * 1000000ull;
	while (now_ns() < deadline) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -ECHILD;
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int r = fd >= 0 ? connect(fd, (struct sockaddr *)&sa, sizeof(sa)) : -1;
		if (fd >= 0)
			close(fd);
		if (r == 0)
			return 0;
		usleep(10000);
	}
	return -ETIMEDOUT;
}

static int start_one(Job *j, long i)
{
	char d[512], sock[600], root[600], log[600], id[32], body[1024];
	snprintf(d, sizeof(d), "%s/%ld", j->dir, i);
	snprintf(sock, sizeof(sock), "%s/api.sock", d);
	snprintf(root, sizeof(root), "%s/root.img", d);
	snprintf(log, sizeof(log), "%s/fc.log", d);
	snprintf(id, sizeof(id), "b-%04ld", i);
	if (mkdir(d, 0755) < 0 && errno != EEXIST)
		return -errno;
	int fd = open(root, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || ftruncate(fd, 8 << 20) < 0) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	close(fd);
	char *argv[] = { (char *)j->dbl, "--api-sock", sock, "--id", id, NULL };
	uint64_t t0 = now_ns();
	j->pids[i] = vmb_spawn(argv, log);
	int r = wait_sock(sock, j->pids[i]);
	if (r < 0)
		return r;
	snprintf(body, sizeof(body),
		 "{\"kernel_image_path\":\"%s\",\"boot_args\":\"console=ttyS0\"}", j->kernel);
	if ((r = http_204(sock, "PUT", "/boot-source", body)) < 0)
		return r;
	snprintf(body, sizeof(body),
		 "{\"drive_id\":\"rootfs\",\"path_on_host\":\"%s\",\"is_root_device\":true,"
		 "\"is_read_only\":false}",
		 root);
	if ((r = http_204(sock, "PUT", "/drives/rootfs", body)) < 0 ||
	    (r = http_204(sock, "PUT", "/machine-config",
			  "{\"vcpu_count\":1,\"mem_size_mib\":128}")) < 0)
		return r;
	snprintf(body, sizeof(body), "{\"iface_id\":\"eth0\",\"host_dev_name\":\"bb%04ld\"}", i);
	if ((r = http_204(sock, "PUT", "/network-interfaces/eth0", body)) < 0 ||
	    (r = http_204(sock, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}")) < 0)
		return r;
	j->lat_ns[i] = now_ns() - t0;
	return 0;
}

static void *worker(void *arg)
{
	Job *j = arg;
	for (;;) {
		pthread_mutex_lock(&j->lock);
		long i = j->next < j->n ? j->next++ : -1;
		pthread_mutex_unlock(&j->lock);
		if (i < 0)
			return NULL;
		int r = start_one(j, i);
		if (r < 0) {
			errno = -r;
			fprintf(stderr, "baseline_fcspawn: VM %ld: %m\n", i);
			pthread_mutex_lock(&j->lock);
			j->failed++;
			pthread_mutex_unlock(&j->lock);
		}
	}
}

int main(int argc, char **argv)
{
	if (argc != 6)
		die("usage: baseline_fcspawn DIR N CONC DOUBLE KERNEL");
	Job j = { .dir = argv[1],
		  .dbl = argv[4],
		  .kernel = argv[5],
		  .n = strtol(argv[2], NULL, 10),
		  .lock = PTHREAD_MUTEX_INITIALIZER };
	long conc = strtol(argv[3], NULL, 10);
	if (j.n <= 0 || j.n > 100000 || conc <= 0 || conc > 1024)
		die("baseline_fcspawn: bad N %s or CONC %s", argv[2], argv[3]);
	if (conc > j.n)
		conc = j.n;
	j.pids = calloc((size_t)j.n, sizeof(pid_t));
	j.lat_ns = calloc((size_t)j.n, sizeof(uint64_t));
	pthread_t *th = calloc((size_t)conc, sizeof(pthread_t));
	if (!j.pids || !j.lat_ns || !th)
		die("out of memory");
	uint64_t t0 = now_ns();
	for (long t = 0; t < conc; t++)
		if (pthread_create(&th[t], NULL, worker, &j) != 0)
			die("pthread_create: %m");
	for (long t = 0; t < conc; t++)
		pthread_join(th[t], NULL);
	uint64_t total = now_ns() - t0;
	long rss = 0, anon = 0, counted = 0;
	for (long i = 0; i < j.n; i++) {
		if (j.pids[i] <= 0)
			continue;
		long a = proc_status_kb(j.pids[i], "VmRSS"),
		     b = proc_status_kb(j.pids[i], "RssAnon");
		if (a > 0 && b >= 0) {
			rss += a;
			anon += b;
			counted++;
		}
	}
	for (long i = 0; i < j.n; i++)
		if (j.pids[i] > 0)
			kill(j.pids[i], SIGKILL);
	for (long i = 0; i < j.n; i++)
		if (j.pids[i] > 0)
			waitpid(j.pids[i], NULL, 0);
	qsort(j.lat_ns, (size_t)j.n, sizeof(uint64_t), bench_cmp_u64);
	printf("vms=%ld\n", j.n);
	printf("conc=%ld\n", conc);
	printf("failed=%d\n", j.failed);
	printf("total_ms=%.1f\n", (double)total / 1e6);
	printf("per_vm_p50_ms=%.2f\n", (double)percentile(j.lat_ns, (size_t)j.n, 50) / 1e6);
	printf("per_vm_p99_ms=%.2f\n", (double)percentile(j.lat_ns, (size_t)j.n, 99) / 1e6);
	printf("double_rss_kb_avg=%.0f\n", counted ? (double)rss / (double)counted : -1.0);
	printf("double_anon_kb_avg=%.0f\n", counted ? (double)anon / (double)counted : -1.0);
	return j.failed ? 3 : 0;
}
