#pragma once
// ctl files take commands by name. Each ctl file has a table of
// name -> handler; the dispatcher does the parsing and the error words, so a
// handler only does its one job.
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "vault/result.h"

namespace swarmfs {

struct CommandArgs {
    std::vector<std::string> words;  // the arguments after the command name
    std::string rest;                // everything after the command name, trimmed
};

struct Command {
    std::string name;
    std::string usage;  // e.g. "spawn NAME [JSON | key=value ...]"
    size_t min_args = 0;
    size_t max_args = 0;  // SIZE_MAX: any
    std::function<Status(const CommandArgs&)> run;
};

using CommandTable = std::vector<Command>;

// Runs each non-empty line of text (lines starting with '#' are comments)
// through the table, in order, stopping at the first error.
Status run_commands(const CommandTable& table, std::string_view text);

std::vector<std::string> split_words(std::string_view s);
std::string_view trim(std::string_view s);

}  // namespace swarmfs
