/* status-replay FILE|DIR... — replays tests/fuzz/fuzz_status.c over its
 * corpus (see replay-main.h). Status files are read with a 1 MiB bound. */
#include "../fuzz/fuzz_status.c"

#define REPLAY_MAX_BYTES (1024 * 1024)
#include "replay-main.h"
