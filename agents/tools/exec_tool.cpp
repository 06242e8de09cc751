#include "agents/tools/exec_tool.h"

#include <unistd.h>

#include <cstdio>

#include "agents/exec_process.h"
#include "agents/sandbox.h"
#include "agents/tools/json_schema.h"

extern char** environ;

namespace swarmfs {

namespace {
using json = nlohmann::json;

constexpr size_t kMaxStdout = 1 << 20;  // what a model can use, and more
constexpr size_t kMaxStderr = 64 << 10;

void append_capped(std::string& to, std::string_view data, size_t cap, bool& truncated) {
    if (to.size() >= cap) {
        truncated = truncated || !data.empty();
        return;
    }
    size_t take = std::min(data.size(), cap - to.size());
    to.append(data.substr(0, take));
    if (take < data.size()) truncated = true;
}

// The first few lines of a program's complaint, for the model to read.
std::string first_lines(const std::string& text, size_t max_lines = 5, size_t max_chars = 2000) {
    size_t b = text.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return "";
    std::string out;
    size_t lines = 0, pos = b;
    while (pos < text.size() && lines < max_lines) {
        size_t nl = text.find('\n', pos);
        std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        if (!line.empty()) {
            out += (out.empty() ? "" : "\n") + line;
            ++lines;
        }
        if (nl == std::string::npos) break;
        pos = nl + 1;
    }
    if (out.size() > max_chars) out = out.substr(0, max_chars) + "...";
    return out;
}

class ExecTool : public Tool, public std::enable_shared_from_this<ExecTool> {
  public:
    ExecTool(EventLoop& loop, ExecToolConfig c) : loop_(loop), c_(std::move(c)) {
        auto env = c_.env;
        env["SWARMFS_TOOL"] = c_.spec.name;
        env_ = tool_environment(env);
        if (!c_.argv.empty()) {
            std::string resolved = resolve_tool_command(c_.argv[0], c_.workdir);
            if (!resolved.empty() && c_.argv[0].find('/') != std::string::npos)
                c_.argv[0] = resolved;
        }
    }

    const ToolSpec& spec() const override { return c_.spec; }

    void call(json args, std::function<void(ToolResult)> done, ToolContext ctx) override {
        if (Status st = validate_json(c_.spec.parameters, args); !st) {
            std::string why = "invalid arguments for " + c_.spec.name + ": " + st.error().message;
            loop_.post([done = std::move(done), why] { done({false, why}); });
            return;
        }
        loop_.post([self = shared_from_this(), args = std::move(args), done = std::move(done),
                    ctx = std::move(ctx)]() mutable { self->run(args, std::move(done), ctx); });
    }

  private:
    struct Run {
        std::string out, err;
        bool out_truncated = false, err_truncated = false, timed_out = false;
        std::shared_ptr<ExecProcess> proc;
        EventLoop::TimerId timer = 0;
        std::function<void(ToolResult)> done;
    };

    void run(const json& args, std::function<void(ToolResult)> done, const ToolContext& ctx) {
        auto r = std::make_shared<Run>();
        r->done = std::move(done);
        ExecSpec spec;
        spec.argv = c_.argv;
        spec.env = env_;
        spec.cwd = c_.workdir;
        spec.input = args.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
        if (ctx.wrap) {
            if (auto st = ctx.wrap(spec, c_.read); !st) {
                r->done({false, "cannot run tool " + c_.spec.name + ": " + st.error().message});
                return;
            }
        }
        ExecCallbacks cb;
        cb.on_stdout = [r](std::string_view d) {
            append_capped(r->out, d, kMaxStdout, r->out_truncated);
        };
        cb.on_stderr = [r](std::string_view d) {
            append_capped(r->err, d, kMaxStderr, r->err_truncated);
        };
        cb.on_exit = [r, &loop = loop_, timeout = c_.timeout,
                      boxed = static_cast<bool>(ctx.wrap)](const ExitInfo& e) {
            if (r->timer) loop.cancel(r->timer);
            r->proc.reset();  // the caller holds it until we return
            ToolResult res;
            if (r->timed_out) {
                res.content = "timed out after " + format_seconds(timeout) + " s";
            } else if (e.ok) {
                res.ok = true;
                res.content = std::move(r->out);
                if (!res.content.empty() && res.content.back() == '\n') res.content.pop_back();
                if (r->out_truncated)
                    res.content +=
                        "\n[output truncated at " + std::to_string(kMaxStdout) + " bytes]";
            } else {
                std::string detail = first_lines(r->err);
                if (detail.empty()) detail = first_lines(r->out);
                std::string reason = boxed ? sandboxed_exit_reason(e.reason) : e.reason;
                res.content = reason + (detail.empty() ? "" : ": " + detail);
            }
            auto done = std::move(r->done);
            done(std::move(res));
        };
        auto p = ExecProcess::start(loop_, std::move(spec), std::move(cb));
        if (!p) {
            r->done({false, "cannot run tool " + c_.spec.name + ": " + p.error().message});
            return;
        }
        r->proc = *p;
        std::weak_ptr<Run> weak = r;
        r->timer = loop_.after(c_.timeout, [weak] {
            auto run = weak.lock();
            if (!run || !run->proc) return;
            run->timer = 0;
            run->timed_out = true;
            run->proc->kill();
        });
    }

    EventLoop& loop_;
    ExecToolConfig c_;
    std::vector<std::string> env_;
};
}  // namespace

std::shared_ptr<Tool> make_exec_tool(EventLoop& loop, ExecToolConfig config) {
    return std::make_shared<ExecTool>(loop, std::move(config));
}

std::vector<std::string> tool_environment(const std::map<std::string, std::string>& extra) {
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) {
        std::string kv = *e;
        auto eq = kv.find('=');
        if (eq != std::string::npos && extra.count(kv.substr(0, eq))) continue;
        env.push_back(std::move(kv));
    }
    for (auto& [k, v] : extra) env.push_back(k + "=" + v);
    return env;
}

std::string resolve_tool_command(const std::string& argv0, const std::string& workdir) {
    if (argv0.empty()) return "";
    if (argv0.find('/') != std::string::npos && argv0[0] != '/' && !workdir.empty())
        return resolve_command(workdir + "/" + argv0);
    return resolve_command(argv0);
}

std::string format_seconds(double seconds) {
    char buf[32];
    snprintf(buf, sizeof buf, "%g", seconds);
    return buf;
}

}  // namespace swarmfs
