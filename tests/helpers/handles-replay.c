/* handles-replay FILE|DIR... — replays tests/fuzz/fuzz_handles.c over its
 * corpus (see replay-main.h). handles.json is read with a 64 KiB bound. */
#include "../fuzz/fuzz_handles.c"

#define REPLAY_MAX_BYTES (64 * 1024)
#include "replay-main.h"
