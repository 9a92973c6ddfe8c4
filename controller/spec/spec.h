/* spec.h — banger/v1 VM specs: the validated, immutable in-memory form.
 *
 * Flow: bytes (YAML or JSON, one or more documents) → spec_parse_buffer()
 * → SpecFile with one SpecDoc per document; each valid document carries a
 * VmSpec with every default filled in. Invalid documents carry no VmSpec but
 * keep the name when one could be read, so status can say which VM is
 * affected. Validation is static: it never looks at the host.
 *
 * Ownership: SpecFile owns its docs, each doc owns its VmSpec; free with
 * spec_file_free(). A VmSpec can be detached with TAKE_PTR(doc->spec) and
 * freed with vm_spec_free(). */
#pragma once

#include "spec/diag.h"
#include "util/util.h"

#define SPEC_API_VERSION    "banger/v1"
#define SPEC_KIND           "VM"
#define SPEC_MAX_FILE_BYTES (1024 * 1024)
#define SPEC_MAX_DEPTH      32
#define SPEC_MAX_DOCS       1024
#define SPEC_MAX_NODES      100000
#define SPEC_MAX_LABELS     64
#define SPEC_MAX_STRING     4096
#define SPEC_NAME_MAX       63
#define SPEC_MAX_DIAGS      200 /* per file; more are summarised in one line */

/* Ranges and defaults of the numeric fields (docs/spec.md). */
#define SPEC_VCPUS_MIN          1
#define SPEC_VCPUS_MAX          32
#define SPEC_VCPUS_DEFAULT      1
#define SPEC_MEMORY_MIB_MIN     128
#define SPEC_MEMORY_MIB_MAX     262144
#define SPEC_MEMORY_MIB_DEFAULT 256
#define SPEC_WORK_DISK_MIB_MIN  8
#define SPEC_WORK_DISK_MIB_MAX  1048576
#define SPEC_TIMEOUT_S_MIN      1
#define SPEC_TIMEOUT_S_MAX      3600
#define SPEC_TIMEOUT_S_DEFAULT  120
#define SPEC_KERNEL_ARGS_MAX    1024
#define SPEC_LABEL_MAX          63 /* label key and value length */
#define SPEC_NODE_MAX           253

typedef enum {
	VM_STATE_RUNNING,
	VM_STATE_STOPPED,
	VM_STATE_SUSPENDED, /* memory and device state saved in the VM dir, VMM ended */
	_VM_STATE_MAX,
} VmDesiredState;

typedef enum {
	VMM_KIND_DEFAULT, /* not set in the spec: the controller's --driver decides */
	VMM_KIND_FIRECRACKER,
	VMM_KIND_QEMU,
	_VMM_KIND_MAX,
} VmmKind;

typedef enum {
	RESTART_ALWAYS,
	RESTART_ON_FAILURE,
	RESTART_NEVER,
	_RESTART_MAX,
} RestartPolicy;

typedef struct {
	char *key, *value;
} SpecLabel;

typedef struct VmSpec {
	char *name;
	SpecLabel *labels; /* sorted by key, unique */
	size_t n_labels;
	VmDesiredState state;
	char *node; /* NULL: any controller */
	VmmKind vmm;
	unsigned vcpus;
	unsigned memory_mib;
	char *kernel_path;
	char *kernel_args; /* NULL when not set */
	char *initrd_path; /* NULL when not set */
	char *rootfs_path;
	uint64_t work_disk_mib; /* 0: no work disk */
	bool network_enabled;
	char *guest_ip;              /* dotted quad or NULL: allocate */
	char *mac;                   /* lower-case aa:bb:.. or NULL: derive */
	unsigned readiness_tcp_port; /* 0: no probe */
	unsigned readiness_timeout_s;
	RestartPolicy restart_policy;
} VmSpec;

typedef struct {
	unsigned line;                /* line where the document starts */
	char *name;                   /* metadata.name as written, if it was a string; else NULL */
	bool name_valid;              /* name is a DNS-1123 label (safe to use in a path) */
	VmSpec *spec;                 /* NULL when this document is invalid */
	unsigned name_line, name_col; /* position of the name's value (0 if none) */
} SpecDoc;

typedef struct {
	char *path;
	/* true when the file as a whole could not be read (I/O, size, encoding,
	 * YAML syntax, limits): docs may be incomplete, so a caller must not
	 * conclude that a VM missing from docs was removed from the file. */
	bool unreadable;
	SpecDoc *docs;
	size_t n_docs;
	Diags diags; /* every problem, in file order */
} SpecFile;

/* Parse and validate data (len bytes) read from `path` (used in
 * diagnostics only). Never fails for bad input: problems land in
 * (*ret)->diags. Returns -errno only for programming errors. */
int spec_parse_buffer(const char *path, const char *data, size_t len, SpecFile **ret);

/* Read (bounded by SPEC_MAX_FILE_BYTES) and parse a file. I/O errors become
 * diagnostics with unreadable = true. */
int spec_parse_file(const char *path, SpecFile **ret);

void spec_file_free(SpecFile *f);
void vm_spec_free(VmSpec *s);
VmSpec *vm_spec_dup(const VmSpec *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(SpecFile *, spec_file_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(VmSpec *, vm_spec_free)

/* Canonical JSON: keys sorted, defaults explicit, no whitespace. Two specs
 * with the same meaning (comments, key order, explicit defaults aside) give
 * the same bytes. Caller frees. */
char *vm_spec_to_canonical_json(const VmSpec *s);
/* Parse canonical JSON back (as stored in SQLite). It goes through the same
 * validator as a spec file, so exactly one valid document with no problem
 * is required. -EINVAL on bad input; *ret untouched then. */
int vm_spec_from_json(const char *json, VmSpec **ret);
/* sha256 hex of the canonical JSON. */
void vm_spec_hash(const VmSpec *s, char out[65]);

/* Boot-relevant equality: everything but labels, state, node, readiness and
 * restartPolicy. When it differs a running VM must be restarted. Writes a
 * human summary of the first few differences ("memoryMiB 256→512") to
 * ret_why when non-NULL (caller frees; set to NULL when equal). */
bool vm_spec_boot_equal(const VmSpec *a, const VmSpec *b, char **ret_why);

/* The file-name filter shared by the watcher and `banger validate` for
 * directory walks: true only for *.yaml, *.yml and *.json, and false when
 * any path component starts with '.' (dotfiles, .git/, editor ".#x"), for
 * editor and temp files (*~, *.swp, *.swx, *.tmp, #x#) and for our own
 * *.status.json. "." and ".." components are ignored, so pass paths
 * relative to the watched root (an absolute path's parent directories
 * count too). */
bool spec_path_is_candidate(const char *path);

/* Enum names as written in specs. vmm_kind_to_string(VMM_KIND_DEFAULT) is
 * "default" (for logs); vmm_kind_from_string() accepts only the drivers. */
const char *vm_desired_state_to_string(VmDesiredState s);
int vm_desired_state_from_string(const char *s);
const char *vmm_kind_to_string(VmmKind k);
int vmm_kind_from_string(const char *s);
const char *restart_policy_to_string(RestartPolicy p);
int restart_policy_from_string(const char *s);
