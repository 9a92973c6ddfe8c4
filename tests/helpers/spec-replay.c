/* spec-replay FILE|DIR... — replays tests/fuzz/fuzz_spec.c over its corpus
 * (see replay-main.h). */
#include "../fuzz/fuzz_spec.c"

#define REPLAY_MAX_BYTES (4 * SPEC_MAX_FILE_BYTES)
#include "replay-main.h"
