/* dm.h — device-mapper snapshot targets through libdevmapper.
 *
 * A dm-snapshot root disk is "<base loop> <cow loop> P 8": reads fall
 * through to the read-only base, writes land in the persistent exception
 * store on the per-VM cow file, in 4 KiB chunks. Names are
 * "banger-<first 8 hex of the VM uid>", so a controller restarting after a
 * crash can find its targets with dm_list("banger-") without any record.
 *
 * libdevmapper's own logging is routed to our debug log (it is chatty and
 * prints errors for expected cases like removing a device that is gone).
 * Every entry point that needs the kernel returns -EOPNOTSUPP quickly when
 * device-mapper is missing (no /dev/mapper/control and no "device-mapper"
 * in /proc/misc), without asking libdevmapper to create nodes. */
#pragma once

#include "util/util.h"

#define DM_NAME_PREFIX "banger-"

/* Pure: the target parameters "<base_dev> <cow_dev> P 8". Both must be
 * absolute device paths without whitespace and size_sectors > 0: -EINVAL. */
int dm_snapshot_table(const char *base_dev, const char *cow_dev, uint64_t size_sectors,
		      char **ret_params);

/* Pure: "banger-" + the first 8 hex digits of vm_uid (dashes skipped,
 * lower-cased); NULL when vm_uid has fewer than 8 hex digits before any other
 * character. Caller frees. */
char *dm_name_for(const char *vm_uid);

/* Pure: a name libdevmapper and /dev/mapper accept (1..127 chars, no '/',
 * not "." or "..", printable, no whitespace). */
bool dm_name_valid(const char *name);

/* Pure: "/dev/mapper/<name>". Caller frees. */
char *dm_dev_path(const char *name);

/* Quick, quiet probe: the driver answers DM_DEVICE_VERSION. */
bool dm_available(void);

/* Instance ownership: a target's dm UUID is
 * DM_UUID_PREFIX "<instance>-" "<target name>" (dm_uuid_for), set atomically
 * with its creation, so an orphan sweep takes only targets whose UUID starts
 * with dm_uuid_owner_prefix(instance): another bangerd's targets (same
 * "banger-" names) and untagged ones are never removed by a sweep. */
#define DM_UUID_PREFIX "BANGER-"
/* Pure: "BANGER-<instance>-<name>"; NULL when instance is not 1..32 hex or
 * name is not dm_name_valid. Caller frees. */
char *dm_uuid_for(const char *instance, const char *name);
/* Pure: "BANGER-<instance>-". Caller frees. */
char *dm_uuid_owner_prefix(const char *instance);

/* Create (and activate) a snapshot target with dm UUID uuid (NULL: none);
 * *ret_dev = "/dev/mapper/<name>". -EEXIST when a target of that name
 * already exists; -EOPNOTSUPP without device-mapper; other -errno from the
 * kernel. */
int dm_snapshot_create(const char *name, const char *uuid, const char *base_dev,
		       const char *cow_dev, uint64_t size_sectors, char **ret_dev);
/* The dm UUID of target name (*ret = NULL when it has none). -ENODEV when
 * there is no such target; -EOPNOTSUPP without device-mapper. */
int dm_uuid_of(const char *name, char **ret);

/* Remove a target, retrying while it is busy (10 x 50 ms: a VMM that just
 * exited may still hold it for a moment). 0 when removed or already gone;
 * -EBUSY when still busy; -EOPNOTSUPP without device-mapper. */
int dm_remove(const char *name);

/* Names of all targets starting with prefix (strv, sorted). -EOPNOTSUPP
 * without device-mapper. */
int dm_list(const char *prefix, char ***ret_names);
