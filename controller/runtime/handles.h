/* handles.h — what is CURRENTLY TRUE about a VM: the momentary handles.
 *
 * A VM's durable identity (spec, uid, guest IP, VM dir, socket and log
 * paths) lives in its SQLite row. Everything that only means something
 * while the kernel objects exist — the VMM's pid and start time, the tap,
 * the loop devices and dm target of a dm-snapshot root disk — lives here:
 * in an in-memory cache owned by the daemon plus <vm-dir>/handles.json, and
 * never in SQLite. At start-up the cache is rebuilt from the scratch file
 * and the OS (runtime/vm.h: vm_rediscover()).
 *
 * handles.json is written atomically and WRITE-AHEAD: a handle is recorded
 * before the object it names is created, so a crash between the two leaves
 * at worst a record of something that does not exist (teardown treats that
 * as done), never an object nobody knows about. It is not fsync'd: every
 * object it names (process, tap, nft elements, loop, dm target) is gone after
 * an OS crash, and a bangerd crash finds the record in the page cache.
 * Files (disks, root.base) are made durable by storage/, the guest IP and
 * paths by the store. */
#pragma once

#include "util/hashmap.h"
#include "util/util.h"

#include <sys/types.h>

typedef struct {
	char *vmm; /* driver that launched the VMM ("qemu", "firecracker") */
	pid_t pid; /* 0: no process recorded */
	uint64_t pid_start_time;
	int64_t started_at_ms;
	/* The driver's launch of this pid finished (Firecracker: InstanceStart
	 * answered). Adoption then needs no question to the VMM; without it
	 * (a crash mid-launch, or a record from an older bangerd) the driver's
	 * launched() is asked. Cleared whenever a new pid is recorded. */
	bool launched;
	char *tap;
	/* The MAC and IP of the VM's elements in the instance's nft sets
	 * (net/nft.h: keyed by the tap): recorded before they are added, and
	 * what deletes them exactly. */
	char *nft_mac;
	char *nft_ip;
	/* root disk: path and format always; the rest only for dm-snapshot */
	char *root_disk;
	char *root_format;
	char *cow_file;
	char *base_image; /* the file base_loop must be backed by to be ours */
	char *base_loop;
	char *cow_loop;
	char *dm_name;
	char *dm_dev;
	/* canonical spec the VMM was launched with: a spec edit is compared
	 * with it to decide whether the running VM must restart */
	char *spec_json;
} VmHandles;

/* Every string field, for code that treats them alike (free, JSON, the
 * fuzz target's round-trip check): one list, so a new field is never
 * missed by one of them. */
/* clang-format off */
#define VM_HANDLE_STRINGS(X) \
	X(vmm) \
	X(tap) \
	X(nft_mac) \
	X(nft_ip) \
	X(root_disk) \
	X(root_format) \
	X(cow_file) \
	X(base_image) \
	X(base_loop) \
	X(cow_loop) \
	X(dm_name) \
	X(dm_dev) \
	X(spec_json)
/* clang-format on */

VmHandles *vm_handles_new(void);
void vm_handles_free(VmHandles *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(VmHandles *, vm_handles_free)
/* True when any kernel object or process is recorded. */
bool vm_handles_any(const VmHandles *h);

char *vm_handles_to_json(const VmHandles *h);
int vm_handles_from_json(const char *json, VmHandles **ret);
/* <vm_dir>/handles.json. read: -ENOENT when absent, -EINVAL when corrupt. */
int vm_handles_write(const char *vm_dir, const VmHandles *h);
int vm_handles_read(const char *vm_dir, VmHandles **ret);
int vm_handles_remove(const char *vm_dir);

/* The cache: VM name → VmHandles, owned by the cache. */
typedef struct HandleCache HandleCache;
HandleCache *handle_cache_new(void);
void handle_cache_free(HandleCache *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(HandleCache *, handle_cache_free)
VmHandles *handle_cache_get(HandleCache *c, const char *name);
/* Get, creating an empty entry when absent. */
VmHandles *handle_cache_ensure(HandleCache *c, const char *name);
/* Takes ownership of h (replacing and freeing any previous entry). */
void handle_cache_put(HandleCache *c, const char *name, VmHandles *h);
void handle_cache_drop(HandleCache *c, const char *name);
/* Iteration over names (sorted strv, caller frees). */
char **handle_cache_names(HandleCache *c);
/* How many VMs have momentary state. */
size_t handle_cache_size(HandleCache *c);
