/* logcap.c — see logcap.h. */
#include "util/logcap.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#define COPY_CHUNK (64 * 1024)
/* A writer that keeps appending while we copy is chased this many times. */
#define TRIM_CHASE_MAX 4

/* Copy [from, to) of fd to offset dst (dst < from: a forward copy is safe). */
static int copy_range(int fd, off_t from, off_t to, off_t dst)
{
	_cleanup_free_ char *buf = xmalloc(COPY_CHUNK);
	while (from < to) {
		size_t want = (size_t)MIN((off_t)COPY_CHUNK, to - from);
		ssize_t n = pread(fd, buf, want, from);
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		for (ssize_t done = 0; done < n;) {
			ssize_t w = pwrite(fd, buf + done, (size_t)(n - done), dst + done);
			if (w < 0)
				return -errno;
			done += w;
		}
		from += n;
		dst += n;
	}
	return 0;
}

int log_trim_tail(const char *path, uint64_t cap)
{
	struct stat st;
	_cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size <= cap)
		return 0;
	off_t keep = (off_t)(cap / 2), from = st.st_size - keep, end = st.st_size;
	int r = copy_range(fd, from, end, 0);
	off_t dst = keep;
	/* Chase what the writer appended while we copied. */
	for (int i = 0; r >= 0 && i < TRIM_CHASE_MAX; i++) {
		if (fstat(fd, &st) < 0)
			return -errno;
		if (st.st_size <= end)
			break;
		off_t more = st.st_size - end;
		if (dst + more > (off_t)cap) /* a flood: keep the newest part only */
			break;
		r = copy_range(fd, end, st.st_size, dst);
		dst += more;
		end = st.st_size;
	}
	if (r < 0)
		return r;
	if (ftruncate(fd, dst) < 0)
		return -errno;
	return 1;
}

void log_segment_init(LogSegment *s, const char *path, uint64_t cap)
{
	*s = (LogSegment){ .path = xstrdup(path), .cap = MAX(cap, LOG_CAP_MIN), .fd = -1 };
}

void log_segment_reset(LogSegment *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->size = 0;
}

void log_segment_done(LogSegment *s)
{
	log_segment_reset(s);
	free(s->path);
	s->path = NULL;
}

static int segment_open(LogSegment *s)
{
	struct stat st;
	int fd = open(s->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		int e = S_ISREG(st.st_mode) ? -errno : -EINVAL;
		close(fd);
		return e;
	}
	s->fd = fd;
	s->size = (uint64_t)st.st_size;
	return 0;
}

static int segment_rotate(LogSegment *s)
{
	_cleanup_free_ char *older = xasprintf("%s.1", s->path);
	log_segment_reset(s);
	if (rename(s->path, older) < 0 && errno != ENOENT)
		return -errno;
	return segment_open(s);
}

int log_segment_append(LogSegment *s, const void *data, size_t len)
{
	const char *p = data;
	uint64_t half = s->cap / 2;
	int r;
	if (s->fd < 0 && (r = segment_open(s)) < 0)
		return r;
	while (len > 0) {
		if (s->size >= half && (r = segment_rotate(s)) < 0)
			return r;
		size_t k = (size_t)MIN((uint64_t)len, half - s->size);
		ssize_t w = write(s->fd, p, k);
		if (w < 0)
			return -errno;
		s->size += (uint64_t)w;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}
