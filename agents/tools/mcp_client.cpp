#include "agents/tools/mcp_client.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include "agents/tools/exec_tool.h"
#include "agents/tools/json_schema.h"

namespace swarmfs {

namespace {
using json = nlohmann::json;

constexpr size_t kMaxLine = 64u << 20;  // one JSON-RPC message
constexpr size_t kStderrTail = 20;      // lines kept for error messages
constexpr int kMaxPages = 1000;         // of tools/list

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string short_text(std::string s, size_t max = 300) {
    if (s.size() > max) s = s.substr(0, max) + "...";
    return s;
}

// "MCP error -32602: Invalid params"
Error rpc_error(const json& err) {
    std::string msg = "MCP error";
    if (err.is_object()) {
        if (auto c = err.find("code"); c != err.end() && c->is_number_integer())
            msg += " " + std::to_string(c->get<int64_t>());
        if (auto m = err.find("message"); m != err.end() && m->is_string())
            msg += ": " + m->get<std::string>();
        if (auto d = err.find("data"); d != err.end() && !d->is_null())
            msg += " (" + short_text(d->is_string() ? d->get<std::string>() : dump(*d)) + ")";
    } else {
        msg += ": " + short_text(dump(err));
    }
    return make_error(EIO, msg);
}

std::string describe_item(const json& item) {
    std::string type = item.value("type", std::string("?"));
    auto str = [&](const json& o, const char* key) {
        auto it = o.find(key);
        return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (type == "text") return str(item, "text");
    if (type == "image" || type == "audio") {
        std::string mime = str(item, "mimeType");
        return "[" + type + (mime.empty() ? "" : " " + mime) + "]";
    }
    if (type == "resource") {
        auto r = item.find("resource");
        if (r == item.end() || !r->is_object()) return "[resource]";
        std::string text = str(*r, "text");
        if (!text.empty()) return text;
        std::string uri = str(*r, "uri"), mime = str(*r, "mimeType");
        return "[resource " + uri + (mime.empty() ? "" : " " + mime) + "]";
    }
    if (type == "resource_link") {
        std::string uri = str(item, "uri"), name = str(item, "name");
        return "[resource link " + uri + (name.empty() || name == uri ? "" : " (" + name + ")") +
               "]";
    }
    return "[" + type + " content]";
}
}  // namespace

ToolResult mcp_result_to_tool_result(const json& result) {
    ToolResult r;
    r.ok = !(result.is_object() && result.value("isError", false) == true);
    if (!result.is_object()) {
        r.content = dump(result);
        return r;
    }
    if (auto c = result.find("content"); c != result.end() && c->is_array()) {
        for (auto& item : *c) {
            if (!item.is_object()) continue;
            r.content += (r.content.empty() ? "" : "\n") + describe_item(item);
        }
    }
    if (r.content.empty()) {
        if (auto s = result.find("structuredContent"); s != result.end() && !s->is_null())
            r.content = dump(*s);
    }
    return r;
}

std::shared_ptr<McpServer> McpServer::create(EventLoop& loop, McpServerConfig config) {
    auto s = std::shared_ptr<McpServer>(new McpServer(loop, std::move(config)));
    auto env = s->c_.env;
    env["SWARMFS_TOOL"] = s->c_.name;
    s->env_ = tool_environment(env);
    return s;
}

McpServer::~McpServer() {
    if (start_timer_) loop_.cancel(start_timer_);
    // proc_'s destructor kills the group and reaps the child.
}

void McpServer::kill_now() {
    pid_t pid = pid_.load();
    if (pid > 0) ::kill(-pid, SIGKILL);
}

void McpServer::start(std::function<void(Result<std::vector<McpToolInfo>>)> done) {
    if (state_ == State::stopped) {
        done(make_error(ECANCELED, "MCP server " + c_.name + " is stopped"));
        return;
    }
    if (state_ == State::starting || state_ == State::ready) {
        done(make_error(EBUSY, "MCP server " + c_.name + " is already started"));
        return;
    }
    start_done_ = std::move(done);
    launch(true);
}

void McpServer::launch(bool list_tools) {
    ++generation_;
    uint64_t gen = generation_;
    state_ = State::starting;
    rx_.clear();
    err_partial_.clear();
    err_tail_.clear();
    protocol_version_.clear();

    ExecSpec spec;
    spec.argv = c_.argv;
    std::string resolved = resolve_tool_command(spec.argv[0], c_.workdir);
    if (!resolved.empty() && spec.argv[0].find('/') != std::string::npos) spec.argv[0] = resolved;
    spec.env = env_;
    spec.cwd = c_.workdir;
    if (c_.wrap) {
        if (Status st = c_.wrap(spec); !st) {
            fail_start(
                make_error(st.error().code, "MCP server " + c_.name + ": " + st.error().message));
            return;
        }
    }
    std::weak_ptr<McpServer> weak = shared_from_this();
    ExecCallbacks cb;
    cb.on_stdout = [weak, gen](std::string_view d) {
        if (auto s = weak.lock()) s->on_stdout(gen, d);
    };
    cb.on_stderr = [weak, gen](std::string_view d) {
        if (auto s = weak.lock()) s->on_stderr(gen, d);
    };
    cb.on_exit = [weak, gen](const ExitInfo& e) {
        if (auto s = weak.lock()) s->on_exit(gen, e);
    };
    auto p = ExecProcess::start(loop_, std::move(spec), std::move(cb), ExecMode::conversation);
    if (!p) {
        fail_start(make_error(p.error().code, "MCP server " + c_.name + ": " + p.error().message));
        return;
    }
    proc_ = *p;
    pid_ = proc_->pid();
    spdlog::debug("mcp {}: started pid {}", c_.name, proc_->pid());
    start_timer_ = loop_.after(c_.start_timeout, [weak, gen] {
        auto s = weak.lock();
        if (!s || s->generation_ != gen) return;
        s->start_timer_ = 0;
        s->fail_start(make_error(
            ETIMEDOUT, "MCP server " + s->c_.name + " did not finish its handshake within " +
                           format_seconds(s->c_.start_timeout) + " s" + s->stderr_hint()));
    });
    json params = {{"protocolVersion", kMcpProtocolVersion},
                   {"capabilities", json::object()},
                   {"clientInfo", {{"name", "swarmfs"}, {"version", "0.1"}}}};
    request("initialize", std::move(params), [weak, gen, list_tools](Result<json> r) {
        if (auto s = weak.lock()) s->on_initialized(gen, std::move(r), list_tools);
    });
}

void McpServer::on_initialized(uint64_t gen, Result<json> r, bool list_tools) {
    if (gen != generation_ || state_ != State::starting) return;
    if (!r) {
        fail_start(make_error(
            r.error().code, "MCP server " + c_.name + ": initialize failed: " + r.error().message));
        return;
    }
    const json& res = r.value();
    if (res.is_object()) {
        protocol_version_ = res.value("protocolVersion", std::string());
        if (auto i = res.find("serverInfo"); i != res.end()) server_info_ = *i;
    }
    spdlog::debug("mcp {}: protocol {} server {}", c_.name, protocol_version_, dump(server_info_));
    send({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
    if (list_tools)
        list_page(gen, "", std::make_shared<std::vector<McpToolInfo>>(), 0);
    else
        become_ready();
}

void McpServer::list_page(uint64_t gen, std::string cursor,
                          std::shared_ptr<std::vector<McpToolInfo>> acc, int page) {
    json params = json::object();
    if (!cursor.empty()) params["cursor"] = cursor;
    std::weak_ptr<McpServer> weak = shared_from_this();
    request("tools/list", std::move(params), [weak, gen, acc, page, cursor](Result<json> r) {
        auto s = weak.lock();
        if (!s || gen != s->generation_ || s->state_ != State::starting) return;
        if (!r) {
            s->fail_start(make_error(
                r.error().code,
                "MCP server " + s->c_.name + ": tools/list failed: " + r.error().message));
            return;
        }
        const json& res = r.value();
        auto tools = res.is_object() ? res.find("tools") : res.end();
        if (!res.is_object() || tools == res.end() || !tools->is_array()) {
            s->fail_start(make_error(EPROTO, "MCP server " + s->c_.name +
                                                 ": tools/list answered without a tools array: " +
                                                 short_text(dump(res))));
            return;
        }
        for (auto& t : *tools) {
            if (!t.is_object() || !t.contains("name") || !t["name"].is_string()) {
                spdlog::warn("mcp {}: ignoring a tool without a name: {}", s->c_.name,
                             short_text(dump(t)));
                continue;
            }
            McpToolInfo info;
            info.name = t["name"].get<std::string>();
            if (auto d = t.find("description"); d != t.end() && d->is_string())
                info.description = d->get<std::string>();
            else if (auto ti = t.find("title"); ti != t.end() && ti->is_string())
                info.description = ti->get<std::string>();
            auto schema = t.find("inputSchema");
            info.input_schema = schema != t.end() && schema->is_object()
                                    ? *schema
                                    : json{{"type", "object"}, {"properties", json::object()}};
            acc->push_back(std::move(info));
        }
        std::string next;
        if (auto n = res.find("nextCursor"); n != res.end() && n->is_string()) next = *n;
        if (!next.empty() && next != cursor && page + 1 < kMaxPages) {
            s->list_page(gen, next, acc, page + 1);
            return;
        }
        s->become_ready();
        if (auto done = std::move(s->start_done_)) {
            s->start_done_ = nullptr;
            done(std::move(*acc));
        }
    });
}

void McpServer::become_ready() {
    if (start_timer_) loop_.cancel(start_timer_);
    start_timer_ = 0;
    state_ = State::ready;
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& w : waiting) w(Status{});
}

void McpServer::fail_start(const Error& e) {
    if (state_ != State::starting) return;
    spdlog::warn("{}", e.message);
    if (start_timer_) loop_.cancel(start_timer_);
    start_timer_ = 0;
    state_ = State::dead;
    last_exit_ = e.message;
    ++generation_;  // whatever the old child still says is ignored
    proc_.reset();  // kills it
    pid_ = -1;
    fail_all(e);
}

void McpServer::fail_all(const Error& e) {
    auto pending = std::move(pending_);
    pending_.clear();
    auto waiting = std::move(waiting_);
    waiting_.clear();
    auto start_done = std::move(start_done_);
    start_done_ = nullptr;
    for (auto& [id, reply] : pending) reply(e);
    for (auto& w : waiting) w(Status(e));
    if (start_done) start_done(e);
}

void McpServer::on_exit(uint64_t gen, const ExitInfo& info) {
    if (gen != generation_) return;
    Error e = make_error(EPIPE,
                         "MCP server " + c_.name + " exited (" + info.reason + ")" + stderr_hint());
    if (state_ == State::starting) {
        fail_start(e);
        return;
    }
    spdlog::warn("{}", e.message);
    if (state_ != State::stopped) state_ = State::dead;
    last_exit_ = e.message;
    ++generation_;
    proc_.reset();
    pid_ = -1;
    fail_all(e);
}

void McpServer::stop(const std::string& why) {
    if (state_ == State::stopped) return;
    state_ = State::stopped;
    if (start_timer_) loop_.cancel(start_timer_);
    start_timer_ = 0;
    ++generation_;
    proc_.reset();
    pid_ = -1;
    fail_all(make_error(ECANCELED,
                        "MCP server " + c_.name + " stopped" + (why.empty() ? "" : ": " + why)));
}

bool McpServer::may_restart(std::string& why) {
    double now = monotonic_seconds();
    while (!restarts_.empty() && restarts_.front() < now - c_.restart_window) restarts_.pop_front();
    if (static_cast<int>(restarts_.size()) >= c_.max_restarts) {
        why = "MCP server " + c_.name + " is down and was restarted " +
              std::to_string(restarts_.size()) + " times in the last " +
              format_seconds(c_.restart_window) +
              " s; not restarting it yet (last failure: " + last_exit_ + ")";
        return false;
    }
    restarts_.push_back(now);
    return true;
}

void McpServer::call(const std::string& tool, json arguments, double timeout,
                     std::function<void(ToolResult)> done) {
    if (timeout <= 0) timeout = c_.call_timeout;
    if (state_ == State::stopped) {
        done({false, "MCP server " + c_.name + " is stopped"});
        return;
    }
    struct Call {
        std::function<void(ToolResult)> done;
        int64_t id = 0;
        EventLoop::TimerId timer = 0;
        bool finished = false;
    };
    auto c = std::make_shared<Call>();
    c->done = std::move(done);
    std::weak_ptr<McpServer> weak = shared_from_this();
    auto finish = [weak](const std::shared_ptr<Call>& c, ToolResult r) {
        if (c->finished) return;
        c->finished = true;
        if (auto s = weak.lock(); s && c->timer) s->loop_.cancel(c->timer);
        auto done = std::move(c->done);
        done(std::move(r));
    };
    c->timer = loop_.after(timeout, [weak, c, finish, timeout] {
        c->timer = 0;
        if (c->finished) return;
        if (auto s = weak.lock(); s && c->id) {
            s->pending_.erase(c->id);
            // Tell the server; its late answer, if any, finds no one waiting.
            s->send({{"jsonrpc", "2.0"},
                     {"method", "notifications/cancelled"},
                     {"params", {{"requestId", c->id}, {"reason", "timed out"}}}});
        }
        finish(c, {false, "timed out after " + format_seconds(timeout) + " s"});
    });
    auto send_call = [weak, c, finish, tool, arguments = std::move(arguments)]() mutable {
        auto s = weak.lock();
        if (!s || c->finished) return;
        json params = {{"name", tool}, {"arguments", std::move(arguments)}};
        c->id = s->request("tools/call", std::move(params), [c, finish](Result<json> r) {
            if (!r)
                finish(c, {false, r.error().message});
            else
                finish(c, mcp_result_to_tool_result(r.value()));
        });
    };
    if (state_ == State::ready) {
        send_call();
        return;
    }
    waiting_.push_back([c, finish, send_call = std::move(send_call)](Status st) mutable {
        if (!st)
            finish(c, {false, st.error().message});
        else
            send_call();
    });
    if (state_ == State::starting) return;
    // idle or dead: (re)start it.
    std::string why;
    if (state_ == State::dead && !may_restart(why)) {
        auto waiting = std::move(waiting_);
        waiting_.clear();
        for (auto& w : waiting) w(Status(make_error(EAGAIN, why)));
        return;
    }
    if (state_ == State::dead) spdlog::info("mcp {}: restarting", c_.name);
    launch(false);
}

int64_t McpServer::request(const std::string& method, json params, Reply reply) {
    int64_t id = next_id_++;
    pending_[id] = std::move(reply);
    send({{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}});
    return id;
}

void McpServer::send(const json& msg) {
    if (!proc_) return;
    std::string line = dump(msg) + "\n";
    spdlog::trace("mcp {} <- {}", c_.name, short_text(line, 1000));
    proc_->write(line);
}

void McpServer::on_stdout(uint64_t gen, std::string_view data) {
    if (gen != generation_) return;
    rx_.append(data);
    size_t nl;
    while (gen == generation_ && (nl = rx_.find('\n')) != std::string::npos) {
        std::string line = rx_.substr(0, nl);
        rx_.erase(0, nl + 1);
        handle_line(line);
    }
    if (gen == generation_ && rx_.size() > kMaxLine) {
        spdlog::warn("mcp {}: a line longer than {} bytes; killing the server", c_.name, kMaxLine);
        if (proc_) proc_->kill();
        rx_.clear();
    }
}

void McpServer::on_stderr(uint64_t gen, std::string_view data) {
    if (gen != generation_) return;
    err_partial_.append(data);
    size_t nl;
    while ((nl = err_partial_.find('\n')) != std::string::npos) {
        std::string line = err_partial_.substr(0, nl);
        err_partial_.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        spdlog::debug("mcp {} stderr: {}", c_.name, line);
        err_tail_.push_back(short_text(line, 500));
        if (err_tail_.size() > kStderrTail) err_tail_.pop_front();
    }
    if (err_partial_.size() > 4096) err_partial_.clear();
}

std::string McpServer::stderr_hint() const {
    std::string tail;
    size_t n = 0;
    for (auto it = err_tail_.rbegin(); it != err_tail_.rend() && n < 3; ++it, ++n)
        tail = *it + (tail.empty() ? "" : " | " + tail);
    if (!err_partial_.empty()) tail += (tail.empty() ? "" : " | ") + short_text(err_partial_, 500);
    return tail.empty() ? "" : "; stderr: " + tail;
}

void McpServer::handle_line(const std::string& raw) {
    std::string line = raw;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) return;
    spdlog::trace("mcp {} -> {}", c_.name, short_text(line, 1000));
    json msg = json::parse(line, nullptr, false);
    if (msg.is_discarded() || !msg.is_object()) {
        spdlog::warn("mcp {}: ignoring a line that is not JSON-RPC: {}", c_.name, short_text(line));
        return;
    }
    auto method = msg.find("method");
    auto id = msg.find("id");
    if (method != msg.end()) {
        if (id != msg.end() && !id->is_null())
            answer_request(msg);
        else if (*method == "notifications/message")
            spdlog::debug("mcp {} log: {}", c_.name, short_text(dump(msg.value("params", json()))));
        else if (*method == "notifications/tools/list_changed" && state_ == State::ready)
            spdlog::info("mcp {}: its tool list changed (swarmfs keeps the list it loaded)",
                         c_.name);
        else
            spdlog::debug("mcp {} notification: {}", c_.name, short_text(line));
        return;
    }
    if (id == msg.end() || !id->is_number_integer()) {
        spdlog::warn("mcp {}: a response with an id we never sent: {}", c_.name, short_text(line));
        return;
    }
    auto it = pending_.find(id->get<int64_t>());
    if (it == pending_.end()) {
        spdlog::debug("mcp {}: late or unknown response id {}", c_.name, id->dump());
        return;
    }
    Reply reply = std::move(it->second);
    pending_.erase(it);
    if (auto e = msg.find("error"); e != msg.end() && !e->is_null())
        reply(rpc_error(*e));
    else
        reply(msg.contains("result") ? msg["result"] : json());
}

void McpServer::answer_request(const json& msg) {
    const json& id = msg["id"];
    if (msg["method"] == "ping") {
        send({{"jsonrpc", "2.0"}, {"id", id}, {"result", json::object()}});
        return;
    }
    spdlog::debug("mcp {}: refusing server request {}", c_.name, dump(msg["method"]));
    send({{"jsonrpc", "2.0"},
          {"id", id},
          {"error", {{"code", -32601}, {"message", "Method not found (swarmfs client)"}}}});
}

// ---- the tools ----

namespace {
class McpTool : public Tool {
  public:
    McpTool(std::shared_ptr<McpServer> server, ToolSpec spec, std::string remote, double timeout,
            bool validate)
        : server_(std::move(server)),
          spec_(std::move(spec)),
          remote_(std::move(remote)),
          timeout_(timeout),
          validate_(validate) {}

    const ToolSpec& spec() const override { return spec_; }

    // An MCP server is one long-lived process shared by every caller: it
    // runs as the registry started it, not in a caller's sandbox.
    void call(json args, std::function<void(ToolResult)> done, ToolContext) override {
        EventLoop& loop = server_->loop();
        if (validate_) {
            if (Status st = validate_json(spec_.parameters, args); !st) {
                std::string why = "invalid arguments for " + spec_.name + ": " + st.error().message;
                loop.post([done = std::move(done), why] { done({false, why}); });
                return;
            }
        }
        loop.post([server = server_, remote = remote_, timeout = timeout_, args = std::move(args),
                   done = std::move(done)]() mutable {
            server->call(remote, std::move(args), timeout, std::move(done));
        });
    }

  private:
    std::shared_ptr<McpServer> server_;
    ToolSpec spec_;
    std::string remote_;
    double timeout_;
    bool validate_;
};
}  // namespace

std::shared_ptr<Tool> make_mcp_tool(std::shared_ptr<McpServer> server, ToolSpec spec,
                                    std::string remote_name, double timeout, bool validate) {
    return std::make_shared<McpTool>(std::move(server), std::move(spec), std::move(remote_name),
                                     timeout, validate);
}

}  // namespace swarmfs
