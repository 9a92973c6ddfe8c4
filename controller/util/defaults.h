/* defaults.h — where banger keeps things unless told otherwise. One place,
 * so bangerd, banger and the docs agree. */
#pragma once

#define BANGER_DEFAULT_STATE_DIR "/var/lib/banger"
#define BANGER_DEFAULT_SPEC_DIR "/var/lib/banger/specs"
#define BANGER_DEFAULT_RUNTIME_DIR "/run/banger"
#define BANGER_DEFAULT_IMAGE_DIR "/var/lib/banger/images"
#define BANGER_DEFAULT_BRIDGE "banger0"
#define BANGER_DEFAULT_CIDR "172.16.0.1/24"
#define BANGER_DEFAULT_RESYNC_S 60
