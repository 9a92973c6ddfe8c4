/* qcow2.h — an empty qcow2 (version 3) overlay over a raw backing file,
 * written directly instead of forking `qemu-img create`.
 *
 * Why: a first boot's root disk was 70 % of the controller's own spec write
 * → VMM exec latency, almost all of it fork + exec of qemu-img
 * (docs/benchmarks.md). The file is the one qemu-img writes for
 * `create -f qcow2 -b BASE -F raw` with 64 KiB clusters: header (+ backing
 * format extension + backing file name) in cluster 0, the refcount table in
 * cluster 1, one refcount block in cluster 2, the L1 table from cluster 3;
 * no data clusters. Format: QEMU's docs/interop/qcow2.txt. t_storage.sh
 * runs `qemu-img check` and qemu-io against what this writes. */
#pragma once

#include <stdint.h>

#define QCOW2_BACKING_NAME_MAX 1023 /* the format's own limit */

/* Write the overlay to fd (an empty regular file opened for writing), with
 * backing file `backing` (absolute path) of format `backing_fmt` ("raw")
 * and virtual size `size` bytes (rounded up to 512). Does not fsync.
 * -ENAMETOOLONG, -EINVAL on bad arguments; -errno on write errors. */
int qcow2_write_overlay(int fd, const char *backing, const char *backing_fmt, uint64_t size);

/* The exact header fields a reader needs, parsed back (for tests and for
 * checking a disk's backing file without forking qemu-img). */
typedef struct {
	uint32_t version;
	uint32_t cluster_bits;
	uint64_t size;
	char backing[QCOW2_BACKING_NAME_MAX + 1];
	char backing_fmt[16];
} Qcow2Info;

/* Parse the header of a qcow2 image read from fd: -EBADMSG when it is not
 * one (or not one this parser understands). */
int qcow2_read_info(int fd, Qcow2Info *ret);
