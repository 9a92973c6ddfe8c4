/* Unit tests for controller/spec: defaults, every field, every kind of
 * diagnostic, canonical JSON and hash rules, round trip, boot equality,
 * the file-name filter, and hostile inputs generated here (alias bomb,
 * deep nesting, oversize, bad UTF-8, many documents) under a time bound. */
#include "spec/spec.h"
#include "tap.h"

#include <stdio.h>
#include <time.h>

/* Not a speed target (those live in bench/): a bound generous enough for a
 * loaded 2-core CI machine under ASan that still catches a parser gone
 * quadratic on hostile input (400k elements quadratic take minutes). Typical
 * times are ~10 ms plain. */
#if defined(__SANITIZE_ADDRESS__)
#define TIME_BUDGET_MS 20000.0 /* ASan/UBSan slow everything down ~10x */
#else
#define TIME_BUDGET_MS 5000.0
#endif

#define BASE                                                                                       \
	"apiVersion: banger/v1\n"                                                                  \
	"kind: VM\n"                                                                               \
	"metadata:\n"                                                                              \
	"  name: web-1\n"                                                                          \
	"spec:\n"                                                                                  \
	"  kernel:\n"                                                                              \
	"    path: /k\n"                                                                           \
	"  rootfs:\n"                                                                              \
	"    path: /r\n"

static SpecFile *parse(const char *text)
{
	SpecFile *f = NULL;
	int r = spec_parse_buffer("t.yaml", text, strlen(text), &f);
	if (r < 0)
		abort();
	return f;
}

static char *all_diags(const SpecFile *f)
{
	char *out = xstrdup("");
	for (size_t i = 0; i < f->diags.n; i++) {
		_cleanup_free_ char *l = diag_format(&f->diags.items[i]);
		char *n = xasprintf("%s%s\n", out, l);
		free(out);
		out = n;
	}
	return out;
}

/* Parses BASE + extra, expects exactly one valid doc; returns its spec. */
static VmSpec *parse_valid(const char *extra)
{
	_cleanup_free_ char *text = xasprintf(BASE "%s", extra);
	_cleanup_(spec_file_freep) SpecFile *f = parse(text);
	_cleanup_free_ char *d = all_diags(f);

	if (f->n_docs != 1 || !f->docs[0].spec || f->diags.n) {
		printf("# unexpected problems:\n%s", d);
		return NULL;
	}
	return TAKE_PTR(f->docs[0].spec);
}

static void test_defaults(void)
{
	_cleanup_(vm_spec_freep) VmSpec *s = parse_valid("");

	CHECK(s != NULL, "minimal spec is valid");
	if (!s)
		return;
	CHECK_STREQ(s->name, "web-1", "name");
	CHECK_INTEQ(s->n_labels, 0, "no labels");
	CHECK_INTEQ(s->state, VM_STATE_RUNNING, "state defaults to Running");
	CHECK(s->node == NULL, "node unset");
	CHECK_INTEQ(s->vmm, VMM_KIND_DEFAULT, "vmm unset means controller default");
	CHECK_INTEQ(s->vcpus, 1, "vcpus default 1");
	CHECK_INTEQ(s->memory_mib, 256, "memoryMiB default 256");
	CHECK_STREQ(s->kernel_path, "/k", "kernel.path");
	CHECK(s->kernel_args == NULL && s->initrd_path == NULL, "args and initrd unset");
	CHECK_STREQ(s->rootfs_path, "/r", "rootfs.path");
	CHECK_INTEQ(s->work_disk_mib, 0, "no work disk");
	CHECK(s->network_enabled, "network enabled by default");
	CHECK(s->guest_ip == NULL && s->mac == NULL, "guestIP and mac unset");
	CHECK_INTEQ(s->readiness_tcp_port, 0, "no readiness probe");
	CHECK_INTEQ(s->readiness_timeout_s, 120, "timeoutSeconds default 120");
	CHECK_INTEQ(s->restart_policy, RESTART_ALWAYS, "restartPolicy default Always");
}

static const char full_spec[] = "apiVersion: banger/v1\n"
				"kind: VM\n"
				"metadata:\n"
				"  name: full-1\n"
				"  labels: {tier: front, app: web}\n"
				"spec:\n"
				"  state: Stopped\n"
				"  node: host-a\n"
				"  vmm: qemu\n"
				"  vcpus: 2\n"
				"  memoryMiB: 512\n"
				"  kernel:\n"
				"    path: /images/vmlinux\n"
				"    args: \"console=ttyS0\"\n"
				"    initrd: /images/initrd\n"
				"  rootfs:\n"
				"    path: /images/rootfs.ext4\n"
				"  workDisk:\n"
				"    sizeMiB: 1024\n"
				"  network:\n"
				"    enabled: true\n"
				"    guestIP: 172.16.0.10\n"
				"    mac: 06:00:AC:10:00:0A\n"
				"  readiness:\n"
				"    tcpPort: 80\n"
				"    timeoutSeconds: 60\n"
				"  restartPolicy: OnFailure\n";

static void test_every_field(void)
{
	_cleanup_(spec_file_freep) SpecFile *f = parse(full_spec);
	VmSpec *s = f->n_docs == 1 ? f->docs[0].spec : NULL;

	CHECK(s != NULL && f->diags.n == 0, "full spec is valid");
	if (!s)
		return;
	CHECK_INTEQ(s->n_labels, 2, "two labels");
	CHECK_STREQ(s->labels[0].key, "app", "labels sorted by key");
	CHECK_STREQ(s->labels[1].value, "front", "label value");
	CHECK_INTEQ(s->state, VM_STATE_STOPPED, "state");
	CHECK_STREQ(s->node, "host-a", "node");
	CHECK_INTEQ(s->vmm, VMM_KIND_QEMU, "vmm");
	CHECK_INTEQ(s->vcpus, 2, "vcpus");
	CHECK_INTEQ(s->memory_mib, 512, "memoryMiB");
	CHECK_STREQ(s->kernel_path, "/images/vmlinux", "kernel.path");
	CHECK_STREQ(s->kernel_args, "console=ttyS0", "kernel.args");
	CHECK_STREQ(s->initrd_path, "/images/initrd", "kernel.initrd");
	CHECK_STREQ(s->rootfs_path, "/images/rootfs.ext4", "rootfs.path");
	CHECK_INTEQ(s->work_disk_mib, 1024, "workDisk.sizeMiB");
	CHECK(s->network_enabled, "network.enabled");
	CHECK_STREQ(s->guest_ip, "172.16.0.10", "network.guestIP");
	CHECK_STREQ(s->mac, "06:00:ac:10:00:0a", "network.mac is lower-cased");
	CHECK_INTEQ(s->readiness_tcp_port, 80, "readiness.tcpPort");
	CHECK_INTEQ(s->readiness_timeout_s, 60, "readiness.timeoutSeconds");
	CHECK_INTEQ(s->restart_policy, RESTART_ON_FAILURE, "restartPolicy");
	CHECK_INTEQ(f->docs[0].line, 1, "document line");
	CHECK_INTEQ(f->docs[0].name_line, 4, "name line");
	CHECK_INTEQ(f->docs[0].name_col, 9, "name column");
	CHECK(f->docs[0].name_valid, "name_valid");
}

/* Each case: text appended to BASE (or a whole document when it starts
 * with "apiVersion" or "!"), and a substring the diagnostics must hold. */
/* One row per case, aligned by hand: */
/* clang-format off */
static const struct {
	const char *text, *expect;
} error_cases[] = {
	{ "  vcpus: 64\n", "t.yaml:10:10: spec.vcpus: must be an integer between 1 and 32, got \"64\"" },
	{ "  vcpus: 0\n", "spec.vcpus: must be an integer between 1 and 32, got \"0\"" },
	{ "  vcpus: \"2\"\n", "spec.vcpus: must be an integer between 1 and 32, got the quoted string \"2\"" },
	{ "  vcpus: 1.5\n", "spec.vcpus: must be an integer between 1 and 32, got \"1.5\"" },
	{ "  vcpus: [1]\n", "spec.vcpus: must be an integer between 1 and 32, got a sequence" },
	{ "  vcpus: 99999999999999999999999\n", "spec.vcpus: must be an integer between 1 and 32" },
	{ "  memoryMiB: 64\n", "spec.memoryMiB: must be an integer between 128 and 262144, got \"64\"" },
	{ "  memoryMB: 256\n", "10:3: spec.memoryMB: unknown field; did you mean memoryMiB? (allowed: state, node" },
	{ "  VCPUS: 2\n", "spec.VCPUS: unknown field; did you mean vcpus?" },
	{ "  zzz: 2\n", "spec.zzz: unknown field (allowed: state, node, vmm, vcpus, memoryMiB, kernel, rootfs, workDisk, network, readiness, restartPolicy)" },
	{ "  state: running\n", "spec.state: must be one of Running, Stopped, Suspended, got \"running\" (did you mean Running?)" },
	{ "  restartPolicy: Sometimes\n", "spec.restartPolicy: must be one of Always, OnFailure, Never, got \"Sometimes\"" },
	{ "  vmm: kvm\n", "spec.vmm: must be one of firecracker, qemu, got \"kvm\"" },
	{ "  node: Host_A\n", "spec.node: must be a host name" },
	{ "  node:\n", "spec.node: must be a string, got null (an empty value)" },
	{ "  workDisk: {}\n", "spec.workDisk.sizeMiB: required field is missing" },
	{ "  workDisk: {sizeMiB: 4}\n", "spec.workDisk.sizeMiB: must be an integer between 8 and 1048576, got \"4\"" },
	{ "  network: {enabled: yes}\n", "spec.network.enabled: must be true or false, got \"yes\"" },
	{ "  network: {guestIP: 10.0.0.256}\n", "spec.network.guestIP: must be an IPv4 address like 172.16.0.10, got \"10.0.0.256\"" },
	{ "  network: {guestIP: 01.2.3.4}\n", "spec.network.guestIP: must be an IPv4 address" },
	{ "  network: {guestIP: 239.1.1.1}\n", "spec.network.guestIP: must be a unicast IPv4 address" },
	{ "  network: {mac: 06:00:ac:10:00}\n", "spec.network.mac: must be a MAC address like 06:00:ac:10:00:0a" },
	{ "  network: {mac: 03:00:ac:10:00:0a}\n", "spec.network.mac: must be a unicast MAC address" },
	{ "  network: {enabled: false}\n  readiness: {tcpPort: 80}\n", "spec.readiness.tcpPort: a TCP readiness probe needs the network" },
	{ "  readiness: {tcpPort: 0}\n", "spec.readiness.tcpPort: must be an integer between 1 and 65535, got \"0\"" },
	{ "  readiness: {timeoutSeconds: 3601}\n", "spec.readiness.timeoutSeconds: must be an integer between 1 and 3600" },
	{ "  readiness: 5\n", "spec.readiness: must be a mapping (with fields tcpPort, timeoutSeconds), got the number 5" },
	{ "  vcpus: 1\n  vcpus: 2\n", "t.yaml:11:3: spec.vcpus: duplicate key \"vcpus\" (first defined at line 10)" },
	{ "  vcpus: !!int 2\n", "spec.vcpus: YAML tags (!!int) are not supported" },
	{ "  network: &n {enabled: true}\n  readiness: *n\n", "spec.network: YAML anchors (&n) are not supported" },
	{ "  network: &n {enabled: true}\n  readiness: *n\n", "spec.readiness: YAML aliases (*n) are not supported" },
	{ "  ? [a]\n  : b\n", "mapping keys must be strings, got a sequence" },
	{ "apiVersion: banger/v2\nkind: VM\nmetadata: {name: a}\nspec: {kernel: {path: /k}, rootfs: {path: /r}}\n",
	  "t.yaml:1:13: apiVersion: must be \"banger/v1\", got \"banger/v2\"" },
	{ "apiVersion: banger/v1\nkind: Pod\nmetadata: {name: a}\nspec: {kernel: {path: /k}, rootfs: {path: /r}}\n",
	  "kind: must be \"VM\", got \"Pod\"" },
	{ "apiVersion: banger/v1\nkind: VM\nmetadata: {name: a}\n", "t.yaml:1:1: spec: required field is missing" },
	{ "apiVersion: banger/v1\nkind: VM\nmetadata: {}\nspec: {kernel: {path: /k}, rootfs: {path: /r}}\n",
	  "metadata.name: required field is missing" },
	{ "apiVersion: banger/v1\nkind: VM\nmetadata: {name: ../../etc/passwd}\nspec: {kernel: {path: /k}, rootfs: {path: /r}}\n",
	  "metadata.name: must be a DNS-1123 label (1-63 characters a-z, 0-9 and '-', starting and ending with a letter or digit), got \"../../etc/passwd\"" },
	{ "apiVersion: banger/v1\nkind: VM\nmetadata: {name: 12}\nspec: {kernel: {path: /k}, rootfs: {path: /r}}\n",
	  "metadata.name: must be a string, got the number 12 (quote it if you mean a string)" },
	{ "apiVersion: banger/v1\nkind: VM\nmetadata: {name: a, labels: {v: 2}}\nspec: {kernel: {path: /k}, rootfs: {path: /r}}\n",
	  "metadata.labels.v: must be a string, got the number 2" },
	{ "apiVersion: banger/v1\nkind: VM\nmetadata: {name: a, labels: {-x: y}}\nspec: {kernel: {path: /k}, rootfs: {path: /r}}\n",
	  "metadata.labels.-x: label key must be 1-63 characters" },
	{ "apiVersion: banger/v1\nkind: VM\nmetadata: {name: a, labels: [x]}\nspec: {kernel: {path: /k}, rootfs: {path: /r}}\n",
	  "metadata.labels: must be a mapping of label names to strings, got a sequence" },
	{ "apiVersion: banger/v1\nkind: VM\nmetadata: {name: a}\nspec: {kernel: {path: vmlinux}, rootfs: {path: /r}}\n",
	  "spec.kernel.path: must be an absolute path (starting with /), got \"vmlinux\"" },
	{ "apiVersion: banger/v1\nkind: VM\nmetadata: {name: a}\nspec: {kernel: {path: /k, initrd: i}, rootfs: {path: /r}}\n",
	  "spec.kernel.initrd: must be an absolute path" },
	{ "apiVersion: banger/v1\nkind: VM\nmetadata: {name: a}\nspec: {kernel: {path: \"/k\\0x\"}, rootfs: {path: /r}}\n",
	  "spec.kernel.path: must not contain NUL bytes" },
	{ "apiVersion: banger/v1\nkind: VM\nmetadata: {name: a}\nspec: {kernel: {path: \"/k\\tx\"}, rootfs: {path: /r}}\n",
	  "spec.kernel.path: must not contain control characters, got \"/k\\x09x\"" },
	{ "apiVersion: banger/v1\nkind: VM\nmetadata: {name: a}\nspec: {kernel: {path: /k, args: \"a\\nb\"}, rootfs: {path: /r}}\n",
	  "spec.kernel.args: must be printable ASCII" },
	{ "apiVersion: banger/v1\nkind: VM\nmetadata: {name: a}\nspec: {kernel: {path: /k}}\n",
	  "spec.rootfs: required field is missing" },
	{ "apiVersion: banger/v1\nkind: VM\nmetadata: {name: a}\nspec: 5\n",
	  "spec: must be a mapping (with fields state, node" },
	{ "- a\n- b\n", "t.yaml:1:1: a document must be a mapping with apiVersion, kind, metadata and spec, got a sequence" },
	{ "apiVersion: banger/v1\nkind: VM\nmetadata: {name: a}\nspec: {kernel: {path: /k}, rootfs: {path: /r}}\nstatus: {}\n",
	  "t.yaml:5:1: status: unknown field (allowed: apiVersion, kind, metadata, spec)" },
	{ "apiVersion: banger/v1\nkind: VM\nmetadata: {name: a\n", "YAML syntax error" },
};
/* clang-format on */

static void test_errors(void)
{
	for (size_t i = 0; i < ELEMENTSOF(error_cases); i++) {
		const char *t = error_cases[i].text;
		bool whole = startswith(t, "apiVersion") || startswith(t, "- ");
		_cleanup_free_ char *text = whole ? xstrdup(t) : xasprintf(BASE "%s", t);
		_cleanup_(spec_file_freep) SpecFile *f = parse(text);
		_cleanup_free_ char *d = all_diags(f);
		bool found = strstr(d, error_cases[i].expect) != NULL;
		bool invalid = f->n_docs == 0 || !f->docs[0].spec;
		CHECK(found && invalid, "error case %zu: %s", i, error_cases[i].expect);
		if (!found)
			printf("# got:\n%s", d);
	}
}

static void test_keeps_going(void)
{
	_cleanup_(spec_file_freep) SpecFile *f = parse(BASE "  vcpus: 64\n  memoryMiB: 1\n"
							    "  state: Up\n  bogus: 1\n");
	CHECK_INTEQ(f->diags.n, 4, "four problems reported in one pass");
	CHECK(!f->unreadable, "a validation error does not make the file unreadable");
	CHECK(f->diags.n == 4 && f->diags.items[0].line < f->diags.items[3].line,
	      "diagnostics in file order");
}

static void test_bad_name_never_a_path(void)
{
	_cleanup_(spec_file_freep) SpecFile *f =
		parse("apiVersion: banger/v1\nkind: VM\nmetadata: {name: ../../etc/passwd}\n"
		      "spec: {kernel: {path: /k}, rootfs: {path: /r}}\n");
	CHECK(f->n_docs == 1 && !f->docs[0].spec, "document with a bad name is invalid");
	CHECK(f->n_docs == 1 && !f->docs[0].name_valid, "name_valid is false");
	CHECK(f->n_docs == 1 && streq_ptr(f->docs[0].name, "../../etc/passwd"),
	      "name is kept for status");
}

static void test_multi_document(void)
{
	_cleanup_(spec_file_freep) SpecFile *f =
		parse("# comment\n" BASE "---\n"
		      "apiVersion: banger/v1\nkind: VM\nmetadata: {name: b}\nspec: {vcpus: 99}\n"
		      "---\n---\n"
		      "apiVersion: banger/v1\nkind: VM\nmetadata: {name: web-1}\n"
		      "spec: {kernel: {path: /k}, rootfs: {path: /r}}\n"
		      "---\n"
		      "apiVersion: banger/v1\nkind: VM\nmetadata: {name: c}\n"
		      "spec: {kernel: {path: /k}, rootfs: {path: /r}}\n");
	_cleanup_free_ char *d = all_diags(f);

	CHECK_INTEQ(f->n_docs, 4, "four documents (the empty one is skipped)");
	if (f->n_docs != 4)
		return;
	CHECK(f->docs[0].spec && !f->docs[1].spec && !f->docs[2].spec && f->docs[3].spec,
	      "valid documents keep their VmSpec next to invalid ones");
	CHECK(!f->unreadable, "file is readable");
	if (!strstr(d, "20:18: metadata.name: duplicate"))
		printf("# got:\n%s", d);
	CHECK_INTEQ(f->docs[1].line, 11, "second document starts at its ---");
	CHECK(strstr(d, "t.yaml:20:18: metadata.name: duplicate name \"web-1\": already defined "
			"at line 5") != NULL,
	      "duplicate name in one file names the first");
	CHECK(streq_ptr(f->docs[1].name, "b"), "invalid document keeps its name");
}

static void test_unreadable(void)
{
	_cleanup_(spec_file_freep) SpecFile *f = parse(BASE "---\nkey: [unclosed\n");
	_cleanup_(spec_file_freep) SpecFile *g = NULL;

	CHECK(f->unreadable, "syntax error makes the file unreadable");
	CHECK(f->n_docs == 1 && f->docs[0].spec, "documents before the error are kept");
	int r = spec_parse_file("/nonexistent/x.yaml", &g);
	CHECK(r == 0 && g && g->unreadable && g->diags.n == 1,
	      "missing file is an unreadable SpecFile with one diagnostic");
}

static char *canon_of(const char *text)
{
	_cleanup_(spec_file_freep) SpecFile *f = parse(text);
	if (f->n_docs != 1 || !f->docs[0].spec)
		return xstrdup("(invalid)");
	return vm_spec_to_canonical_json(f->docs[0].spec);
}

static void test_canonical(void)
{
	_cleanup_free_ char *a = canon_of(BASE);
	_cleanup_free_ char *b = canon_of("# a comment\nspec:\n  rootfs: {path: \"/r\"}  # why\n"
					  "  kernel:\n    path: '/k'\nmetadata:\n  name: web-1\n"
					  "kind: VM\napiVersion: banger/v1\n");
	_cleanup_free_ char *c = canon_of(BASE "  state: Running\n  vcpus: 1\n  memoryMiB: 256.0\n"
					       "  network: {enabled: true}\n"
					       "  readiness: {timeoutSeconds: 120}\n"
					       "  restartPolicy: Always\n");
	_cleanup_free_ char *j =
		canon_of("{\"apiVersion\":\"banger/v1\",\"kind\":\"VM\",\"metadata\":"
			 "{\"name\":\"web-1\",\"labels\":{}},\"spec\":{\"kernel\":{"
			 "\"path\":\"/k\"},\"rootfs\":{\"path\":\"/r\"}}}");

	CHECK_STREQ(a,
		    "{\"apiVersion\":\"banger/v1\",\"kind\":\"VM\",\"metadata\":{\"labels\":{},"
		    "\"name\":\"web-1\"},\"spec\":{\"kernel\":{\"path\":\"/k\"},\"memoryMiB\":256,"
		    "\"network\":{\"enabled\":true},\"readiness\":{\"timeoutSeconds\":120},"
		    "\"restartPolicy\":\"Always\",\"rootfs\":{\"path\":\"/r\"},\"state\":"
		    "\"Running\",\"vcpus\":1}}",
		    "canonical JSON of the minimal spec");
	CHECK_STREQ(b, a, "comments, key order and quoting do not change the canonical form");
	CHECK_STREQ(c, a, "explicitly written defaults do not change the canonical form");
	CHECK_STREQ(j, a, "the JSON form reads the same");

	_cleanup_free_ char *full = canon_of(full_spec);
	CHECK_STREQ(
		full,
		"{\"apiVersion\":\"banger/v1\",\"kind\":\"VM\",\"metadata\":{\"labels\":{\"app\":"
		"\"web\",\"tier\":\"front\"},\"name\":\"full-1\"},\"spec\":{\"kernel\":{\"args\":"
		"\"console=ttyS0\",\"initrd\":\"/images/initrd\",\"path\":\"/images/vmlinux\"},"
		"\"memoryMiB\":512,\"network\":{\"enabled\":true,\"guestIP\":\"172.16.0.10\","
		"\"mac\":\"06:00:ac:10:00:0a\"},\"node\":\"host-a\",\"readiness\":{\"tcpPort\":80,"
		"\"timeoutSeconds\":60},\"restartPolicy\":\"OnFailure\",\"rootfs\":{\"path\":"
		"\"/images/rootfs.ext4\"},\"state\":\"Stopped\",\"vcpus\":2,\"vmm\":\"qemu\","
		"\"workDisk\":{\"sizeMiB\":1024}}}",
		"canonical JSON with every field");
}

static void test_hash(void)
{
	static const char *const edits[] = {
		"  vcpus: 2\n",
		"  memoryMiB: 512\n",
		"  state: Stopped\n",
		"  node: host-a\n",
		"  vmm: qemu\n",
		"  workDisk: {sizeMiB: 64}\n",
		"  network: {enabled: false}\n",
		"  network: {guestIP: 10.0.0.2}\n",
		"  network: {mac: 06:00:00:00:00:01}\n",
		"  readiness: {tcpPort: 80}\n",
		"  readiness: {timeoutSeconds: 5}\n",
		"  restartPolicy: Never\n",
	};
	_cleanup_(vm_spec_freep) VmSpec *base = parse_valid("");
	_cleanup_(vm_spec_freep) VmSpec *same = parse_valid("  vcpus: 1 # default\n");
	char h0[65], h1[65];

	if (!base || !same)
		return;
	vm_spec_hash(base, h0);
	vm_spec_hash(same, h1);
	CHECK_INTEQ(strlen(h0), 64, "hash is 64 hex digits");
	CHECK_STREQ(h0, h1, "explicit default and comment keep the hash");
	for (size_t i = 0; i < ELEMENTSOF(edits); i++) {
		_cleanup_(vm_spec_freep) VmSpec *e = parse_valid(edits[i]);
		if (!e)
			continue;
		vm_spec_hash(e, h1);
		CHECK(!streq(h0, h1), "edit changes the hash: %.*s", (int)strcspn(edits[i], "\n"),
		      edits[i]);
	}
	/* label edit, kernel/rootfs path edits */
	base->kernel_path[1] = 'x';
	vm_spec_hash(base, h1);
	CHECK(!streq(h0, h1), "kernel.path edit changes the hash");
}

static void test_round_trip(void)
{
	_cleanup_(spec_file_freep) SpecFile *f = parse(full_spec);
	_cleanup_(vm_spec_freep) VmSpec *back = NULL, *dup = NULL, *bad = NULL;
	_cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;

	if (!f->n_docs || !f->docs[0].spec)
		return;
	a = vm_spec_to_canonical_json(f->docs[0].spec);
	int r = vm_spec_from_json(a, &back);
	CHECK(r == 0, "canonical JSON reads back");
	b = back ? vm_spec_to_canonical_json(back) : NULL;
	CHECK_STREQ(b, a, "round trip is exact");
	dup = vm_spec_dup(f->docs[0].spec);
	c = vm_spec_to_canonical_json(dup);
	CHECK_STREQ(c, a, "vm_spec_dup is a deep copy");
	r = vm_spec_from_json("{\"apiVersion\":\"banger/v1\"}", &bad);
	CHECK_INTEQ(r, -EINVAL, "incomplete JSON is -EINVAL");
	r = vm_spec_from_json("not json {", &bad);
	CHECK_INTEQ(r, -EINVAL, "garbage is -EINVAL");
	r = vm_spec_from_json("", &bad);
	CHECK_INTEQ(r, -EINVAL, "empty is -EINVAL");
	CHECK(bad == NULL, "out-parameter untouched on failure");
}

static void test_boot_equal(void)
{
	_cleanup_(vm_spec_freep) VmSpec *a = parse_valid("");
	_cleanup_(vm_spec_freep) VmSpec *b = parse_valid("  memoryMiB: 512\n  vcpus: 2\n");
	_cleanup_(vm_spec_freep) VmSpec *c = parse_valid(
		"  state: Stopped\n  node: n1\n  readiness: {tcpPort: 22, timeoutSeconds: 9}\n"
		"  restartPolicy: Never\n");
	_cleanup_(vm_spec_freep) VmSpec *d =
		parse_valid("  vmm: qemu\n  vcpus: 3\n  memoryMiB: 300\n  workDisk: {sizeMiB: 8}\n"
			    "  network: {mac: 06:00:00:00:00:01}\n");
	_cleanup_free_ char *why = NULL, *why2 = NULL, *why3 = NULL;

	if (!a || !b || !c || !d)
		return;
	bool eq = vm_spec_boot_equal(a, b, &why);
	CHECK(!eq, "memory and vcpus change the boot");
	CHECK_STREQ(why,
		    "memoryMiB 256\xe2\x86\x92"
		    "512, vcpus 1\xe2\x86\x92"
		    "2",
		    "summary");
	eq = vm_spec_boot_equal(a, c, &why2);
	CHECK(eq, "state, node, readiness, restart: no reboot");
	CHECK(why2 == NULL, "no summary when equal");
	eq = vm_spec_boot_equal(a, d, &why3);
	CHECK(!eq, "five differences");
	CHECK(why3 && strstr(why3, "and 2 more"), "long summary is cut: %s", why3 ? why3 : "");
	CHECK(vm_spec_boot_equal(a, a, NULL), "NULL why is fine");
}

static void test_candidates(void)
{
	static const struct {
		const char *path;
		bool ok;
	} cases[] = {
		{ "web.yaml", true },
		{ "web.yml", true },
		{ "web.json", true },
		{ "sub/dir/web.yaml", true },
		{ "./web.yaml", true },
		{ "../specs/web.yaml", true },
		{ "/abs/specs/web.yaml", true },
		{ "web.txt", false },
		{ "web.yaml~", false },
		{ ".web.yaml", false },
		{ ".web.yaml.swp", false },
		{ "web.yaml.swp", false },
		{ "web.yaml.swx", false },
		{ "web.yaml.tmp", false },
		{ "#web.yaml#", false },
		{ ".#web.yaml", false },
		{ "web.status.json", false },
		{ ".git/web.yaml", false },
		{ "a/.hidden/web.yaml", false },
		{ "web.YAML", false },
		{ ".yaml", false },
		{ "", false },
		{ "dir/", false },
		{ "web.yaml/", false },
		{ "4913", false },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++)
		CHECK(spec_path_is_candidate(cases[i].path) == cases[i].ok,
		      "candidate(\"%s\") = %s", cases[i].path, cases[i].ok ? "true" : "false");
	CHECK(!spec_path_is_candidate(NULL), "NULL is not a candidate");
}

static void test_enums(void)
{
	CHECK_STREQ(vm_desired_state_to_string(VM_STATE_STOPPED), "Stopped", "state name");
	CHECK_INTEQ(vm_desired_state_from_string("Running"), VM_STATE_RUNNING, "state parse");
	CHECK_INTEQ(vm_desired_state_from_string("running"), -EINVAL, "state is case-sensitive");
	CHECK_STREQ(vmm_kind_to_string(VMM_KIND_FIRECRACKER), "firecracker", "vmm name");
	CHECK_INTEQ(vmm_kind_from_string("qemu"), VMM_KIND_QEMU, "vmm parse");
	CHECK_INTEQ(vmm_kind_from_string("default"), -EINVAL, "default is not writable");
	CHECK_STREQ(restart_policy_to_string(RESTART_ON_FAILURE), "OnFailure", "restart name");
	CHECK_INTEQ(restart_policy_from_string("Never"), RESTART_NEVER, "restart parse");
	CHECK(vm_desired_state_to_string(_VM_STATE_MAX) == NULL, "out of range → NULL");
}

/* ---- hostile input ---- */

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void hostile(const char *what, const char *data, size_t len, const char *expect,
		    bool unreadable)
{
	_cleanup_(spec_file_freep) SpecFile *f = NULL;
	double t0 = now_ms(), dt;

	int r = spec_parse_buffer("h.yaml", data, len, &f);
	dt = now_ms() - t0;
	CHECK(r == 0 && f, "%s: parses", what);
	if (!f)
		return;
	_cleanup_free_ char *d = all_diags(f);
	CHECK(dt < TIME_BUDGET_MS, "%s: %.1f ms", what, dt);
	CHECK(strstr(d, expect) != NULL, "%s: reports \"%s\"", what, expect);
	if (!strstr(d, expect))
		printf("# got: %.300s\n", d);
	CHECK(f->unreadable == unreadable, "%s: unreadable=%d", what, unreadable);
	CHECK(f->diags.n <= SPEC_MAX_DIAGS + 2, "%s: bounded diagnostics (%zu)", what, f->diags.n);
}

static char *repeat(const char *head, const char *unit, size_t n, const char *tail, size_t *len)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	char *s = xmalloc(hl + ul * n + tl + 1), *p = s;

	memcpy(p, head, hl), p += hl;
	for (size_t i = 0; i < n; i++)
		memcpy(p, unit, ul), p += ul;
	memcpy(p, tail, tl), p += tl;
	*p = 0;
	*len = (size_t)(p - s);
	return s;
}

static void test_hostile(void)
{
	static const char bomb[] =
		"a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
		"b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
		"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
		"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
		"e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
		"f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
		"g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
		"h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
		"i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
	_cleanup_free_ char *deep = NULL, *big = NULL, *docs = NULL, *wide = NULL, *huge = NULL,
			    *dupkeys = NULL, *blockdeep = NULL;
	size_t len;

	hostile("alias bomb", bomb, strlen(bomb), "YAML aliases (*a) are not supported", false);
	deep = repeat("", "[", 100000, "", &len);
	hostile("100k-deep flow nesting", deep, len, "YAML nesting deeper than 32 levels", true);
	blockdeep = repeat("", "- ", 50000, "x\n", &len);
	hostile("50k-deep block nesting", blockdeep, len, "nesting deeper than 32", true);
	big = repeat("# ", "x", 2 * 1024 * 1024, "\n", &len);
	hostile("2 MiB file", big, len, "h.yaml:0:0: file is larger than the 1048576 byte limit",
		true);
	hostile("invalid UTF-8", "apiVersion: banger/v1\nkind: \xff\n", 29,
		"h.yaml:2:7: file is not valid UTF-8 (byte 0xff at offset 28)", true);
	hostile("overlong UTF-8", "a: \xc0\xaf\n", 6, "not valid UTF-8", true);
	hostile("UTF-16 surrogate in UTF-8", "a: \xed\xa0\x80\n", 7, "not valid UTF-8", true);
	hostile("UTF-16 BOM",
		"\xff\xfe"
		"a\0:\0",
		6, "not valid UTF-8", true);
	hostile("NUL byte", "a: b\0c\n", 7, "YAML syntax error", true);
	docs = repeat("", "---\na: 1\n", 2000, "", &len);
	hostile("2000 documents", docs, len, "more than 1024 YAML documents", true);
	wide = repeat("[", "1,", 400000, "1]", &len);
	hostile("400k-element sequence", wide, len, "more than 100000 YAML nodes", true);
	huge = repeat(BASE "  node: ", "a", 1000000, "\n", &len);
	hostile("1 MB scalar", huge, len, "spec.node: must be a host name", false);
	dupkeys = repeat("{", "k: 1, ", 40000, "k: 1}", &len);
	hostile("40k duplicate keys", dupkeys, len, "too many problems; only the first 200", false);
}

int main(void)
{
	test_defaults();
	test_every_field();
	test_errors();
	test_keeps_going();
	test_bad_name_never_a_path();
	test_multi_document();
	test_unreadable();
	test_canonical();
	test_hash();
	test_round_trip();
	test_boot_equal();
	test_candidates();
	test_enums();
	test_hostile();
	return tap_done();
}
