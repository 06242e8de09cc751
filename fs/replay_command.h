#pragma once
// `swarmfs replay --state DIR [filters]`: prints the event history, the log
// everything else is derived from, without mounting anything.
namespace swarmfs {
int replay_command(int argc, char** argv);
}
