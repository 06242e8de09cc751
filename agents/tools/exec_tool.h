#pragma once
// An exec tool: one child process per call. The arguments go to its stdin as
// one line of JSON; its stdout (less one trailing newline) is the result.
//   non-zero exit     ok=false "exit status 2: <first lines of stderr>"
//   past the timeout  the process group is killed; ok=false "timed out after 30 s"
// The child runs in the registry's workdir with the server's environment,
// the tool's env entries and SWARMFS_TOOL=NAME.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agents/event_loop.h"
#include "agents/tools/tool.h"

namespace swarmfs {

struct ExecToolConfig {
    ToolSpec spec;
    std::vector<std::string> argv;  // argv[0] with a '/' is relative to workdir
    std::map<std::string, std::string> env;
    double timeout = 30;  // seconds
    std::string workdir;
    std::vector<std::string> read;  // host folders its sandbox shows too (read-only)
};

std::shared_ptr<Tool> make_exec_tool(EventLoop& loop, ExecToolConfig config);

// The environment of a tool's child: this process's environment with extra
// set on top (KEY=VALUE strings, as ExecSpec::env wants them).
std::vector<std::string> tool_environment(const std::map<std::string, std::string>& extra);

// argv0 as a child in workdir would run it: "./x" and "bin/x" are taken
// relative to workdir, a bare name is looked up on PATH. Empty if not found.
std::string resolve_tool_command(const std::string& argv0, const std::string& workdir);

// "30", "0.5": seconds as messages show them.
std::string format_seconds(double seconds);

}  // namespace swarmfs
