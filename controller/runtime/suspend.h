/* suspend.h — a VM's saved state (spec.state Suspended) in its VM dir.
 *
 * Layout: <vm_dir>/suspend/ holds the VMM's files (QEMU: qemu.state), all
 * root-only (0600 in a 0700 dir; the VMM gets fds, never the paths).
 * <vm_dir>/suspend.json is the commit record, written atomically last:
 * { savedAtMs, vmm, vmmVersion, binary {path,size,mtimeNs,ino}, spec (the
 * canonical spec the guest was booted with), files [{name,size,sha256}] }
 * (sha256 null for a file over 64 MiB: only its size is checked).
 * No record, no saved state: a save that died half-way (a VMM crash, a
 * kill -9, a controller crash) leaves only suspend.tmp/, which is never
 * resumed. A saved state is used at most once: it is removed as soon as the
 * guest runs again, or discarded (then cold boot) when it does not fit.
 *
 * The rules about what to do with a saved state are in reconcile/decide.h;
 * this module only saves, inspects, verifies and removes. */
#pragma once

#include "runtime/vm.h"

typedef struct {
	bool saved;      /* a committed record exists */
	bool intact;     /* ...it parses, and every file exists with its size */
	bool boot_equal; /* ...saved from a boot with today's boot-relevant spec */
	bool vmm_equal;  /* ...by the VMM kind and binary a launch would use now */
	char *problem;   /* why it cannot be resumed, for status and log (NULL: it can) */
	int64_t saved_at_ms;
	uint64_t size; /* bytes of all files */
	char *vmm_version;
} SavedState;

void saved_state_done(SavedState *s);

/* Read the record of the VM with uid and judge it against spec (the spec a
 * resume would run). Cheap: a small JSON file and a few stat()s. */
int vm_saved_inspect(Runtime *rt, const char *uid, const VmSpec *spec, SavedState *ret);

/* Save the running VM's state and end its VMM. Bounded by timeout_ms for
 * the save itself. On failure the guest keeps running (or runs again) and
 * *ret_error says why; nothing half-saved is left as a record. On success
 * *ret (when non-NULL) describes the saved state. */
int vm_suspend(Runtime *rt, const char *name, const char *uid, const char *api_sock,
	       unsigned timeout_ms, SavedState *ret, char **ret_error);

/* Start-up, for a VM whose VMM still runs (adopted): finish a save the last
 * controller died in. A committed record → end the VMM (the state is safe:
 * the guest has been paused since it was saved), returns 1. An uncommitted
 * save (suspend.tmp/) → continue the guest and remove it, returns 0. */
int vm_saved_recover(Runtime *rt, const char *name, const char *uid, const char *api_sock);

/* Check every saved file against its SHA-256 before a resume. */
int vm_saved_verify(Runtime *rt, const char *uid, char **ret_error);

/* Consume the record before a resume (rename to suspend.json.used,
 * durable): from then on the state can never be resumed again. */
int vm_saved_consume(Runtime *rt, const char *uid, char **ret_error);

/* Remove the saved state (record first, then the files). Idempotent. */
int vm_saved_discard(Runtime *rt, const char *uid);

/* <vm_dir>/suspend: what VmmLaunchConfig.incoming_dir names. Caller frees. */
char *vm_saved_dir(Runtime *rt, const char *uid);
