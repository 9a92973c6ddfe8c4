/* storage-tool — drives controller/storage for tests/integration/t_storage.sh.
 * Prints facts on stdout (one "key value" or plain line each); the script
 * asserts on them. Exit 0 on success, 1 on failure (the -errno is printed as
 * "error <n> <strerror>"), 2 on usage errors.
 *
 *   loop-attach FILE ro|rw          print the new device (stays attached)
 *   loop-held FILE                  attach with autoclear holding an fd; print
 *                                   whether it is bound while held and gone
 *                                   after the fd closes
 *   loop-detach DEV                 LOOP_CLR_FD (idempotent)
 *   loop-ro DEV                     1 or 0
 *   loop-list DIR                   devices backed by files under DIR
 *   dm-available                    yes / no
 *   reflink-probe DIR               yes / no
 *   detect VM_DIR qemu|fc           chosen cow method
 *   prepare VM_DIR UID BASE qemu|fc [METHOD]
 *   teardown key=value...           keys: dm_name base_loop cow_loop base_image cow_file
 *   rootbase VM_DIR SPEC_PATH       which base the VM's root disk goes with
 *                                   (rootbase.h): "plan", "base", "note" lines
 *   clone SRC DST                   storage_clone_file (reflink, else sparse copy)
 *   workdisk PATH MIB               1 created/grown, 0 kept
 *   imagecheck PATH ROOT...         the real path */
#include "storage/storage.h"
#include "util/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <time.h>

static int fail(int r)
{
	printf("error %d %s\n", r, strerror(-r));
	return 1;
}

static bool loop_bound_to(const char *dev, const char *file)
{
	_cleanup_free_ char *b = NULL, *want = realpath(file, NULL);
	return loop_backing_file(dev, &b) == 0 && want && streq(b, want);
}

static int cmd_loop_held(const char *file)
{
	_cleanup_free_ char *dev = NULL;
	int fd = -1, r = loop_attach_held(file, true, &dev, &fd);
	if (r < 0)
		return fail(r);
	printf("device %s\n", dev);
	printf("bound-while-held %s\n", loop_bound_to(dev, file) ? "yes" : "no");
	printf("read-only %d\n", loop_is_read_only(dev));
	close(fd);
	/* Autoclear runs on the last close; allow it a moment. */
	bool gone = false;
	for (int i = 0; i < 100 && !gone; i++) {
		const struct timespec ms10 = { 0, 10 * 1000 * 1000 };
		gone = !loop_bound_to(dev, file);
		if (!gone)
			nanosleep(&ms10, NULL);
	}
	printf("gone-after-close %s\n", gone ? "yes" : "no");
	return 0;
}

static int cmd_loop_list(const char *dir)
{
	_cleanup_strv_free_ char **devs = NULL;
	int r = loop_list_backed_under(dir, &devs);
	if (r < 0)
		return fail(r);
	for (size_t i = 0; devs[i]; i++)
		printf("%s\n", devs[i]);
	return 0;
}

static int record_print(void *userdata, const RootDisk *p)
{
	printf("record dm_name=%s cow_file=%s base_loop=%s cow_loop=%s\n",
	       p->dm_name ? p->dm_name : "-", p->cow_file ? p->cow_file : "-",
	       p->base_loop ? p->base_loop : "-", p->cow_loop ? p->cow_loop : "-");
	return 0;
}

static int cmd_prepare(int argc, char **argv)
{
	RootDiskRequest req = { .vm_dir = argv[0],
				.vm_uid = argv[1],
				.base_image = argv[2],
				.qemu = streq(argv[3], "qemu"),
				.record = record_print };
	RootDisk d = { 0 };
	int r;
	if (argc > 4) {
		req.method = cow_method_from_string(argv[4]);
		if (req.method < 0)
			return fail(req.method);
	}
	r = root_disk_prepare(&req, &d);
	if (r < 0)
		return fail(r);
	printf("method %s\npath %s\nformat %s\nreused %d\n", cow_method_to_string(d.method), d.path,
	       d.format, d.reused);
	root_disk_done(&d);
	return 0;
}

static int cmd_teardown(int argc, char **argv)
{
	RootDisk h = { 0 };
	struct {
		const char *key;
		char **field;
	} keys[] = { { "dm_name", &h.dm_name },
		     { "base_loop", &h.base_loop },
		     { "cow_loop", &h.cow_loop },
		     { "base_image", &h.base_image },
		     { "cow_file", &h.cow_file } };
	for (int i = 0; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		size_t k = 0;
		for (; eq && k < ELEMENTSOF(keys); k++)
			if (strncmp(argv[i], keys[k].key, (size_t)(eq - argv[i])) == 0 &&
			    strlen(keys[k].key) == (size_t)(eq - argv[i]))
				break;
		if (!eq || k == ELEMENTSOF(keys))
			return fail(-EINVAL);
		free_and_replace_str(keys[k].field, eq + 1);
	}
	int r = root_disk_teardown(&h);
	root_disk_done(&h);
	return r < 0 ? fail(r) : 0;
}

static int cmd_rootbase(const char *vm_dir, const char *spec_path)
{
	_cleanup_free_ char *resolved = realpath(spec_path, NULL), *why = NULL;
	RootBaseChoice c = { 0 };
	if (!resolved)
		return fail(-errno);
	int r = root_base_resolve(vm_dir, spec_path, resolved, &c, &why);
	if (r < 0) {
		printf("why %s\n", why ? why : "");
		return fail(r);
	}
	printf("plan %s\nbase %s\n", root_base_plan_to_string(c.plan), c.base);
	if (c.note)
		printf("reason %s\nnote %s\n", c.reason, c.note);
	root_base_choice_done(&c);
	return 0;
}

static int cmd_workdisk(const char *path, const char *mib)
{
	uint64_t n;
	int r = parse_u64(mib, 0, UINT64_MAX, &n);
	if (r < 0)
		return fail(r);
	r = work_disk_ensure(path, n);
	if (r < 0)
		return fail(r);
	printf("%d\n", r);
	return 0;
}

static int cmd_imagecheck(const char *path, char **roots)
{
	_cleanup_free_ char *real = NULL;
	int r = image_path_check(path, roots, &real);
	if (r < 0)
		return fail(r);
	printf("%s\n", real);
	return 0;
}

static int simple(int r)
{
	return r < 0 ? fail(r) : 0;
}

static int cmd_loop_attach(const char *file, bool ro)
{
	_cleanup_free_ char *dev = NULL;
	int r = loop_attach(file, ro, &dev);
	if (r < 0)
		return fail(r);
	printf("%s\n", dev);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	int n = argc - 2;
	char **a = argv + 2;

	if (getenv("STORAGE_TOOL_DEBUG"))
		log_setup(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT, "storage-tool");
	if (streq(cmd, "loop-attach") && n == 2)
		return cmd_loop_attach(a[0], streq(a[1], "ro"));
	if (streq(cmd, "loop-held") && n == 1)
		return cmd_loop_held(a[0]);
	if (streq(cmd, "loop-detach") && n == 1)
		return simple(loop_detach(a[0]));
	if (streq(cmd, "loop-ro") && n == 1) {
		int r = loop_is_read_only(a[0]);
		return r < 0 ? fail(r) : (printf("%d\n", r), 0);
	}
	if (streq(cmd, "loop-list") && n == 1)
		return cmd_loop_list(a[0]);
	if (streq(cmd, "dm-available") && n == 0)
		return printf("%s\n", dm_available() ? "yes" : "no"), 0;
	if (streq(cmd, "reflink-probe") && n == 1)
		return printf("%s\n", cow_reflink_supported(a[0]) ? "yes" : "no"), 0;
	if (streq(cmd, "detect") && n == 2)
		return printf("%s\n",
			      cow_method_to_string(cow_method_detect(a[0], streq(a[1], "qemu")))),
		       0;
	if (streq(cmd, "prepare") && (n == 4 || n == 5))
		return cmd_prepare(n, a);
	if (streq(cmd, "teardown"))
		return cmd_teardown(n, a);
	if (streq(cmd, "clone") && n == 2)
		return simple(storage_clone_file(a[0], a[1]));
	if (streq(cmd, "rootbase") && n == 2)
		return cmd_rootbase(a[0], a[1]);
	if (streq(cmd, "workdisk") && n == 2)
		return cmd_workdisk(a[0], a[1]);
	if (streq(cmd, "imagecheck") && n >= 2)
		return cmd_imagecheck(a[0], a + 1);
	fprintf(stderr, "usage: see the comment at the top of tests/helpers/storage-tool.c\n");
	return 2;
}
