#pragma once
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>

#include "agents/event_loop.h"
#include "agents/tools/tool.h"
#include "../test_util.h"

namespace swarmfs::test {

// The folder of this file: the tests' scripts live beside it.
inline std::string tools_test_dir() {
    std::string f = __FILE__;
    return f.substr(0, f.rfind('/'));
}

// Calls a tool and waits for its answer, which must come on the loop thread.
inline ToolResult call_tool(EventLoop& loop, Tool& tool, nlohmann::json args, double seconds = 30) {
    auto p = std::make_shared<std::promise<ToolResult>>();
    auto f = p->get_future();
    tool.call(std::move(args), [p, &loop](ToolResult r) {
        EXPECT_TRUE(loop.in_loop()) << "done ran off the loop thread";
        p->set_value(std::move(r));
    });
    if (f.wait_for(std::chrono::milliseconds(static_cast<int>(seconds * 1000))) !=
        std::future_status::ready) {
        ADD_FAILURE() << "no answer from " << tool.spec().name << " within " << seconds << " s";
        return {false, "<no answer>"};
    }
    return f.get();
}

inline std::string read_file(const std::string& path) {
    FILE* f = fopen(path.c_str(), "r");
    if (!f) return "";
    std::string s;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
    fclose(f);
    return s;
}

}  // namespace swarmfs::test
