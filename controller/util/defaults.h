/* defaults.h — where banger keeps things unless told otherwise. One place,
 * so bangerd, banger, the unit file and the docs agree.
 *
 * The layout follows the FHS and keeps a GitOps checkout clean: specs are
 * configuration (/etc), status is volatile output that must never land in the
 * spec dir a git-sync or Flux owns (/run), the database and VM disks are
 * state (/var/lib), sockets and locks are runtime (/run). Each has the same
 * environment variable in bangerd and banger. */
#pragma once

#include <stdlib.h>

#define BANGER_DEFAULT_SPEC_DIR    "/etc/banger/vms"
#define BANGER_DEFAULT_STATUS_DIR  "/run/banger/status"
#define BANGER_DEFAULT_STATE_DIR   "/var/lib/banger"
#define BANGER_DEFAULT_RUNTIME_DIR "/run/banger"
#define BANGER_DEFAULT_IMAGE_DIR   "/var/lib/banger/images"
#define BANGER_DEFAULT_BRIDGE      "banger0"
#define BANGER_DEFAULT_CIDR        "172.16.0.1/24"
#define BANGER_DEFAULT_RESYNC_S    60

#define BANGER_ENV_SPEC_DIR    "BANGER_SPEC_DIR"
#define BANGER_ENV_STATUS_DIR  "BANGER_STATUS_DIR"
#define BANGER_ENV_STATE_DIR   "BANGER_STATE_DIR"
#define BANGER_ENV_RUNTIME_DIR "BANGER_RUNTIME_DIR"

/* The one spelling of "flag, else environment variable, else default":
 * returns the variable's value when set and non-empty, else def. */
static inline const char *banger_env_or(const char *name, const char *def)
{
	const char *v = getenv(name);
	return v && *v ? v : def;
}
