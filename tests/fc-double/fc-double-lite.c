/* fc-double-lite — a TEST DOUBLE of the `firecracker` binary (API mode), in C.
 *
 * It is NOT Firecracker: it boots nothing. It exists beside the Python
 * firecracker-double for one reason, memory: the scale benchmarks run 1,000
 * doubles at once, and the Python one holds ~14 MiB of anonymous memory per
 * process. This one serves the same spec'd subset of the Firecracker API
 * (firecracker-api.yaml, Swagger 2.0, in /work/shared/reference) that
 * bangerd's driver uses, on a unix socket, single-threaded with poll(2).
 *
 * What it checks and what it does not is in README.md next to this file; in
 * short: the route table (every path + method the spec defines, with the
 * spec's "Pre-boot only" marks) is compiled in from the spec, bodies are
 * checked against hand-written field tables of the definitions the
 * implemented operations take (required fields, JSON types, enums, integer
 * bounds, unknown fields refused), not against the Swagger file at run time.
 *
 * Usage: fc-double-lite --api-sock PATH [--id ID] [--start-time-us N]
 *                       [--start-time-cpu-us N] [--parent-cpu-time-us N]
 * Environment: FC_DOUBLE_REQUEST_LOG, FC_DOUBLE_REJECT, FC_DOUBLE_STOP_DELAY_MS,
 * FC_DOUBLE_OPEN_TAPS, as for firecracker-double. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* info.version of the firecracker-api.yaml the route table was taken from. */
#define API_VERSION "1.17.0-dev"
#define MAX_CONNS   32
#define MAX_HEADER  8192
#define MAX_BODY    65536
#define MAX_TAPS    8

/* ---- the schema subset ---------------------------------------------------- */

typedef enum { F_STR, F_BOOL, F_INT, F_OBJ, F_ARR } FieldType;

typedef struct Schema Schema;
typedef struct {
	const char *name;
	FieldType type;
	bool required;
	const char *const *enums; /* NULL-terminated; strings only */
	bool bounded;
	long long min, max;
	const Schema *sub; /* an object field checked against its definition */
} Field;
struct Schema {
	const char *name;
	const Field *fields;
};

static const char *const cache_types[] = { "Unsafe", "Writeback", NULL };
static const char *const io_engines[] = { "Sync", "Async", NULL };
static const char *const huge_pages[] = { "None", "Transparent", "2M", NULL };
static const char *const actions[] = { "FlushMetrics", "InstanceStart", "SendCtrlAltDel", NULL };
static const char *const log_levels[] = { "Error", "Warning", "Info", "Debug", "Trace", NULL };
static const char *const vm_states[] = { "Paused", "Resumed", NULL };
static const char *const snap_types[] = { "Full", "Diff", NULL };
static const char *const mem_backends[] = { "File", "Uffd", NULL };

static const Schema s_boot_source = {
	"BootSource",
	(const Field[]){ { .name = "kernel_image_path", .type = F_STR, .required = true },
			 { .name = "boot_args", .type = F_STR },
			 { .name = "initrd_path", .type = F_STR },
			 { .name = NULL } }
};
static const Schema s_drive = {
	"Drive", (const Field[]){ { .name = "drive_id", .type = F_STR, .required = true },
				  { .name = "is_root_device", .type = F_BOOL, .required = true },
				  { .name = "partuuid", .type = F_STR },
				  { .name = "cache_type", .type = F_STR, .enums = cache_types },
				  { .name = "is_read_only", .type = F_BOOL },
				  { .name = "path_on_host", .type = F_STR },
				  { .name = "rate_limiter", .type = F_OBJ },
				  { .name = "io_engine", .type = F_STR, .enums = io_engines },
				  { .name = "socket", .type = F_STR },
				  { .name = NULL } }
};
static const Schema s_machine = {
	"MachineConfiguration",
	(const Field[]){ { .name = "vcpu_count",
			   .type = F_INT,
			   .required = true,
			   .bounded = true,
			   .min = 1,
			   .max = 32 },
			 { .name = "mem_size_mib", .type = F_INT, .required = true },
			 { .name = "smt", .type = F_BOOL },
			 { .name = "track_dirty_pages", .type = F_BOOL },
			 { .name = "cpu_template", .type = F_STR },
			 { .name = "huge_pages", .type = F_STR, .enums = huge_pages },
			 { .name = NULL } }
};
static const Schema s_iface = {
	"NetworkInterface",
	(const Field[]){ { .name = "iface_id", .type = F_STR, .required = true },
			 { .name = "host_dev_name", .type = F_STR, .required = true },
			 { .name = "guest_mac", .type = F_STR },
			 { .name = "mtu", .type = F_INT, .bounded = true, .min = 68, .max = 65535 },
			 { .name = "rx_rate_limiter", .type = F_OBJ },
			 { .name = "tx_rate_limiter", .type = F_OBJ },
			 { .name = NULL } }
};
static const Schema s_action = { "InstanceActionInfo", (const Field[]){ { .name = "action_type",
									  .type = F_STR,
									  .required = true,
									  .enums = actions },
									{ .name = NULL } } };
static const Schema s_logger = {
	"Logger", (const Field[]){ { .name = "level", .type = F_STR, .enums = log_levels },
				   { .name = "log_path", .type = F_STR },
				   { .name = "show_level", .type = F_BOOL },
				   { .name = "show_log_origin", .type = F_BOOL },
				   { .name = "module", .type = F_STR },
				   { .name = NULL } }
};
static const Schema s_vm = {
	"Vm",
	(const Field[]){ { .name = "state", .type = F_STR, .required = true, .enums = vm_states },
			 { .name = NULL } }
};
static const Schema s_snap_create = {
	"SnapshotCreateParams",
	(const Field[]){ { .name = "mem_file_path", .type = F_STR, .required = true },
			 { .name = "snapshot_path", .type = F_STR, .required = true },
			 { .name = "snapshot_type", .type = F_STR, .enums = snap_types },
			 { .name = NULL } }
};
static const Schema s_mem_backend = {
	"MemoryBackend",
	(const Field[]){
		{ .name = "backend_type", .type = F_STR, .required = true, .enums = mem_backends },
		{ .name = "backend_path", .type = F_STR, .required = true },
		{ .name = NULL } }
};
static const Schema s_snap_load = {
	"SnapshotLoadParams",
	(const Field[]){ { .name = "snapshot_path", .type = F_STR, .required = true },
			 { .name = "mem_file_path", .type = F_STR },
			 { .name = "mem_backend", .type = F_OBJ, .sub = &s_mem_backend },
			 { .name = "enable_diff_snapshots", .type = F_BOOL },
			 { .name = "track_dirty_pages", .type = F_BOOL },
			 { .name = "resume_vm", .type = F_BOOL },
			 { .name = "network_overrides", .type = F_ARR },
			 { .name = "vsock_override", .type = F_OBJ },
			 { .name = "clock_realtime", .type = F_BOOL },
			 { .name = NULL } }
};

/* ---- faults --------------------------------------------------------------- */

typedef struct {
	char msg[512];
} Fault;

static int fault(Fault *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fault(Fault *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
	va_end(ap);
	return -1;
}

static const char *type_name(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return "null";
	case json_type_boolean: return "boolean";
	case json_type_int: return "integer";
	case json_type_double: return "number";
	case json_type_string: return "string";
	case json_type_array: return "array";
	default: return "object";
	}
}

static bool type_ok(json_object *v, FieldType t)
{
	static const json_type want[] = { [F_STR] = json_type_string,
					  [F_BOOL] = json_type_boolean,
					  [F_INT] = json_type_int,
					  [F_OBJ] = json_type_object,
					  [F_ARR] = json_type_array };
	return json_object_is_type(v, want[t]);
}

static const char *const field_type_names[] = { "string", "boolean", "integer", "object", "array" };

static int validate(json_object *body, const Schema *s, const char *where, Fault *f);

static int validate_field(json_object *v, const Field *fd, const char *where, Fault *f)
{
	if (!type_ok(v, fd->type))
		return fault(f, "%s.%s: expected %s, got %s", where, fd->name,
			     field_type_names[fd->type], type_name(v));
	if (fd->enums) {
		const char *s = json_object_get_string(v);
		const char *const *e = fd->enums;
		while (*e && strcmp(*e, s))
			e++;
		if (!*e)
			return fault(f, "%s.%s: '%s' is not one of the allowed values", where,
				     fd->name, s);
	}
	if (fd->bounded) {
		int64_t n = json_object_get_int64(v);
		if (n < fd->min || n > fd->max)
			return fault(f, "%s.%s: %lld is outside [%lld, %lld]", where, fd->name,
				     (long long)n, fd->min, fd->max);
	}
	if (fd->sub) {
		char sub[128];
		snprintf(sub, sizeof(sub), "%s.%s", where, fd->name);
		return validate(v, fd->sub, sub, f);
	}
	return 0;
}

/* Required fields, types, enums, bounds; a field the definition does not
 * list is refused (Firecracker's request types are serde
 * deny_unknown_fields). */
static int validate(json_object *body, const Schema *s, const char *where, Fault *f)
{
	if (!json_object_is_type(body, json_type_object))
		return fault(f, "%s: expected object, got %s", where, type_name(body));
	for (const Field *fd = s->fields; fd->name; fd++)
		if (fd->required && !json_object_object_get_ex(body, fd->name, NULL))
			return fault(f, "%s: missing required field `%s`", where, fd->name);
	json_object_object_foreach (body, key, val) {
		const Field *fd = s->fields;
		while (fd->name && strcmp(fd->name, key))
			fd++;
		if (!fd->name)
			return fault(f, "%s: unknown field `%s` (%s)", where, key, s->name);
		if (validate_field(val, fd, where, f) < 0)
			return -1;
	}
	return 0;
}

/* ---- the microVM ---------------------------------------------------------- */

typedef enum { ST_NOT_STARTED, ST_RUNNING, ST_PAUSED } VmState;
static const char *const state_names[] = { "Not started", "Running", "Paused" };

typedef struct {
	const char *id;
	VmState state;
	json_object *boot_source; /* NULL until PUT /boot-source */
	json_object *drives;      /* drive_id → Drive body */
	json_object *machine;
	json_object *ifaces; /* iface_id → NetworkInterface body */
	bool configured;     /* any resource other than Logger/Metrics */
	int64_t exit_at_ms;  /* SendCtrlAltDel: exit 0 at this time (0: never) */
	char *reject;        /* FC_DOUBLE_REJECT */
	struct {
		char name[64];
		int fd;
	} taps[MAX_TAPS];
} Vm;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct {
	const char *method;
	const char *path; /* "{x}" matches one path segment */
	const char *op;
	bool preboot; /* the spec's summary says "Pre-boot only" */
	const Schema *body;
} Route;

/* Every path and method of firecracker-api.yaml 1.17.0-dev. The ones with a
 * NULL schema take no body or are not implemented (answered 400). */
static const Route routes[] = {
	{ .method = "GET", .path = "/", .op = "describeInstance" },
	{ .method = "PUT", .path = "/actions", .op = "createSyncAction", .body = &s_action },
	{ .method = "GET", .path = "/balloon", .op = "describeBalloonConfig" },
	{ .method = "PUT", .path = "/balloon", .op = "putBalloon" },
	{ .method = "PATCH", .path = "/balloon", .op = "patchBalloon" },
	{ .method = "GET", .path = "/balloon/statistics", .op = "describeBalloonStats" },
	{ .method = "PATCH", .path = "/balloon/statistics", .op = "patchBalloonStatsInterval" },
	{ .method = "PATCH", .path = "/balloon/hinting/start", .op = "startBalloonHinting" },
	{ .method = "GET", .path = "/balloon/hinting/status", .op = "describeBalloonHinting" },
	{ .method = "PATCH", .path = "/balloon/hinting/stop", .op = "stopBalloonHinting" },
	{ .method = "PUT",
	  .path = "/boot-source",
	  .op = "putGuestBootSource",
	  .preboot = true,
	  .body = &s_boot_source },
	{ .method = "PUT", .path = "/cpu-config", .op = "putCpuConfiguration", .preboot = true },
	{ .method = "PUT",
	  .path = "/drives/{drive_id}",
	  .op = "putGuestDriveByID",
	  .preboot = true,
	  .body = &s_drive },
	{ .method = "PATCH", .path = "/drives/{drive_id}", .op = "patchGuestDriveByID" },
	{ .method = "PUT", .path = "/pmem/{id}", .op = "putGuestPmemByID", .preboot = true },
	{ .method = "PATCH", .path = "/pmem/{id}", .op = "patchGuestPmemByID" },
	{ .method = "PUT", .path = "/logger", .op = "putLogger", .body = &s_logger },
	{ .method = "GET", .path = "/machine-config", .op = "getMachineConfiguration" },
	{ .method = "PUT",
	  .path = "/machine-config",
	  .op = "putMachineConfiguration",
	  .preboot = true,
	  .body = &s_machine },
	{ .method = "PATCH",
	  .path = "/machine-config",
	  .op = "patchMachineConfiguration",
	  .preboot = true },
	{ .method = "PUT", .path = "/metrics", .op = "putMetrics" },
	{ .method = "PUT", .path = "/mmds", .op = "putMmds" },
	{ .method = "PATCH", .path = "/mmds", .op = "patchMmds" },
	{ .method = "GET", .path = "/mmds", .op = "getMmds" },
	{ .method = "PUT", .path = "/mmds/config", .op = "putMmdsConfig", .preboot = true },
	{ .method = "PUT", .path = "/entropy", .op = "putEntropyDevice", .preboot = true },
	{ .method = "PUT", .path = "/serial", .op = "putSerialDevice" },
	{ .method = "PUT", .path = "/hotplug/memory", .op = "putMemoryHotplug" },
	{ .method = "PATCH", .path = "/hotplug/memory", .op = "patchMemoryHotplug" },
	{ .method = "GET", .path = "/hotplug/memory", .op = "getMemoryHotplug" },
	{ .method = "PUT",
	  .path = "/network-interfaces/{iface_id}",
	  .op = "putGuestNetworkInterfaceByID",
	  .preboot = true,
	  .body = &s_iface },
	{ .method = "PATCH",
	  .path = "/network-interfaces/{iface_id}",
	  .op = "patchGuestNetworkInterfaceByID" },
	{ .method = "PUT",
	  .path = "/snapshot/create",
	  .op = "createSnapshot",
	  .body = &s_snap_create },
	{ .method = "PUT",
	  .path = "/snapshot/load",
	  .op = "loadSnapshot",
	  .preboot = true,
	  .body = &s_snap_load },
	{ .method = "GET", .path = "/version", .op = "getFirecrackerVersion" },
	{ .method = "PATCH", .path = "/vm", .op = "patchVm", .body = &s_vm },
	{ .method = "GET", .path = "/vm/config", .op = "getExportVmConfig" },
	{ .method = "PUT", .path = "/vsock", .op = "putGuestVsock", .preboot = true },
};

/* Does path match the template? The one path parameter goes to *ret_param. */
static bool path_match(const char *tmpl, const char *path, char *ret_param, size_t cap)
{
	while (*tmpl && *path) {
		if (*tmpl == '{') {
			size_t n = strcspn(path, "/");
			if (n == 0 || n >= cap)
				return false;
			memcpy(ret_param, path, n);
			ret_param[n] = 0;
			path += n;
			tmpl = strchr(tmpl, '}') + 1;
			continue;
		}
		if (*tmpl++ != *path++)
			return false;
	}
	return !*tmpl && !*path;
}

static const Route *route_find(const char *method, const char *path, char *param, size_t cap,
			       Fault *f)
{
	const Route *path_hit = NULL;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!path_match(routes[i].path, path, param, cap))
			continue;
		if (!strcmp(routes[i].method, method))
			return &routes[i];
		path_hit = &routes[i];
	}
	if (path_hit)
		fault(f,
		      "Invalid request method and/or path: %s %s (the API spec defines no %s on %s)",
		      method, path, method, path_hit->path);
	else
		fault(f, "Invalid request method and/or path: %s %s", method, path);
	return NULL;
}

static int check_open(const char *path, int mode, const char *what, Fault *f)
{
	int fd = open(path, mode | O_CLOEXEC);
	if (fd < 0)
		return fault(f, "%s: %s", what, strerror(errno));
	struct stat st;
	int r = fstat(fd, &st);
	close(fd);
	if (r == 0 && S_ISDIR(st.st_mode))
		return fault(f, "%s: Is a directory", what);
	return 0;
}

static const char *str_field(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static bool bool_field(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

/* A reply: 200 with *ret_json, or 204 when *ret_json stays NULL. */
typedef int (*OpFn)(Vm *vm, const char *param, json_object *body, json_object **ret_json, Fault *f);

static json_object *instance_info(const Vm *vm)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "app_name", json_object_new_string("Firecracker"));
	json_object_object_add(o, "id", json_object_new_string(vm->id));
	json_object_object_add(o, "state", json_object_new_string(state_names[vm->state]));
	json_object_object_add(o, "vmm_version", json_object_new_string(API_VERSION));
	return o;
}

static int op_describe(Vm *vm, const char *param, json_object *body, json_object **ret, Fault *f)
{
	*ret = instance_info(vm);
	return 0;
}

static int op_version(Vm *vm, const char *param, json_object *body, json_object **ret, Fault *f)
{
	*ret = json_object_new_object();
	json_object_object_add(*ret, "firecracker_version", json_object_new_string(API_VERSION));
	return 0;
}

static int op_get_machine(Vm *vm, const char *param, json_object *body, json_object **ret, Fault *f)
{
	*ret = json_object_get(vm->machine);
	return 0;
}

static int op_logger(Vm *vm, const char *param, json_object *body, json_object **ret, Fault *f)
{
	return 0;
}

static int op_boot_source(Vm *vm, const char *param, json_object *body, json_object **ret, Fault *f)
{
	static const char *const keys[] = { "kernel_image_path", "initrd_path" };
	for (size_t i = 0; i < 2; i++) {
		const char *p = str_field(body, keys[i]);
		char what[600];
		snprintf(what, sizeof(what), "Cannot open %s %s", keys[i], p ? p : "");
		if (p && check_open(p, O_RDONLY, what, f) < 0)
			return -1;
	}
	json_object_put(vm->boot_source);
	vm->boot_source = json_object_get(body);
	return 0;
}

static bool has_root_drive(json_object *drives, const char *except)
{
	json_object_object_foreach (drives, id, d) {
		if ((!except || strcmp(id, except)) && bool_field(d, "is_root_device"))
			return true;
	}
	return false;
}

static int op_drive(Vm *vm, const char *param, json_object *body, json_object **ret, Fault *f)
{
	const char *id = str_field(body, "drive_id");
	if (strcmp(param, id))
		return fault(f, "The id from the path does not match the id from the body!");
	const char *p = str_field(body, "path_on_host");
	if (p) {
		/* Firecracker opens the backing file (a file or a block device)
		 * read-write unless the drive is read-only, as its own user. */
		char what[600];
		snprintf(what, sizeof(what), "Unable to open the block device backing file %s", p);
		if (check_open(p, bool_field(body, "is_read_only") ? O_RDONLY : O_RDWR, what, f) <
		    0)
			return -1;
	}
	if (bool_field(body, "is_root_device") && has_root_drive(vm->drives, id))
		return fault(f, "A root block device already exists!");
	json_object_object_add(vm->drives, id, json_object_get(body));
	return 0;
}

static int op_machine(Vm *vm, const char *param, json_object *body, json_object **ret, Fault *f)
{
	json_object *v;
	int64_t vcpus =
		json_object_object_get_ex(body, "vcpu_count", &v) ? json_object_get_int64(v) : 1;
	if (bool_field(body, "smt") && vcpus > 1 && vcpus % 2)
		return fault(f,
			     "The vCPU number is invalid! The vCPU number can only be 1 or an even "
			     "number when SMT is enabled.");
	json_object_object_foreach (body, key, val) {
		json_object_object_add(vm->machine, key, json_object_get(val));
	}
	return 0;
}

/* Attach to tap `name` as Firecracker's net device does (the fd is kept). */
static int open_tap(Vm *vm, const char *iface, const char *name, Fault *f)
{
	size_t slot = 0;
	while (slot < MAX_TAPS && vm->taps[slot].fd >= 0 && strcmp(vm->taps[slot].name, iface))
		slot++;
	if (slot == MAX_TAPS)
		return fault(f, "(fc-double-lite) more than %d network interfaces", MAX_TAPS);
	if (vm->taps[slot].fd >= 0)
		close(vm->taps[slot].fd);
	vm->taps[slot].fd = -1;
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return fault(f,
			     "Could not create the network device: Open tap device failed: "
			     "/dev/net/tun: %s",
			     strerror(errno));
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		close(fd);
		return fault(f,
			     "Could not create the network device: Open tap device failed: "
			     "TUNSETIFF %s: %s",
			     name, strerror(e));
	}
	snprintf(vm->taps[slot].name, sizeof(vm->taps[slot].name), "%s", iface);
	vm->taps[slot].fd = fd;
	return 0;
}

static int op_iface(Vm *vm, const char *param, json_object *body, json_object **ret, Fault *f)
{
	const char *id = str_field(body, "iface_id");
	if (strcmp(param, id))
		return fault(f, "The id from the path does not match the id from the body!");
	const char *open_taps = getenv("FC_DOUBLE_OPEN_TAPS");
	if (open_taps && !strcmp(open_taps, "1") &&
	    open_tap(vm, id, str_field(body, "host_dev_name"), f) < 0)
		return -1;
	json_object_object_add(vm->ifaces, id, json_object_get(body));
	return 0;
}

static int instance_start(Vm *vm, Fault *f)
{
	if (vm->state != ST_NOT_STARTED)
		return fault(
			f, "The requested operation is not supported after starting the microVM.");
	if (!vm->boot_source)
		return fault(f, "Cannot start microvm without kernel configuration.");
	if (!has_root_drive(vm->drives, NULL))
		return fault(f,
			     "(fc-double-lite) Cannot start microvm without a root block device.");
	vm->state = ST_RUNNING;
	return 0;
}

static int op_action(Vm *vm, const char *param, json_object *body, json_object **ret, Fault *f)
{
	const char *action = str_field(body, "action_type");
	if (!strcmp(action, "InstanceStart"))
		return instance_start(vm, f);
	if (vm->state == ST_NOT_STARTED)
		return fault(
			f, "The requested operation is not supported before starting the microVM.");
	if (!strcmp(action, "SendCtrlAltDel")) {
		/* Firecracker exits when its guest resets; the double after a delay. */
		const char *d = getenv("FC_DOUBLE_STOP_DELAY_MS");
		vm->exit_at_ms = now_ms() + (d ? atoll(d) : 100);
		return 0;
	}
	return fault(f, "fc-double-lite does not implement action %s", action);
}

static int op_patch_vm(Vm *vm, const char *param, json_object *body, json_object **ret, Fault *f)
{
	if (vm->state == ST_NOT_STARTED)
		return fault(
			f, "The requested operation is not supported before starting the microVM.");
	vm->state = strcmp(str_field(body, "state"), "Paused") ? ST_RUNNING : ST_PAUSED;
	return 0;
}

static bool parent_dir_exists(const char *path)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash)
		return true; /* relative to our cwd */
	if (slash == dir)
		slash[1] = 0;
	else
		*slash = 0;
	struct stat st;
	return stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The double has no guest memory: the "memory file" is a sparse file of
 * mem_size_mib MiB, the "state file" a JSON of the configuration it holds. */
static int op_snap_create(Vm *vm, const char *param, json_object *body, json_object **ret, Fault *f)
{
	if (vm->state != ST_PAUSED)
		return fault(f, "Cannot create snapshot: the microVM is not paused (state %s)",
			     state_names[vm->state]);
	const char *type = str_field(body, "snapshot_type");
	if (type && strcmp(type, "Full"))
		return fault(f, "fc-double-lite implements Full snapshots only");
	const char *snap = str_field(body, "snapshot_path"),
		   *mem = str_field(body, "mem_file_path");
	if (!parent_dir_exists(snap) || !parent_dir_exists(mem))
		return fault(f, "Cannot create %s: No such file or directory",
			     parent_dir_exists(snap) ? mem : snap);
	json_object *st = json_object_new_object();
	json_object_object_add(st, "firecracker_double_snapshot", json_object_new_int(1));
	json_object_object_add(st, "boot_source", json_object_get(vm->boot_source));
	json_object_object_add(st, "drives", json_object_get(vm->drives));
	json_object_object_add(st, "machine", json_object_get(vm->machine));
	json_object_object_add(st, "ifaces", json_object_get(vm->ifaces));
	int r = json_object_to_file(snap, st);
	json_object_put(st);
	if (r < 0)
		return fault(f, "Cannot create snapshot %s: %s", snap, strerror(errno));
	json_object *m = NULL;
	json_object_object_get_ex(vm->machine, "mem_size_mib", &m);
	int fd = open(mem, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)json_object_get_int64(m) << 20) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return fault(f, "Cannot create memory file %s: %s", mem, strerror(e));
	}
	close(fd);
	return 0;
}

/* Pre-boot only (the generic rule), and only on a fresh process. */
static int op_snap_load(Vm *vm, const char *param, json_object *body, json_object **ret, Fault *f)
{
	if (vm->configured)
		return fault(
			f, "Loading a microVM snapshot not allowed after configuring boot-specific "
			   "resources.");
	json_object *backend = NULL;
	bool has_backend = json_object_object_get_ex(body, "mem_backend", &backend);
	const char *mem = str_field(body, "mem_file_path");
	if (has_backend == (mem != NULL))
		return fault(f, "Exactly one of mem_file_path and mem_backend must be given");
	if (has_backend) {
		if (strcmp(str_field(backend, "backend_type"), "File"))
			return fault(f, "fc-double-lite implements the File memory backend only");
		mem = str_field(backend, "backend_path");
	}
	json_object *st = json_object_from_file(str_field(body, "snapshot_path")), *v = NULL;
	json_object *drives = NULL, *machine = NULL, *m = NULL;
	if (!st || !json_object_object_get_ex(st, "firecracker_double_snapshot", &v) ||
	    json_object_get_int(v) != 1 || !json_object_object_get_ex(st, "drives", &drives) ||
	    !json_object_object_get_ex(st, "machine", &machine) ||
	    !json_object_object_get_ex(machine, "mem_size_mib", &m)) {
		json_object_put(st);
		return fault(
			f, "Load microVM snapshot error: Failed to load the microVM state from %s",
			str_field(body, "snapshot_path"));
	}
	struct stat sb;
	if (stat(mem, &sb) < 0 || !S_ISREG(sb.st_mode) ||
	    sb.st_size != (off_t)json_object_get_int64(m) << 20) {
		json_object_put(st);
		return fault(f, "Load microVM snapshot error: Cannot load the guest memory from %s",
			     mem);
	}
	json_object_object_foreach (drives, id, d) {
		const char *p = str_field(d, "path_on_host");
		if (p && (stat(p, &sb) < 0 || !S_ISREG(sb.st_mode))) {
			json_object_put(st);
			return fault(f,
				     "Load microVM snapshot error: Unable to open the block device "
				     "backing file %s (drive %s)",
				     p, id);
		}
	}
	json_object_put(vm->boot_source);
	json_object_put(vm->drives);
	json_object_put(vm->machine);
	json_object_put(vm->ifaces);
	json_object_object_get_ex(st, "boot_source", &v);
	vm->boot_source = json_object_get(v);
	vm->drives = json_object_get(drives);
	vm->machine = json_object_get(machine);
	vm->ifaces = json_object_object_get_ex(st, "ifaces", &v) ? json_object_get(v)
								 : json_object_new_object();
	json_object_put(st);
	vm->configured = true;
	vm->state = bool_field(body, "resume_vm") ? ST_RUNNING : ST_PAUSED;
	return 0;
}

static const struct {
	const char *op;
	OpFn fn;
	bool configures; /* counts as "configuring a resource" for loadSnapshot */
} impl[] = {
	{ .op = "describeInstance", .fn = op_describe },
	{ .op = "getFirecrackerVersion", .fn = op_version },
	{ .op = "getMachineConfiguration", .fn = op_get_machine },
	{ .op = "putLogger", .fn = op_logger },
	{ .op = "putGuestBootSource", .fn = op_boot_source, .configures = true },
	{ .op = "putGuestDriveByID", .fn = op_drive, .configures = true },
	{ .op = "putMachineConfiguration", .fn = op_machine, .configures = true },
	{ .op = "putGuestNetworkInterfaceByID", .fn = op_iface, .configures = true },
	{ .op = "createSyncAction", .fn = op_action },
	{ .op = "patchVm", .fn = op_patch_vm },
	{ .op = "createSnapshot", .fn = op_snap_create },
	{ .op = "loadSnapshot", .fn = op_snap_load },
};

static bool rejected(const Vm *vm, const char *method, const char *path)
{
	if (!vm->reject)
		return false;
	char want[1100];
	snprintf(want, sizeof(want), "%s %s", method, path);
	char *list = strdup(vm->reject), *save = NULL;
	bool hit = false;
	for (char *t = strtok_r(list, ",", &save); t && !hit; t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ')
			t++;
		size_t n = strlen(t);
		while (n && t[n - 1] == ' ')
			t[--n] = 0;
		hit = !strcmp(t, want);
	}
	free(list);
	return hit;
}

/* One request → status (200, 204, 400) and the reply body (NULL for 204). */
static int vm_handle(Vm *vm, const char *method, const char *path, const char *raw, size_t len,
		     json_object **ret_reply)
{
	Fault f = { "" };
	char param[256] = "";
	json_object *body = NULL, *reply = NULL;
	const Route *r = route_find(method, path, param, sizeof(param), &f);
	size_t i = 0;
	if (!r)
		goto refuse;
	if (rejected(vm, method, path)) {
		fault(&f, "(fc-double-lite) %s %s refused as FC_DOUBLE_REJECT asks", method, path);
		goto refuse;
	}
	while (i < sizeof(impl) / sizeof(impl[0]) && strcmp(impl[i].op, r->op))
		i++;
	if (i == sizeof(impl) / sizeof(impl[0])) {
		fault(&f, "fc-double-lite does not implement %s (%s %s); the real Firecracker does",
		      r->op, method, path);
		goto refuse;
	}
	if (!r->body && len) {
		fault(&f, "%s takes no request body", r->op);
		goto refuse;
	}
	/* Firecracker refuses a PUT/PATCH without a body ("Empty PUT request."),
	 * even where the spec marks the body optional (/machine-config). */
	if (r->body && !len) {
		fault(&f, "Empty request body: %s requires a body", r->op);
		goto refuse;
	}
	if (r->body && len) {
		enum json_tokener_error jerr;
		body = json_tokener_parse_verbose(raw, &jerr);
		if (!body) {
			fault(&f, "Invalid JSON body: %s", json_tokener_error_desc(jerr));
			goto refuse;
		}
		if (validate(body, r->body, "body", &f) < 0)
			goto refuse;
	}
	if (impl[i].configures)
		vm->configured = true;
	if (r->preboot && vm->state != ST_NOT_STARTED) {
		fault(&f, "The requested operation is not supported after starting the microVM.");
		goto refuse;
	}
	if (impl[i].fn(vm, param, body, &reply, &f) < 0)
		goto refuse;
	json_object_put(body);
	*ret_reply = reply;
	return reply ? 200 : 204;
refuse:
	json_object_put(body);
	*ret_reply = json_object_new_object();
	json_object_object_add(*ret_reply, "fault_message", json_object_new_string(f.msg));
	return 400;
}

/* ---- HTTP/1.1 on the unix socket ------------------------------------------ */

typedef struct {
	int fd;
	char *buf;
	size_t len;
} Conn;

/* JSON as Python's json.dumps writes it ({"k": v, "k2": [1, 2]}), so the
 * request log reads the same whichever double wrote it and tests can match
 * on it. (Non-ASCII stays UTF-8; Python would write \uXXXX.) */
static void json_dumps(FILE *out, json_object *v)
{
	const char *sep = "";
	switch (json_object_get_type(v)) {
	case json_type_object:
		fputc('{', out);
		json_object_object_foreach (v, key, val) {
			json_object *k = json_object_new_string(key);
			fprintf(out, "%s%s: ", sep,
				json_object_to_json_string_ext(k, JSON_C_TO_STRING_NOSLASHESCAPE));
			json_object_put(k);
			json_dumps(out, val);
			sep = ", ";
		}
		fputc('}', out);
		break;
	case json_type_array:
		fputc('[', out);
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			fputs(sep, out);
			json_dumps(out, json_object_array_get_idx(v, i));
			sep = ", ";
		}
		fputc(']', out);
		break;
	default:
		fputs(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
								JSON_C_TO_STRING_NOSLASHESCAPE),
		      out);
	}
}

/* FC_DOUBLE_PUT_DELAY_MS: every PUT is answered that much later, as by the
 * Python double, so a test can hold launches in flight. */
static void put_delay(void)
{
	const char *d = getenv("FC_DOUBLE_PUT_DELAY_MS");
	long ms = d ? strtol(d, NULL, 10) : 0;
	if (ms > 0) {
		struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
}

static void record(const char *method, const char *path, const char *raw, size_t len, int status,
		   json_object *reply)
{
	const char *out =
		reply ? json_object_to_json_string_ext(
				reply, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
		      : "";
	fprintf(stderr, "fc-double-lite: %s %s %.*s -> %d %s\n", method, path, (int)(len ? len : 1),
		len ? raw : "-", status, out);
	const char *logp = getenv("FC_DOUBLE_REQUEST_LOG");
	if (!logp || !*logp)
		return;
	json_object *line = json_object_new_object(), *body = NULL;
	if (len && !(body = json_tokener_parse(raw)))
		body = json_object_new_string_len(raw, (int)len);
	json_object_object_add(line, "method", json_object_new_string(method));
	json_object_object_add(line, "path", json_object_new_string(path));
	json_object_object_add(line, "body", body);
	json_object_object_add(line, "status", json_object_new_int(status));
	/* When it was answered, Unix seconds (the Python double's time.time()). */
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	json_object_object_add(line, "t",
			       json_object_new_double((double)now.tv_sec + now.tv_nsec / 1e9));
	/* One write(2) per line (O_APPEND), as the Python double's f.write. */
	char *text = NULL;
	size_t text_len = 0;
	FILE *mem = open_memstream(&text, &text_len);
	if (mem) {
		json_dumps(mem, line);
		fputc('\n', mem);
		fclose(mem);
		int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0) {
			if (write(fd, text, text_len) < 0)
				fprintf(stderr, "fc-double-lite: %s: %s\n", logp, strerror(errno));
			close(fd);
		}
		free(text);
	}
	json_object_put(line);
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pf = { .fd = fd, .events = POLLOUT };
			if (poll(&pf, 1, 1000) <= 0)
				return -1;
			continue;
		}
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int respond(int fd, int status, json_object *reply)
{
	const char *reason = status == 200 ? "OK" : status == 204 ? "No Content" : "Bad Request";
	const char *body =
		reply ? json_object_to_json_string_ext(
				reply, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
		      : "";
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nServer: Firecracker-API-double-lite\r\n%s"
			 "Content-Length: %zu\r\n\r\n",
			 status, reason, reply ? "Content-Type: application/json\r\n" : "",
			 strlen(body));
	return send_all(fd, head, (size_t)n) < 0 || send_all(fd, body, strlen(body)) < 0 ? -1 : 0;
}

/* The value of header `name` in the header block, or NULL. */
static const char *header(const char *hdrs, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	for (const char *l = strstr(hdrs, "\r\n"); l && l[2]; l = strstr(l + 2, "\r\n")) {
		const char *h = l + 2;
		if (!strncasecmp(h, name, nl) && h[nl] == ':') {
			h += nl + 1;
			while (*h == ' ')
				h++;
			size_t n = strcspn(h, "\r");
			snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), h);
			return out;
		}
	}
	return NULL;
}

/* Serve every complete request in c->buf. Returns -1 to close the conn. */
static int conn_serve(Vm *vm, Conn *c)
{
	for (;;) {
		c->buf[c->len] = 0;
		char *end = strstr(c->buf, "\r\n\r\n");
		if (!end)
			return c->len > MAX_HEADER ? -1 : 0;
		*end = 0;
		char method[16], path[1024], version[16], val[64];
		if (sscanf(c->buf, "%15s %1023s %15s", method, path, version) != 3 ||
		    strncmp(version, "HTTP/1.", 7))
			return -1;
		size_t blen = header(c->buf, "Content-Length", val, sizeof(val))
				      ? strtoul(val, NULL, 10)
				      : 0;
		bool close_after =
			header(c->buf, "Connection", val, sizeof(val)) && !strcasecmp(val, "close");
		size_t hlen = (size_t)(end - c->buf) + 4;
		if (blen > MAX_BODY)
			return -1;
		if (c->len < hlen + blen) {
			*end = '\r';
			return 0; /* the body is still coming */
		}
		char *raw = strndup(c->buf + hlen, blen);
		json_object *reply = NULL;
		if (!strcmp(method, "PUT"))
			put_delay();
		int status = vm_handle(vm, method, path, raw, blen, &reply);
		record(method, path, raw, blen, status, reply);
		int r = respond(c->fd, status, reply);
		json_object_put(reply);
		free(raw);
		memmove(c->buf, c->buf + hlen + blen, c->len - hlen - blen);
		c->len -= hlen + blen;
		if (r < 0 || close_after)
			return -1;
	}
}

static void conn_close(Conn *c)
{
	close(c->fd);
	free(c->buf);
	*c = (Conn){ .fd = -1 };
}

static int serve(Vm *vm, int lfd)
{
	Conn conns[MAX_CONNS];
	for (size_t i = 0; i < MAX_CONNS; i++)
		conns[i] = (Conn){ .fd = -1 };
	for (;;) {
		struct pollfd pfd[MAX_CONNS + 1] = { { .fd = lfd, .events = POLLIN } };
		for (size_t i = 0; i < MAX_CONNS; i++)
			pfd[i + 1] = (struct pollfd){ .fd = conns[i].fd, .events = POLLIN };
		int timeout = -1;
		if (vm->exit_at_ms) {
			int64_t left = vm->exit_at_ms - now_ms();
			if (left <= 0) {
				fprintf(stderr,
					"fc-double-lite: SendCtrlAltDel: exiting 0, as Firecracker "
					"does when its guest resets\n");
				exit(0);
			}
			timeout = (int)left;
		}
		if (poll(pfd, MAX_CONNS + 1, timeout) < 0 && errno != EINTR)
			return -errno;
		if (pfd[0].revents & POLLIN) {
			int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
			size_t i = 0;
			while (fd >= 0 && i < MAX_CONNS && conns[i].fd >= 0)
				i++;
			if (fd >= 0 && i == MAX_CONNS)
				close(fd); /* full: the client sees a reset */
			else if (fd >= 0)
				conns[i] = (Conn){ .fd = fd,
						   .buf = malloc(MAX_HEADER + MAX_BODY + 1) };
		}
		for (size_t i = 0; i < MAX_CONNS; i++) {
			Conn *c = &conns[i];
			if (c->fd < 0 || !pfd[i + 1].revents)
				continue;
			ssize_t n = read(c->fd, c->buf + c->len, MAX_HEADER + MAX_BODY - c->len);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0) {
				conn_close(c);
				continue;
			}
			c->len += (size_t)n;
			if (conn_serve(vm, c) < 0 || c->len >= MAX_HEADER + MAX_BODY)
				conn_close(c);
		}
	}
}

/* ---- main ----------------------------------------------------------------- */

static void usage_exit(const char *msg, const char *arg)
{
	fprintf(stderr,
		"fc-double-lite: %s%s%s (the double accepts --api-sock PATH --id ID and the "
		"jailer's --start-time-us/--start-time-cpu-us/--parent-cpu-time-us)\n",
		msg, arg ? " " : "", arg ? arg : "");
	exit(1);
}

static void parse_args(int argc, char **argv, const char **ret_sock, const char **ret_id)
{
	static const char *const valued[] = { "--api-sock",           "--id",
					      "--start-time-us",      "--start-time-cpu-us",
					      "--parent-cpu-time-us", NULL };
	for (int i = 1; i < argc; i++) {
		char key[64];
		const char *eq = strchr(argv[i], '='), *val;
		size_t kl = eq ? (size_t)(eq - argv[i]) : strlen(argv[i]);
		snprintf(key, sizeof(key), "%.*s", (int)kl, argv[i]);
		const char *const *v = valued;
		while (*v && strcmp(*v, key))
			v++;
		if (!*v)
			usage_exit("unknown argument", argv[i]);
		if (eq)
			val = eq + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		else
			usage_exit("a value is missing after", key);
		if (!strcmp(key, "--api-sock"))
			*ret_sock = val;
		else if (!strcmp(key, "--id"))
			*ret_id = val;
	}
	if (!*ret_sock)
		usage_exit("--api-sock is required (no --no-api/--config-file mode)", NULL);
}

int main(int argc, char **argv)
{
	const char *sock = NULL, *id = "anonymous-instance";
	parse_args(argc, argv, &sock, &id);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(sock) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "fc-double-lite: socket path too long: %s\n", sock);
		return 1;
	}
	strcpy(sa.sun_path, sock);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* Firecracker refuses to start when the socket path exists. */
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 64) < 0) {
		fprintf(stderr, "fc-double-lite: Failed to open the API socket at %s: %s\n", sock,
			strerror(errno));
		return 1;
	}
	Vm vm = { .id = id,
		  .drives = json_object_new_object(),
		  .ifaces = json_object_new_object(),
		  .machine = json_object_new_object(),
		  .reject = getenv("FC_DOUBLE_REJECT") };
	for (size_t i = 0; i < MAX_TAPS; i++)
		vm.taps[i].fd = -1;
	json_object_object_add(vm.machine, "vcpu_count", json_object_new_int(1));
	json_object_object_add(vm.machine, "mem_size_mib", json_object_new_int(128));
	json_object_object_add(vm.machine, "smt", json_object_new_boolean(false));
	json_object_object_add(vm.machine, "track_dirty_pages", json_object_new_boolean(false));
	fprintf(stderr, "fc-double-lite: serving the Firecracker API (%s subset) on %s, id %s\n",
		API_VERSION, sock, id);
	int r = serve(&vm, lfd);
	fprintf(stderr, "fc-double-lite: poll: %s\n", strerror(-r));
	return 1;
}
