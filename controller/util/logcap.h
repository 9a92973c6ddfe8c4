/* logcap.h — keeping log files under a byte cap, tail kept.
 *
 * Two shapes, because there are two kinds of writer:
 *  - A file bangerd writes itself (the QEMU console): LogSegment rotates
 *    <path> to <path>.1 whenever <path> would pass cap/2, so the pair never
 *    holds more than cap bytes, always holds the newest cap/2 or more, and
 *    a reader following <path> sees a new inode instead of a shrinking file.
 *  - A file a VMM appends to through its own O_APPEND fd (vmm.log, the
 *    Firecracker console): a rename would not move the writer, so
 *    log_trim_tail() copies the last cap/2 bytes to the front in place and
 *    truncates. Bytes the writer appends between the final size check and
 *    the ftruncate (microseconds) are lost; everything else is kept. */
#pragma once

#include "util.h"

#include <sys/types.h>

/* Smallest cap accepted (bytes): smaller caps would rotate on every line. */
#define LOG_CAP_MIN 4096ULL

/* In place: when the regular file at path is larger than cap, keep its last
 * cap/2 bytes (plus whatever the writer appended meanwhile). Returns 1 when
 * trimmed, 0 when it was within the cap (or absent), -errno on failure.
 * Never follows a symlink. */
int log_trim_tail(const char *path, uint64_t cap);

typedef struct {
	char *path; /* owned */
	uint64_t cap;
	int fd; /* O_APPEND; -1 until the first write */
	uint64_t size;
} LogSegment;

/* Initialise (path is copied). Nothing is opened yet. */
void log_segment_init(LogSegment *s, const char *path, uint64_t cap);
/* Append; rotates to <path>.1 before the file would pass cap/2. Reopens the
 * file after log_segment_reset(). -errno on failure (data dropped). */
int log_segment_append(LogSegment *s, const void *data, size_t len);
/* Forget the open fd and size (the file may have been truncated or
 * replaced by someone else): the next append reopens it. */
void log_segment_reset(LogSegment *s);
void log_segment_done(LogSegment *s);
