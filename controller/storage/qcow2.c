/* qcow2.c — see qcow2.h. All multi-byte fields are big-endian. */
#include "storage/qcow2.h"
#include "util/util.h"

#include <endian.h>
#include <unistd.h>

#define QCOW2_MAGIC        0x514649fbU /* "QFI\xfb" */
#define QCOW2_VERSION      3
#define CLUSTER_BITS       16
#define CLUSTER_SIZE       (1ULL << CLUSTER_BITS)
#define HEADER_LENGTH      104 /* the version 3 header without optional fields */
#define REFCOUNT_ORDER     4   /* 16-bit refcounts, as qemu-img writes */
#define EXT_BACKING_FORMAT 0xe2792acaU
#define EXT_END            0
/* One L1 entry maps an L2 table of CLUSTER_SIZE / 8 entries, each a cluster. */
#define BYTES_PER_L1_ENTRY (CLUSTER_SIZE * (CLUSTER_SIZE / 8))

static void put32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, 8);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return be32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return be64toh(v);
}

static int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Cluster 0: the header, its extensions, then the backing file name. */
static size_t build_header(uint8_t *h, const char *backing, const char *fmt, uint64_t size,
			   uint32_t l1_size, uint64_t l1_offset)
{
	size_t fmt_len = strlen(fmt), blen = strlen(backing);
	size_t off = HEADER_LENGTH;
	put32(h + off, EXT_BACKING_FORMAT);
	put32(h + off + 4, (uint32_t)fmt_len);
	memcpy(h + off + 8, fmt, fmt_len);
	off += 8 + ((fmt_len + 7) & ~(size_t)7);
	put32(h + off, EXT_END);
	put32(h + off + 4, 0);
	off += 8;
	memcpy(h + off, backing, blen);

	put32(h + 0, QCOW2_MAGIC);
	put32(h + 4, QCOW2_VERSION);
	put64(h + 8, off);             /* backing_file_offset */
	put32(h + 16, (uint32_t)blen); /* backing_file_size */
	put32(h + 20, CLUSTER_BITS);
	put64(h + 24, size);
	put32(h + 32, 0); /* crypt_method: none */
	put32(h + 36, l1_size);
	put64(h + 40, l1_offset);
	put64(h + 48, 1 * CLUSTER_SIZE); /* refcount table: cluster 1 */
	put32(h + 56, 1);                /* ...one cluster long */
	put32(h + 60, 0);                /* no snapshots */
	put64(h + 64, 0);
	/* incompatible, compatible, autoclear features: none (72..95) */
	put32(h + 96, REFCOUNT_ORDER);
	put32(h + 100, HEADER_LENGTH);
	return off + blen;
}

int qcow2_write_overlay(int fd, const char *backing, const char *backing_fmt, uint64_t size)
{
	if (!backing || backing[0] != '/' || !backing_fmt || !backing_fmt[0] ||
	    strlen(backing_fmt) > 8)
		return -EINVAL;
	if (strlen(backing) > QCOW2_BACKING_NAME_MAX)
		return -ENAMETOOLONG;
	size = (size + 511) & ~511ULL;
	uint64_t l1_size = (size + BYTES_PER_L1_ENTRY - 1) / BYTES_PER_L1_ENTRY;
	uint64_t l1_clusters = (l1_size * 8 + CLUSTER_SIZE - 1) / CLUSTER_SIZE;
	if (l1_clusters == 0)
		l1_clusters = 1;
	uint64_t n_clusters = 3 + l1_clusters;
	/* One refcount block (CLUSTER_SIZE / 2 16-bit entries) covers 32,768
	 * clusters: an L1 table that long maps 128 TiB. */
	if (l1_size > UINT32_MAX || n_clusters > CLUSTER_SIZE / 2)
		return -EINVAL;

	_cleanup_free_ uint8_t *buf = xcalloc(1, CLUSTER_SIZE);
	size_t hlen =
		build_header(buf, backing, backing_fmt, size, (uint32_t)l1_size, 3 * CLUSTER_SIZE);
	int r = pwrite_all(fd, buf, hlen, 0);
	if (r < 0)
		return r;
	uint8_t rt[8];
	put64(rt, 2 * CLUSTER_SIZE); /* refcount table[0] → the block in cluster 2 */
	if ((r = pwrite_all(fd, rt, sizeof(rt), 1 * CLUSTER_SIZE)) < 0)
		return r;
	memset(buf, 0, CLUSTER_SIZE);
	for (uint64_t i = 0; i < n_clusters; i++) {
		buf[2 * i] = 0; /* big-endian 16-bit refcount 1 for each cluster */
		buf[2 * i + 1] = 1;
	}
	if ((r = pwrite_all(fd, buf, n_clusters * 2, 2 * CLUSTER_SIZE)) < 0)
		return r;
	/* The L1 table is all zeros (nothing allocated): a hole is enough. */
	if (ftruncate(fd, (off_t)(n_clusters * CLUSTER_SIZE)) < 0)
		return -errno;
	return 0;
}

int qcow2_read_info(int fd, Qcow2Info *ret)
{
	uint8_t h[HEADER_LENGTH + 256];
	ssize_t n = pread(fd, h, sizeof(h), 0);
	if (n < 0)
		return -errno;
	if (n < 72 || get32(h) != QCOW2_MAGIC)
		return -EBADMSG;
	Qcow2Info info = { .version = get32(h + 4),
			   .cluster_bits = get32(h + 20),
			   .size = get64(h + 24) };
	if (info.version < 2 || info.version > 3 || info.cluster_bits < 9 || info.cluster_bits > 21)
		return -EBADMSG;
	uint64_t boff = get64(h + 8);
	uint32_t blen = get32(h + 16);
	if (blen > QCOW2_BACKING_NAME_MAX || (boff && boff + blen > (1ULL << info.cluster_bits)))
		return -EBADMSG;
	if (boff && blen) {
		ssize_t got = pread(fd, info.backing, blen, (off_t)boff);
		if (got != (ssize_t)blen)
			return got < 0 ? -errno : -EBADMSG;
		info.backing[blen] = '\0';
	}
	/* Header extensions (version 3: after header_length). */
	size_t off = info.version == 3 ? get32(h + 100) : 72;
	while (off + 8 <= (size_t)n) {
		uint32_t type = get32(h + off), len = get32(h + off + 4);
		if (type == EXT_END)
			break;
		if (off + 8 + len > (size_t)n)
			break;
		if (type == EXT_BACKING_FORMAT && len < sizeof(info.backing_fmt)) {
			memcpy(info.backing_fmt, h + off + 8, len);
			info.backing_fmt[len] = '\0';
		}
		off += 8 + ((len + 7) & ~7U);
	}
	*ret = info;
	return 0;
}
