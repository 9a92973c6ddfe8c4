/* cgroup.h — one cgroup per VM, with a memory and a pids limit. This file
 * (cgroup.c) is the only place that makes, fills, empties or removes one.
 *
 * Where: cgroup v2 when its root lists both the memory and pids
 * controllers; else the v1 memory and pids hierarchies (a v1/v2 hybrid, as
 * on Debian with systemd.unified_cgroup_hierarchy=0, leaves the v2 tree
 * without controllers). Found in /proc/self/mountinfo.
 *
 * Names: <mount>/banger-<instance>/<vm uid> in every hierarchy used —
 * derived from the controller's instance tag (store_instance_id()) and the
 * VM's uid alone (cgroup_vm_rel()), so teardown and the orphan sweep find a
 * VM's cgroup without any record, a crash right after mkdir leaks nothing
 * the next start-up cannot name, and the sweep of one bangerd never enters
 * another instance's parent.
 *
 * A VMM joins its cgroup in the forked child before exec (util/proc.h
 * SpawnOptions.cgroup_procs): it never runs outside it. */
#pragma once

#include "util/util.h"

typedef struct CgroupHost CgroupHost;

/* Find the hierarchies. -EOPNOTSUPP (logged) when neither a v2 root with
 * memory+pids nor v1 memory and pids hierarchies are mounted. */
int cgroup_host_open(const char *instance, CgroupHost **ret);
void cgroup_host_free(CgroupHost *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(CgroupHost *, cgroup_host_free)
/* "v2" or "v1", for logs. */
const char *cgroup_host_mode(const CgroupHost *h);

/* The VM's cgroup below each hierarchy's mount point:
 * "banger-<instance>/<vm_uid>". The one function that names it. Caller
 * frees. */
char *cgroup_vm_rel(const CgroupHost *h, const char *vm_uid);

typedef struct {
	uint64_t memory_bytes;
	uint64_t pids_max;
} CgroupLimits;

/* Create (or reuse) the VM's cgroup in every hierarchy and write its limits.
 * *ret_procs: the cgroup.procs files the VMM must join (NULL-terminated,
 * caller frees). Idempotent. */
int cgroup_vm_create(CgroupHost *h, const char *vm_uid, const CgroupLimits *l, char ***ret_procs);

/* Remove the VM's cgroup everywhere. Anything still inside is SIGKILLed
 * first (verified as a member through a pidfd): only the VM's own VMM is
 * ever put there. Waits up to 500 ms per hierarchy for exiting members to
 * leave; -EBUSY when some remain. Absent: 0. h NULL: 0. */
int cgroup_vm_remove(CgroupHost *h, const char *vm_uid);

/* The cgroup (absolute path of the first hierarchy) for tests and logs.
 * Caller frees. */
char *cgroup_vm_path(const CgroupHost *h, const char *vm_uid);

/* Remove every VM cgroup whose uid known() rejects: SIGKILL what is left
 * inside (only bangerd puts processes there: they are VMMs no VM owns),
 * then rmdir. Returns the number removed. */
int cgroup_sweep(CgroupHost *h, bool (*known)(const char *vm_uid, void *userdata), void *userdata);
