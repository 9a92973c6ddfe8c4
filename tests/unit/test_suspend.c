/* runtime/suspend.c on real files: how a saved state's record is judged
 * (intact, boot-relevant spec, VMM binary), the SHA-256 check before a
 * resume, consume-once and discard. The save itself needs a live VMM: it is
 * covered by tests/integration/t_suspend*.sh. */
#include "runtime/suspend.h"
#include "tap.h"
#include "util/fileio.h"
#include "util/proc.h"
#include "util/sha256.h"

#include <stdio.h>
#include <sys/stat.h>

#define UID "0123456789abcdef0123456789abcdef"
#define SPEC_JSON(mem)                                                                             \
	"{\"apiVersion\":\"banger/v1\",\"kind\":\"VM\",\"metadata\":{\"labels\":{},\"name\":"      \
	"\"web-1\"},\"spec\":{\"kernel\":{\"path\":\"/k\"},\"memoryMiB\":" #mem ","                \
	"\"network\":{\"enabled\":true},\"readiness\":{\"timeoutSeconds\":120},"                   \
	"\"restartPolicy\":\"Always\",\"rootfs\":{\"path\":\"/r\"},\"state\":\"Running\","         \
	"\"vcpus\":1,\"vmm\":\"qemu\"}}"

static char tmp[] = "/tmp/banger-test-suspend-XXXXXX";
static char *vmdir;

static char *json_quote(const char *s)
{
	/* The spec JSON holds only quotes to escape. */
	size_t q = 0;
	for (const char *p = s; *p; p++)
		q += *p == '"';
	char *o = xmalloc(strlen(s) + q + 3), *w = o;
	*w++ = '"';
	for (const char *p = s; *p; p++) {
		if (*p == '"')
			*w++ = '\\';
		*w++ = *p;
	}
	*w++ = '"';
	*w = 0;
	return o;
}

static char *binary_json(const char *path)
{
	struct stat st;
	stat(path, &st);
	return xasprintf("{\"path\":\"%s\",\"size\":%lld,\"mtimeNs\":%lld,\"ino\":%lld}", path,
			 (long long)st.st_size,
			 (long long)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
			 (long long)st.st_ino);
}

/* A saved state as the save writes it: suspend/qemu.state + suspend.json. */
static void write_saved(const char *content, const char *spec_json, const char *binary,
			long long size_override)
{
	_cleanup_free_ char *dir = path_join(vmdir, "suspend");
	_cleanup_free_ char *f = path_join(dir, "qemu.state");
	_cleanup_free_ char *rec = path_join(vmdir, "suspend.json");
	_cleanup_free_ char *q = json_quote(spec_json);
	char hex[65];
	mkdir_p(dir, 0700);
	write_file_atomic(f, content, strlen(content), 0600);
	sha256_hex(content, strlen(content), hex);
	_cleanup_free_ char *text = xasprintf(
		"{\"savedAtMs\":1764530000000,\"vmm\":\"qemu\",\"vmmVersion\":\"QEMU 7.2.0\","
		"\"binary\":%s,\"spec\":%s,\"files\":[{\"name\":\"qemu.state\",\"size\":%lld,"
		"\"sha256\":\"%s\"}]}",
		binary, q, size_override >= 0 ? size_override : (long long)strlen(content), hex);
	write_file_atomic(rec, text, strlen(text), 0600);
}

static void inspect(Runtime *rt, const VmSpec *spec, SavedState *s)
{
	saved_state_done(s);
	CHECK_INTEQ(vm_saved_inspect(rt, UID, spec, s), 0, "inspect returns 0");
}

int main(void)
{
	if (!mkdtemp(tmp))
		return 1;
	_cleanup_free_ char *sh = NULL;
	if (find_executable("/bin/sh", &sh) < 0)
		return 77;
	RuntimeConfig cfg = { .state_dir = tmp,
			      .runtime_dir = tmp,
			      .bridge = "b0",
			      .cidr = "172.30.0.1/24",
			      .driver = "qemu",
			      .instance = "7e57700170000001",
			      .vmm = { .qemu_bin = sh } };
	Runtime *rt = NULL;
	CHECK_INTEQ(runtime_new(&cfg, &rt), 0, "runtime");
	VmPaths p = { 0 };
	vm_paths_for(rt, UID, &p);
	vmdir = xstrdup(p.vm_dir);
	vm_paths_done(&p);
	mkdir_p(vmdir, 0700);

	VmSpec *spec = NULL, *bigger = NULL;
	CHECK_INTEQ(vm_spec_from_json(SPEC_JSON(256), &spec), 0, "spec parses");
	CHECK_INTEQ(vm_spec_from_json(SPEC_JSON(512), &bigger), 0, "changed spec parses");
	_cleanup_free_ char *bin = binary_json(sh);
	SavedState s = { 0 };

	inspect(rt, spec, &s);
	CHECK(!s.saved, "no record → nothing saved");

	write_saved("state bytes", SPEC_JSON(256), bin, -1);
	inspect(rt, spec, &s);
	CHECK(s.saved && s.intact && s.boot_equal && s.vmm_equal && !s.problem,
	      "a whole record that fits → resumable");
	CHECK_INTEQ(s.size, 11, "size of the saved files");
	CHECK(s.saved_at_ms == 1764530000000LL, "saved time");
	CHECK_STREQ(s.vmm_version, "QEMU 7.2.0", "VMM version");
	_cleanup_free_ char *err = NULL;
	CHECK_INTEQ(vm_saved_verify(rt, UID, &err), 0, "SHA-256 matches");

	inspect(rt, bigger, &s);
	CHECK(s.saved && s.intact && !s.boot_equal,
	      "memoryMiB changed since the save → not boot-equal");
	CHECK(s.problem && strstr(s.problem, "memoryMiB 256→512"), "...and says what changed");

	write_saved("state bytes", SPEC_JSON(256), bin, 99);
	inspect(rt, spec, &s);
	CHECK(s.saved && !s.intact, "size differs from the record → corrupt");
	CHECK(s.problem && strstr(s.problem, "is 11 bytes, the record says 99"), "...says so");

	_cleanup_free_ char *other =
		xasprintf("{\"path\":\"%s\",\"size\":1,\"mtimeNs\":1,\"ino\":1}", sh);
	write_saved("state bytes", SPEC_JSON(256), other, -1);
	inspect(rt, spec, &s);
	CHECK(s.saved && s.intact && s.boot_equal && !s.vmm_equal,
	      "another VMM binary → not resumable");
	CHECK(s.problem && strstr(s.problem, "binary changed"), "...says so");

	write_saved("state bytes", SPEC_JSON(256), bin, -1);
	_cleanup_free_ char *f = path_join(vmdir, "suspend/qemu.state");
	write_file_atomic(f, "STATE BYTES", 11, 0600); /* same size, other bytes */
	inspect(rt, spec, &s);
	CHECK(s.intact, "same size: inspect (cheap) cannot tell");
	free(err);
	err = NULL;
	CHECK_INTEQ(vm_saved_verify(rt, UID, &err), -EBADMSG,
		    "...the SHA-256 check before a resume can");
	CHECK(err && strstr(err, "does not match its SHA-256"), "...and says so");

	_cleanup_free_ char *rec = path_join(vmdir, "suspend.json");
	write_file_atomic(rec, "{not json", 9, 0600);
	inspect(rt, spec, &s);
	CHECK(s.saved && !s.intact && s.problem && strstr(s.problem, "unreadable"),
	      "an unreadable record → corrupt");

	write_saved("state bytes", SPEC_JSON(256), bin, -1);
	free(err);
	err = NULL;
	CHECK_INTEQ(vm_saved_consume(rt, UID, &err), 0, "consume");
	inspect(rt, spec, &s);
	CHECK(!s.saved, "a consumed state can never be resumed again");
	CHECK_INTEQ(vm_saved_discard(rt, UID), 0, "discard");
	_cleanup_free_ char *used = path_join(vmdir, "suspend.json.used");
	_cleanup_free_ char *sd = path_join(vmdir, "suspend");
	CHECK(access(used, F_OK) < 0 && access(sd, F_OK) < 0,
	      "discard removes the files and the record");
	CHECK_INTEQ(vm_saved_discard(rt, UID), 0, "discard is idempotent");

	saved_state_done(&s);
	vm_spec_free(spec);
	vm_spec_free(bigger);
	runtime_free(rt);
	free(vmdir);
	rm_rf(tmp);
	return tap_done();
}
