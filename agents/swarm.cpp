#include "agents/swarm.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "agents/json_document.h"

namespace swarmfs {

using json = nlohmann::json;

Status check_provider(const json& p) {
    if (!p.is_object()) return make_error(EINVAL, "must be an object");
    if (!p.contains("base_url") || !p["base_url"].is_string())
        return make_error(EINVAL,
                          "base_url (a string, e.g. http://127.0.0.1:11434/v1) is required");
    static const std::set<std::string> strings = {"base_url", "api_key_env", "base_url_env",
                                                  "model_env"};
    static const std::set<std::string> numbers = {"connect_timeout",
                                                  "first_byte_timeout",
                                                  "idle_timeout",
                                                  "total_timeout",
                                                  "max_retries",
                                                  "backoff_initial",
                                                  "backoff_max",
                                                  "rpm",
                                                  "tpm"};
    for (auto& [k, v] : p.items()) {
        if (strings.count(k)) {
            if (!v.is_string()) return make_error(EINVAL, k + " must be a string");
        } else if (numbers.count(k)) {
            if (!v.is_number() || v.get<double>() < 0)
                return make_error(EINVAL, k + " must be a number >= 0");
        } else {
            return make_error(EINVAL, "unknown key \"" + k + "\"");
        }
    }
    return {};
}

Status load_swarm_file(const std::string& path, SwarmOptions& opts) {
    std::ifstream in(path);
    if (!in) return make_error(ENOENT, "cannot read swarm file " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    json j = json::parse(ss.str(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) return make_error(EINVAL, path + ": not a JSON object");
    for (auto& [key, value] : j.items()) {
        if (key == "agents" || key == "defaults" || key == "providers" || key == "tools" ||
            key == "scheduler" || key == "supervisors") {
            if (!value.is_object())
                return make_error(EINVAL, path + ": " + key + " must be an object");
        } else if (key == "guard") {
            if (auto g = Guard::from_json(value); !g)
                return make_error(EINVAL, path + ": " + g.error().message);
        } else if (key == "sandbox") {
            if (auto p = SandboxPolicy::from_json(value); !p)
                return make_error(EINVAL, path + ": " + p.error().message);
        } else {
            return make_error(EINVAL, path + ": unknown key \"" + key +
                                          "\" (known: agents, defaults, guard, providers, sandbox, "
                                          "scheduler, supervisors, tools)");
        }
    }
    if (j.contains("scheduler")) {
        for (auto& [k, v] : j["scheduler"].items()) {
            if (k == "workers" && v.is_number_integer() && v.get<int>() >= 1 &&
                v.get<int>() <= 100000)
                opts.workers = v.get<int>();
            else if (k == "aging" && v.is_number() && v.get<double>() >= 0)
                opts.aging = v.get<double>();
            else if (k == "threads" && v.is_number_integer() && v.get<int>() >= 1 &&
                     v.get<int>() <= 256)
                opts.threads = v.get<int>();
            else
                return make_error(EINVAL, path +
                                              ": scheduler: expected {\"workers\": 1.., "
                                              "\"threads\": 1..256, \"aging\": SECONDS}, got " +
                                              k + "=" + v.dump());
        }
    }
    if (j.contains("supervisors")) {
        for (auto& [name, sup] : j["supervisors"].items()) {
            std::string where = path + ": supervisors: " + name + ": ";
            if (!sup.is_object()) return make_error(EINVAL, where + "must be an object");
            for (auto& [k, v] : sup.items()) {
                if (k == "strategy") {
                    if (v != "one_for_one" && v != "one_for_all")
                        return make_error(EINVAL, where + "strategy is one_for_one or one_for_all");
                } else if (k == "agents") {
                    if (!v.is_array()) return make_error(EINVAL, where + "agents is an array");
                    for (auto& a : v)
                        if (!a.is_string() || !valid_agent_name(a.get<std::string>()))
                            return make_error(EINVAL, where + "bad agent name " + a.dump());
                } else {
                    return make_error(
                        EINVAL, where + "unknown key \"" + k + "\" (known: strategy, agents)");
                }
            }
        }
        opts.supervisors = j["supervisors"];
    }
    if (j.contains("providers")) {
        for (auto& [name, p] : j["providers"].items()) {
            if (auto st = check_provider(p); !st)
                return make_error(EINVAL, path + ": provider " + name + ": " + st.error().message);
        }
        opts.providers = j["providers"];
    }
    if (j.contains("tools")) opts.tools = j["tools"];
    if (j.contains("sandbox")) opts.sandbox = j["sandbox"];
    if (j.contains("guard")) opts.guard = j["guard"];
    if (j.contains("defaults")) {
        if (auto c = AgentConfig::from_json(j["defaults"]); !c)
            return make_error(EINVAL, path + ": defaults: " + c.error().message);
        opts.defaults = j["defaults"];
    }
    if (j.contains("agents")) {
        for (auto& [name, cfg] : j["agents"].items()) {
            if (!valid_agent_name(name))
                return make_error(EINVAL, path + ": bad agent name \"" + name + "\"");
            if (auto c = AgentConfig::from_json(cfg); !c)
                return make_error(EINVAL, path + ": agent " + name + ": " + c.error().message);
        }
        opts.agents = j["agents"];
    }
    return {};
}

Swarm::Swarm(SwarmOptions opts)
    : opts_(std::move(opts)),
      ready_(std::chrono::milliseconds(static_cast<int64_t>(opts_.aging * 1000))) {
    if (opts_.workdir.empty()) {
        char buf[4096];
        if (getcwd(buf, sizeof buf)) opts_.workdir = buf;
    }
}

Result<std::unique_ptr<Swarm>> Swarm::open(SwarmOptions opts) {
    if (!opts.vault_dir.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(opts.vault_dir, ec);
        if (ec) return make_error(ec.value(), "vault " + opts.vault_dir + ": " + ec.message());
    }
    auto log = EventLog::open(opts.db_path);
    if (!log) return log.error();
    std::unique_ptr<Swarm> s(new Swarm(std::move(opts)));
    s->init_metrics();
    s->log_ = std::move(*log);
    // Before anything is logged: secrets never reach the disk.
    if (auto st = s->init_guard(); !st) return st.error();
    s->started_ = now_seconds();
    if (auto st = s->replay(); !st) return st.error();
    s->loop_ = std::make_unique<EventLoop>();
    s->pool_ = std::make_unique<WorkerPool>(WorkerPool::default_size(s->opts_.threads));
    s->chat_ = std::make_unique<ChatClient>(*s->loop_);
    for (auto& [name, p] : s->opts_.providers.items()) {
        RateLimit lim{p.value("rpm", uint64_t{0}), p.value("tpm", uint64_t{0})};
        if (lim.requests_per_minute || lim.tokens_per_minute)
            s->limiters_[name] = std::make_unique<ProviderLimiter>(lim);
    }
    if (!s->opts_.sandbox.is_null()) {
        auto box = SandboxPolicy::from_json(s->opts_.sandbox);
        if (!box) return make_error(EINVAL, "swarm file: " + box.error().message);
        s->default_sandbox_ = *box;
    }
    // Installed before anything is posted: the log file shows every event.
    s->log_->set_observer([p = s.get()](const Event& e) { p->on_committed(e); });
    if (!s->default_sandbox_.enabled) {
        std::string why =
            "sandbox off for the whole swarm (\"sandbox\": false in the swarm file): agents' "
            "processes run unconfined, as the server's user";
        spdlog::warn("{}", why);
        Event e;
        e.kind = "sandbox_off";
        e.data = {{"message", why}};
        s->log_->post({std::move(e)});
    }
    // After the observer: an MCP server's sandbox_off event reaches the log.
    s->tools_ = std::make_unique<ToolRegistry>(*s->loop_, s->opts_.workdir);
    s->tools_->set_server_sandbox(
        [p = s.get()](const ToolServerBox& b) { return p->tool_server_sandbox(b); });
    if (!s->opts_.tools.empty()) {
        if (auto st = s->tools_->load(s->opts_.tools); !st)
            return make_error(st.error().code, "tools: " + st.error().message);
    }
    if (auto st = s->declare_agents(); !st) return st.error();
    // Acknowledged messages that never finished run again.
    // All of them queue first, then workers are handed out by priority, as
    // they were before the restart.
    s->loop_->post([p = s.get()] { p->schedule_all(); });
    return s;
}

Swarm::~Swarm() { shutdown(); }

void Swarm::shutdown() {
    if (shut_down_.exchange(true)) return;
    // The pool's jobs use the tools and the provider client: they finish first.
    if (pool_) pool_->stop();
    // Model calls and tools end first; their turns stay unfinished in the log
    // (the callbacks see shut_down_) and run again at the next start.
    chat_.reset();
    tools_.reset();
    if (loop_) {
        // Kill running children on the loop, then stop it; their turns stay
        // unfinished in the log and run again at the next start.
        std::mutex m;
        std::condition_variable cv;
        bool done = false;
        loop_->post([&] {
            for (auto& [id, t] : turns_) {
                if (t->proc) t->proc->kill();
                t->proc.reset();
            }
            std::lock_guard dl(m);
            done = true;
            cv.notify_all();
        });
        std::unique_lock lk(m);
        cv.wait_for(lk, std::chrono::seconds(5), [&] { return done; });
        lk.unlock();
        loop_->stop();
    }
    if (log_) log_->drain();
}

Status Swarm::replay() {
    replaying_ = true;
    auto st = log_->for_each(0, [this](const Event& e) {
        log_stream_->append(e.to_line());
        apply(e, true);
    });
    replaying_ = false;
    return st;
}

Status Swarm::declare_agents() {
    // All of the swarm file's declarations are checked first, then committed
    // in one transaction: one fsync for 10,000 agents, and a file that is
    // wrong anywhere changes nothing.
    std::vector<Event> batch;
    for (auto& [name, cfg] : opts_.agents.items()) {
        auto parsed = AgentConfig::from_json(cfg);
        if (!parsed) return make_error(EINVAL, "agent " + name + ": " + parsed.error().message);
        if (auto st = check_references(*parsed); !st)
            return make_error(EINVAL, "agent " + name + ": " + st.error().message);
        Event e;
        e.data = {{"agent", name}, {"config", parsed->to_json()}};
        if (!has_agent(name)) {
            if (!valid_agent_name(name)) return make_error(EINVAL, "bad agent name " + name);
            e.kind = "agent_created";
        } else if (*config_text(name) != parsed->to_text()) {
            e.kind = "agent_config";
        } else {
            continue;
        }
        batch.push_back(std::move(e));
    }
    if (batch.empty()) return {};
    std::lock_guard dl(declare_mu_);
    if (auto r = log_->commit(std::move(batch)); !r) return r.error();
    return {};
}

void Swarm::on_committed(const Event& e) {
    log_stream_->append(e.to_line());
    static const std::set<std::string> declared = {
        "agent_created", "agent_config", "agent_removed", "agent_ctl",    "conv_created",
        "conv_routed",   "conv_closed",  "conv_vars",     "conv_handoff", "message",
        "topic_created", "published",    "agent_pledged"};
    if (!declared.count(e.kind)) return;
    apply(e, false);
    if (e.kind == "agent_created" || e.kind == "agent_config") {
        auto cfg = AgentConfig::from_json(e.data.value("config", json::object()));
        if (cfg) log_sandbox_off(e.data.value("agent", ""), *cfg);
    }
}

Status Swarm::commit(const std::string& kind, json data) {
    Event e;
    e.kind = kind;
    e.data = std::move(data);
    auto r = log_->commit({std::move(e)});
    if (!r) return r.error();
    return {};
}

std::shared_ptr<Agent> Swarm::agent_ptr(const std::string& name) const {
    std::shared_lock lk(reg_mu_);
    auto it = agents_.find(name);
    return it == agents_.end() ? nullptr : it->second;
}

std::shared_ptr<Conversation> Swarm::conv_ptr(int64_t id) const {
    std::shared_lock lk(reg_mu_);
    auto it = convs_.find(id);
    return it == convs_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Agent>> Swarm::all_agents() const {
    std::shared_lock lk(reg_mu_);
    std::vector<std::shared_ptr<Agent>> all;
    all.reserve(agents_.size());
    for (auto& [n, a] : agents_) all.push_back(a);
    return all;
}

std::vector<std::shared_ptr<Conversation>> Swarm::all_convs() const {
    std::shared_lock lk(reg_mu_);
    std::vector<std::shared_ptr<Conversation>> all;
    all.reserve(convs_.size());
    for (auto& [id, c] : convs_) all.push_back(c);
    return all;
}

void Swarm::add_err_line(Agent& a, const std::string& line, double ts) {
    a.err.push_back(iso_time(ts) + " " + line);
    while (a.err.size() > 100) a.err.pop_front();
    a.err_mtime = ts;
}

void Swarm::refresh_conv(Conversation& c) {
    bool live = c.handoffs_in_flight > 0;
    for (auto it = c.pending.begin(); it != c.pending.end();) {
        if (it->second <= 0) {
            it = c.pending.erase(it);
            continue;
        }
        // Read without the other agent's lock (see Agent::busy): each agent
        // publishes busy before refreshing its conversations, so the last
        // refresh, under this conversation's lock, sees every change.
        auto other = agent_ptr(it->first);
        if (other && other->busy) live = true;
        ++it;
    }
    c.out->set_live(live);
}

void Swarm::refresh_streams(Agent& a) {
    bool active = a.active();
    a.busy = active;
    a.output->set_live(active);
    std::set<int64_t> ids;
    for (auto& m : a.queue)
        if (m.conv) ids.insert(m.conv);
    for (int64_t id : ids) {
        if (auto c = conv_ptr(id)) {
            std::lock_guard lk(c->mu);
            refresh_conv(*c);
        }
    }
}

static int64_t num(const json& d, const char* key) {
    auto it = d.find(key);
    return it != d.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}
static std::string str(const json& d, const char* key) {
    auto it = d.find(key);
    return it != d.end() && it->is_string() ? it->get<std::string>() : std::string();
}

void Swarm::finish_message(Agent& a, const QueuedMessage& m, const TurnRecord& t, bool replaying) {
    // Every attempt counts: its output was shown, its tokens spent.
    if (replaying) a.output->append(t.output);
    if (t.ok) {
        ++a.turns;
    } else {
        ++a.failed;
        a.last_error = t.reason;
    }
    if (replaying && t.verdict == Verdict::park) ++a.parked;
    a.tokens_in += t.tokens_in;
    a.tokens_out += t.tokens_out;
    a.changed = now_seconds();
    auto cp = m.conv ? conv_ptr(m.conv) : nullptr;
    std::unique_lock<std::mutex> cl;
    if (cp) cl = std::unique_lock(cp->mu);
    Conversation* c = cp.get();
    if (c) {
        if (replaying) c->out->append(t.output);
        c->tokens_in += t.tokens_in;
        c->tokens_out += t.tokens_out;
        c->changed = a.changed;
    }
    if (t.verdict == Verdict::retry || t.verdict == Verdict::retry_uncounted) {
        // The message keeps its place in the queue for the next attempt.
        for (auto& q : a.queue) {
            if (q.msg != m.msg) continue;
            q.turn = 0;
            if (t.verdict == Verdict::retry) ++q.attempts;
        }
        return;
    }
    if (c) {
        --c->pending[a.name];
        // The user's message, then what answered it. A forwarded message is
        // the same user message, already there; only the agent changed.
        if (!m.forwarded)
            c->transcript.push_back(json({{"role", "user"}, {"content", m.text}}).dump());
        // A model turn records its own messages (tool calls and results too);
        // an exec turn's reply is its output.
        if (t.messages.is_array() && !t.messages.empty()) {
            for (auto& msg : t.messages) c->transcript.push_back(msg.dump());
        } else if (!t.output.empty() || t.ok) {
            c->transcript.push_back(
                json({{"role", "assistant"}, {"agent", a.name}, {"content", t.output}}).dump());
        }
        if (!t.ok)
            c->transcript.push_back(
                json({{"role", "error"}, {"agent", a.name}, {"content", t.reason}}).dump());
    }
    for (auto it = a.queue.begin(); it != a.queue.end(); ++it) {
        if (it->msg == m.msg) {
            a.queue.erase(it);
            break;
        }
    }
    if (c) {
        a.busy = a.active();
        refresh_conv(*c);
    }
}

// The reducer, on the log's writer thread (or at start, before anything
// else runs). With replaying=false only declarations arrive here: turns are
// driven live by swarm_turns.cpp and logged as they end. The scheduler and
// running turns belong to the event loop, so what concerns them is posted.
void Swarm::apply(const Event& e, bool replaying) {
    const json& d = e.data;
    const std::string agent = str(d, "agent");
    const std::string& k = e.kind;
    if (k == "agent_created") {
        auto cfg = AgentConfig::from_json(d.value("config", json::object()));
        auto a = std::make_shared<Agent>();
        a->name = agent;
        a->config = cfg ? *cfg : AgentConfig{};
        a->caps = a->config.granted();
        a->unveil = a->config.granted_unveil();
        a->created = a->changed = e.ts;
        a->intensity = intensity_for(a->config);
        {
            std::lock_guard tl(topics_mu_);
            for (auto& t : a->config.subscribe) topic(t, e.ts);
        }
        auto owns = a->config.owns;
        {
            std::unique_lock lk(reg_mu_);
            a->key = ++agent_key_seq_;
            agent_keys_[a->key] = agent;
            agents_[agent] = std::move(a);
        }
        index_owner(agent, owns);
    } else if (k == "agent_config") {
        auto a = agent_ptr(agent);
        if (!a) return;
        bool moved = false;
        std::vector<std::string> owns;
        {
            std::lock_guard lk(a->mu);
            if (auto cfg = AgentConfig::from_json(d.value("config", json::object()))) {
                if (cfg->max_restarts != a->config.max_restarts ||
                    cfg->restart_period != a->config.restart_period)
                    a->intensity = intensity_for(*cfg);
                moved = cfg->priority != a->config.priority;
                AgentConfig before = std::exchange(a->config, *cfg);
                apply_grant(*a, before);
                std::lock_guard tl(topics_mu_);
                for (auto& t : a->config.subscribe) topic(t, e.ts);
            }
            owns = a->config.owns;
            a->changed = e.ts;
            refresh_streams(*a);
        }
        index_owner(agent, owns);
        if (!replaying)
            loop_->post([this, agent, key = a->key, moved] {
                // Work already waiting for a worker moves to its new class.
                if (moved && ready_.remove(key)) ready_agents_.erase(key);
                schedule(agent);
            });
    } else if (k == "agent_removed") {
        std::shared_ptr<Agent> a;
        {
            std::unique_lock lk(reg_mu_);
            auto it = agents_.find(agent);
            if (it == agents_.end()) return;
            a = std::move(it->second);
            agents_.erase(it);
            agent_keys_.erase(a->key);
        }
        index_owner(agent, {});
        {
            std::lock_guard lk(a->mu);
            a->removed = true;
            a->stopped = true;
            a->queue.clear();
            a->busy = false;
            a->output->set_live(false);
        }
        forget_agent_metrics(agent);
        for (auto& c : all_convs()) {
            std::lock_guard cl(c->mu);
            if (!c->pending.count(agent)) continue;
            c->pending.erase(agent);
            refresh_conv(*c);
        }
        if (!replaying) {
            loop_->post([this, key = a->key] {
                if (ready_.remove(key)) ready_agents_.erase(key);
            });
            // Its running turns end now and are not recorded (see finish_turn).
            cancel_agent_turns(agent, CancelKind::stop, "agent removed");
        }
    } else if (k == "agent_ctl") {
        auto a = agent_ptr(agent);
        if (!a) return;
        bool stopped;
        {
            std::lock_guard lk(a->mu);
            std::string cmd = str(d, "command");
            a->stopped = stopped = cmd == "stop";
            if (cmd == "restart") {  // a fresh start, also after giving up
                a->crashed.clear();
                a->intensity.reset();
            }
            a->changed = e.ts;
            refresh_streams(*a);
        }
        if (!replaying && !stopped) loop_->post([this, agent] { schedule(agent); });
    } else if (k == "agent_pledged") {
        auto a = agent_ptr(agent);
        if (!a) return;
        auto caps = CapabilitySet::from_json(d.value("caps", json::array()));
        auto unveil = UnveilMap::from_json(d.value("unveil", json::object()));
        std::lock_guard lk(a->mu);
        // Checked before it was logged; a bad entry (a hand-edited log)
        // leaves the agent with nothing rather than with more.
        a->caps = caps ? *caps : CapabilitySet{};
        a->unveil = unveil ? *unveil : UnveilMap{};
        a->pledged = true;
        a->changed = e.ts;
    } else if (k == "topic_created") {
        std::lock_guard tl(topics_mu_);
        topic(str(d, "topic"), e.ts);
    } else if (k == "published") {
        std::lock_guard tl(topics_mu_);
        Topic& t = topic(str(d, "topic"), e.ts);
        t.stream->append(str(d, "text"));
        ++t.published;
        t.changed = e.ts;
    } else if (k == "conv_created") {
        auto c = std::make_shared<Conversation>();
        c->id = num(d, "conv");
        c->created = c->changed = e.ts;
        conv_seq_ = std::max<int64_t>(conv_seq_, c->id);
        std::unique_lock lk(reg_mu_);
        convs_[c->id] = std::move(c);
    } else if (k == "conv_routed" || k == "conv_vars" || k == "conv_closed") {
        auto c = conv_ptr(num(d, "conv"));
        if (!c) return;
        std::lock_guard cl(c->mu);
        if (k == "conv_routed") c->agent = agent;
        if (k == "conv_vars") c->vars = d.value("vars", json::object());
        if (k == "conv_closed") c->closed = true;
        c->changed = e.ts;
    } else if (k == "conv_handoff") {
        auto c = conv_ptr(num(d, "conv"));
        if (!c) return;
        std::string from = str(d, "from"), to = str(d, "to");
        {
            std::lock_guard cl(c->mu);
            c->agent = to;
            c->transcript.push_back(json({{"role", "handoff"}, {"from", from}, {"to", to}}).dump());
            c->changed = e.ts;
        }
        // The running turn of `from` on this conversation forwards its
        // message to the new agent when it ends. The loop runs this before
        // it learns that turn's child has exited: the handoff was written
        // (and this posted) before the child went on to exit.
        if (!replaying)
            loop_->post([this, from, to, id = c->id] {
                for (auto& [tid, t] : turns_)
                    if (t->agent->name == from && t->msg.conv == id) t->handoff_to = to;
            });
    } else if (k == "message") {
        msg_seq_ = std::max<int64_t>(msg_seq_, num(d, "msg"));
        auto a = agent_ptr(agent);
        if (!a) return;
        QueuedMessage m{num(d, "msg"), num(d, "conv"), str(d, "text"), 0, str(d, "topic"), e.ts};
        bool forwarded = d.contains("handoff_from");
        m.forwarded = forwarded;
        {
            std::lock_guard lk(a->mu);
            if (auto c = m.conv ? conv_ptr(m.conv) : nullptr) {
                std::lock_guard cl(c->mu);
                c->pending[agent]++;
                // The user's message enters the transcript when its turn ends,
                // so messages queued behind it never appear before its answer.
                if (forwarded && !replaying && c->handoffs_in_flight > 0) --c->handoffs_in_flight;
                c->changed = e.ts;
            }
            a->queue.push_back(std::move(m));
            refresh_streams(*a);
        }
        if (!replaying) loop_->post([this, agent] { schedule(agent); });
    } else if (!replaying) {
        return;
    } else if (k == "turn_started") {
        turn_seq_ = std::max<int64_t>(turn_seq_, num(d, "turn"));
    } else if (k == "turn_finished" || k == "turn_failed") {
        turn_seq_ = std::max<int64_t>(turn_seq_, num(d, "turn"));
        auto a = agent_ptr(agent);
        if (!a) return;
        std::lock_guard lk(a->mu);
        int64_t msg = num(d, "msg");
        QueuedMessage m;
        bool queued = false;
        for (auto& q : a->queue)
            if (q.msg == msg) {
                m = q;
                queued = true;
            }
        if (!queued) return;  // finished twice can only mean a damaged log; show it once
        bool ok = k == "turn_finished";
        std::string reason = str(d, "reason");
        Verdict verdict = Verdict::done;
        if (d.value("retry", false))
            verdict = d.value("attempt_counted", true) ? Verdict::retry : Verdict::retry_uncounted;
        else if (d.value("parked", false))
            verdict = Verdict::park;
        std::string stderr_text = str(d, "stderr");
        size_t start = 0;
        while (start < stderr_text.size()) {
            size_t end = stderr_text.find('\n', start);
            if (end == std::string::npos) end = stderr_text.size();
            add_err_line(*a,
                         "turn " + std::to_string(num(d, "turn")) +
                             " stderr: " + stderr_text.substr(start, end - start),
                         e.ts);
            start = end + 1;
        }
        if (!ok) add_err_line(*a, "turn " + std::to_string(num(d, "turn")) + ": " + reason, e.ts);
        TurnRecord t{ok,
                     reason,
                     str(d, "output"),
                     d.value("messages", json::array()),
                     num(d, "tokens_in"),
                     num(d, "tokens_out"),
                     verdict};
        finish_message(*a, m, t, true);
        refresh_streams(*a);
    } else if (k == "agent_restarted") {
        if (auto a = agent_ptr(agent)) {
            std::lock_guard lk(a->mu);
            a->restarts = num(d, "restarts");
            // The restart intensity counts restarts in the last period of
            // wall-clock time, across a restart of the server too.
            a->intensity.record_past(e.ts, now_seconds());
        }
    } else if (k == "agent_crashed") {
        if (auto a = agent_ptr(agent)) {
            std::lock_guard lk(a->mu);
            a->crashed = str(d, "reason");
            a->last_error = "crashed: " + a->crashed;
        }
    } else if (k == "error" || k == "refused") {
        if (auto a = agent_ptr(agent)) {
            std::lock_guard lk(a->mu);
            add_err_line(*a, str(d, "message"), e.ts);
            a->last_error = str(d, "message");
        }
    }
}

Error Swarm::report(const std::string& agent, Error e) {
    double ts = now_seconds();
    if (auto a = agent.empty() ? nullptr : agent_ptr(agent)) {
        std::lock_guard lk(a->mu);
        add_err_line(*a, e.message, ts);
        a->last_error = e.message;
    }
    json d = {{"message", e.message}, {"errno", e.code}};
    if (!agent.empty()) d["agent"] = agent;
    Event ev;
    ev.kind = "error";
    ev.ts = ts;
    ev.data = std::move(d);
    log_->post({std::move(ev)});
    return e;
}

// ---------------------------------------------------------------- agents

std::vector<std::string> Swarm::agent_names() const {
    std::shared_lock lk(reg_mu_);
    std::vector<std::string> names;
    names.reserve(agents_.size());
    for (auto& [n, a] : agents_) names.push_back(n);
    std::sort(names.begin(), names.end());
    return names;
}

bool Swarm::has_agent(const std::string& name) const {
    std::shared_lock lk(reg_mu_);
    return agents_.count(name) > 0;
}

Status Swarm::create_agent(const std::string& name, std::optional<json> config) {
    if (!valid_agent_name(name))
        return report("", make_error(EINVAL, "bad agent name \"" + name +
                                                 "\": use 1-64 of A-Z a-z 0-9 _ - . "
                                                 "(not starting with . or ending with ~)"));
    json cfg = config ? *config : opts_.defaults;
    auto parsed = AgentConfig::from_json(cfg);
    if (!parsed)
        return report("", make_error(EINVAL, "agent " + name + ": " + parsed.error().message));
    if (auto st = check_references(*parsed); !st)
        return report("", make_error(EINVAL, "agent " + name + ": " + st.error().message));
    std::lock_guard dl(declare_mu_);
    if (has_agent(name)) return make_error(EEXIST, "agent " + name + " exists");
    if (auto st = check_ownership(name, *parsed); !st)
        return report("", make_error(EINVAL, "agent " + name + ": " + st.error().message));
    return commit("agent_created", {{"agent", name}, {"config", parsed->to_json()}});
}

Status Swarm::remove_agent(const std::string& name, bool force) {
    std::lock_guard dl(declare_mu_);
    {
        auto a = agent_ptr(name);
        if (!a) return make_error(ENOENT, "no agent " + name);
        std::lock_guard lk(a->mu);
        if (!force && !a->stopped && !a->queue.empty())
            return make_error(EBUSY, "agent " + name + " has " + std::to_string(a->queue.size()) +
                                         " message(s) queued or running; write stop to its ctl "
                                         "first");
    }
    return commit("agent_removed", {{"agent", name}, {"forced", force}});
}

Result<std::string> Swarm::config_text(const std::string& name) const {
    auto a = agent_ptr(name);
    if (!a) return make_error(ENOENT, "no agent " + name);
    std::lock_guard lk(a->mu);
    return a->config.to_text();
}

Status Swarm::set_config_text(const std::string& name, std::string_view text) {
    auto parsed = AgentConfig::parse(text);
    if (!parsed) return report(name, parsed.error());
    if (auto st = check_references(*parsed); !st) return report(name, st.error());
    std::lock_guard dl(declare_mu_);
    if (!has_agent(name)) return make_error(ENOENT, "no agent " + name);
    if (auto st = check_ownership(name, *parsed); !st) return report(name, st.error());
    return commit("agent_config", {{"agent", name}, {"config", parsed->to_json()}});
}

Status Swarm::check_config_draft(const std::string& name, std::string_view text) {
    if (auto s = AgentConfig::check_partial(text); !s) return report(name, s.error());
    return {};
}

Result<std::string> Swarm::instructions(const std::string& name) const {
    auto a = agent_ptr(name);
    if (!a) return make_error(ENOENT, "no agent " + name);
    std::lock_guard lk(a->mu);
    return a->config.instructions;
}

Status Swarm::set_instructions(const std::string& name, std::string_view text) {
    return update_config(name, [&](AgentConfig& c) { c.instructions = std::string(text); });
}

Status Swarm::update_config(const std::string& name,
                            const std::function<void(AgentConfig&)>& edit) {
    std::lock_guard dl(declare_mu_);
    AgentConfig cfg;
    {
        auto a = agent_ptr(name);
        if (!a) return make_error(ENOENT, "no agent " + name);
        std::lock_guard lk(a->mu);
        cfg = a->config;
    }
    edit(cfg);
    return commit("agent_config", {{"agent", name}, {"config", cfg.to_json()}});
}

namespace {
std::optional<Error> budget_error(const Agent& a) {
    if (!a.budget_spent()) return std::nullopt;
    return make_error(EDQUOT, "agent " + a.name + " has spent its token budget (" +
                                  std::to_string(a.tokens_in + a.tokens_out) + " of " +
                                  std::to_string(a.config.budget) +
                                  " tokens); raise it with \"budget N\" on its ctl");
}
}  // namespace

Status Swarm::enqueue(const std::string& agent, int64_t conv, std::string text,
                      const std::string& from) {
    if (auto st = guard_message(agent, text); !st) return st;
    int64_t msg = ++msg_seq_;
    json d = {{"msg", msg}, {"agent", agent}, {"text", std::move(text)}};
    if (conv) d["conv"] = conv;
    if (!from.empty()) d["from"] = from;
    if (auto s = commit("message", std::move(d)); !s) return report(agent, s.error());
    return {};
}

Status Swarm::can_send(const std::string& name) {
    bool runnable;
    std::optional<Error> err;
    {
        auto a = agent_ptr(name);
        if (!a) return make_error(ENOENT, "no agent " + name);
        std::lock_guard lk(a->mu);
        runnable = a->config.runnable();
        if (auto e = budget_error(*a)) err = e;
    }
    if (err) return report(name, *err);
    if (!runnable)
        return report(name, make_error(EINVAL, "agent " + name +
                                                   " has nothing to run: write {\"exec\": [...]} "
                                                   "to its config first"));
    return {};
}

Status Swarm::send(const std::string& name, std::string text) {
    if (auto s = can_send(name); !s) return s;
    return enqueue(name, 0, std::move(text));
}

Result<std::string> Swarm::agent_status(const std::string& name) const {
    auto a = agent_ptr(name);
    if (!a) return make_error(ENOENT, "no agent " + name);
    uid_t uid = sandbox_uid(name);
    std::lock_guard lk(a->mu);
    std::string s;
    s += "state " + a->state() + "\n";
    s += "queue " + std::to_string(a->waiting()) + "\n";
    s += "turns " + std::to_string(a->turns) + "\n";
    s += "failed " + std::to_string(a->failed) + "\n";
    s += "restarts " + std::to_string(a->restarts) + "\n";
    s += "parked " + std::to_string(a->parked) + "\n";
    s += "priority " + std::string(priority_name(a->config.priority)) + "\n";
    s += "tokens_in " + std::to_string(a->tokens_in) + "\n";
    s += "tokens_out " + std::to_string(a->tokens_out) + "\n";
    s +=
        "budget " + (a->config.budget ? std::to_string(a->config.budget) : std::string("-")) + "\n";
    if (!a->crashed.empty())
        s += "crashed " +
             a->intensity.status(std::chrono::steady_clock::now(), a->crashed).substr(8) + "\n";
    if (a->config.is_model()) s += "model " + a->config.provider + "/" + a->config.model + "\n";
    std::string argv;
    for (auto& w : a->config.exec) argv += (argv.empty() ? "" : " ") + w;
    s += "exec " + (argv.empty() ? "-" : argv) + "\n";
    // The uid its processes run as: what ps shows, and what the file
    // server knows them by.
    if (uid) s += "uid " + std::to_string(uid) + "\n";
    s += "last_error " + (a->last_error.empty() ? "-" : a->last_error) + "\n";
    return s;
}

Result<std::string> Swarm::agent_ctl_text(const std::string& name) const {
    auto a = agent_ptr(name);
    if (!a) return make_error(ENOENT, "no agent " + name);
    std::lock_guard lk(a->mu);
    // The run state first, as the command that sets it; then what it shows.
    std::string s = a->stopped ? "stop\n" : "start\n";
    s += "state " + a->state() + "\n";
    s += "queue " + std::to_string(a->waiting()) + "\n";
    s += "turns " + std::to_string(a->turns) + "\n";
    s += "failed " + std::to_string(a->failed) + "\n";
    return s;
}

Result<std::string> Swarm::agent_err(const std::string& name) const {
    auto a = agent_ptr(name);
    if (!a) return make_error(ENOENT, "no agent " + name);
    std::lock_guard lk(a->mu);
    std::string s;
    for (auto& l : a->err) s += l + "\n";
    return s;
}

std::shared_ptr<ByteStream> Swarm::agent_output(const std::string& name) const {
    auto a = agent_ptr(name);
    return a ? a->output : nullptr;
}

Result<double> Swarm::agent_changed(const std::string& name) const {
    auto a = agent_ptr(name);
    if (!a) return make_error(ENOENT, "no agent " + name);
    std::lock_guard lk(a->mu);
    return std::max({a->changed, a->err_mtime, a->output->mtime()});
}

Status Swarm::agent_ctl(const std::string& name, std::string_view commands) {
    if (!has_agent(name)) return make_error(ENOENT, "no agent " + name);
    auto s = run_commands(agent_commands(name), commands);
    if (!s) return ctl_failed(name, "ctl", s.error());
    return s;
}

// ---------------------------------------------------------------- swarm

Status Swarm::ctl(std::string_view commands) {
    auto s = run_commands(swarm_commands(), commands);
    if (!s) return report("", make_error(s.error().code, "ctl: " + s.error().message));
    return s;
}

std::string Swarm::ctl_text() const {
    auto sorted = all_agents();
    std::sort(sorted.begin(), sorted.end(), [](auto& x, auto& y) { return x->name < y->name; });
    std::string s;
    for (auto& a : sorted) {
        std::lock_guard lk(a->mu);
        s += a->name + " " + a->state() + " " + std::to_string(a->waiting()) + " " +
             std::to_string(a->turns) + "\n";
    }
    return s;
}

std::string Swarm::status_text() const {
    size_t queued = 0, running = 0, turns = 0, failed = 0;
    auto agents = all_agents();
    for (auto& a : agents) {
        std::lock_guard lk(a->mu);
        queued += a->waiting();
        running += static_cast<size_t>(a->running);
        turns += a->turns;
        failed += a->failed;
    }
    size_t convs;
    {
        std::shared_lock lk(reg_mu_);
        convs = convs_.size();
    }
    std::string s;
    s += "agents " + std::to_string(agents.size()) + "\n";
    s += "conversations " + std::to_string(convs) + "\n";
    s += "queued " + std::to_string(queued) + "\n";
    s += "running " + std::to_string(running) + "\n";
    s += "turns " + std::to_string(turns) + "\n";
    s += "failed " + std::to_string(failed) + "\n";
    s += "uptime " + std::to_string(static_cast<int64_t>(now_seconds() - started_)) + "\n";
    return s;
}

bool Swarm::wait_idle(double timeout_seconds) {
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));
    while (std::chrono::steady_clock::now() < deadline) {
        bool busy = false;
        for (auto& a : all_agents()) {
            std::lock_guard lk(a->mu);
            busy = busy || a->active();
        }
        // A handed-off message is between two agents until its event is applied.
        for (auto& c : all_convs()) {
            std::lock_guard lk(c->mu);
            busy = busy || c->handoffs_in_flight > 0;
        }
        if (!busy) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

// ---------------------------------------------------------------- conversations

Result<int64_t> Swarm::create_conversation() {
    int64_t id = ++conv_seq_;
    if (auto s = commit("conv_created", {{"conv", id}}); !s) return s.error();
    return id;
}

std::vector<int64_t> Swarm::conversation_ids() const {
    std::shared_lock lk(reg_mu_);
    std::vector<int64_t> ids;
    for (auto& [id, c] : convs_) ids.push_back(id);
    return ids;
}

bool Swarm::has_conversation(int64_t id) const {
    std::shared_lock lk(reg_mu_);
    return convs_.count(id) > 0;
}

Status Swarm::conv_ctl(int64_t id, std::string_view commands) {
    auto serving = conv_agent_name(id);
    if (!serving) return serving.error();
    const std::string& agent = *serving;
    auto s = run_commands(conv_commands(id), commands);
    if (!s) return ctl_failed(agent, "conv " + std::to_string(id) + " ctl", s.error());
    return s;
}

Result<std::string> Swarm::conv_ctl_text(int64_t id) const {
    auto c = conv_ptr(id);
    if (!c) return make_error(ENOENT, "no conversation " + std::to_string(id));
    std::lock_guard lk(c->mu);
    std::string state = c->closed ? "closed" : (c->pending.empty() ? "idle" : "busy");
    return "id " + std::to_string(id) + "\nagent " + (c->agent.empty() ? "-" : c->agent) +
           "\nstate " + state + "\ntokens_in " + std::to_string(c->tokens_in) + "\ntokens_out " +
           std::to_string(c->tokens_out) + "\n";
}

Result<std::string> Swarm::conv_target(int64_t id) {
    std::string agent;
    std::optional<Error> err;
    {
        auto c = conv_ptr(id);
        if (!c) return make_error(ENOENT, "no conversation " + std::to_string(id));
        bool closed;
        {
            std::lock_guard lk(c->mu);
            agent = c->agent;
            closed = c->closed;
        }
        std::string conv = "conversation " + std::to_string(id);
        auto a = agent.empty() ? nullptr : agent_ptr(agent);
        std::unique_lock<std::mutex> al;
        if (a) al = std::unique_lock(a->mu);
        if (closed)
            err = make_error(EPIPE, conv + " is closed");
        else if (agent.empty())
            err = make_error(EDESTADDRREQ, conv + " has no agent: write \"agent NAME\" to its ctl");
        else if (!a)
            err = make_error(ENOENT, conv + ": agent " + agent + " no longer exists");
        else if (!a->config.runnable())
            err = make_error(EINVAL, conv + ": agent " + agent + " has nothing to run");
        else if (auto b = budget_error(*a))
            err = b;
    }
    if (err) return report(agent, *err);
    return agent;
}

Status Swarm::conv_can_send(int64_t id) {
    auto agent = conv_target(id);
    if (!agent) return agent.error();
    return {};
}

Status Swarm::conv_send(int64_t id, std::string text) {
    auto agent = conv_target(id);
    if (!agent) return agent.error();
    return enqueue(*agent, id, std::move(text));
}

std::shared_ptr<ByteStream> Swarm::conv_out(int64_t id) const {
    auto c = conv_ptr(id);
    return c ? c->out : nullptr;
}

Result<std::string> Swarm::conv_agent_name(int64_t id) const {
    auto c = conv_ptr(id);
    if (!c) return make_error(ENOENT, "no conversation " + std::to_string(id));
    std::lock_guard lk(c->mu);
    return c->agent;
}

Result<std::string> Swarm::conv_agent(int64_t id) const {
    auto agent = conv_agent_name(id);
    if (!agent) return agent.error();
    return agent->empty() ? std::string() : *agent + "\n";
}

Result<std::string> Swarm::conv_context(int64_t id) const {
    auto c = conv_ptr(id);
    if (!c) return make_error(ENOENT, "no conversation " + std::to_string(id));
    std::lock_guard lk(c->mu);
    std::string s;
    for (auto& l : c->transcript) s += l + "\n";
    return s;
}

namespace {
Status check_vars(const json& j) {
    if (!j.is_object()) return make_error(EINVAL, "vars: must be a JSON object");
    return {};
}
}  // namespace

Result<std::string> Swarm::conv_vars(int64_t id) const {
    auto c = conv_ptr(id);
    if (!c) return make_error(ENOENT, "no conversation " + std::to_string(id));
    std::lock_guard lk(c->mu);
    return c->vars.dump(2) + "\n";
}

Status Swarm::set_conv_vars(int64_t id, std::string_view text) {
    auto serving = conv_agent_name(id);
    if (!serving) return serving.error();
    const std::string& agent = *serving;
    auto j = parse_json_document(text, "conv " + std::to_string(id) + " vars", check_vars);
    if (!j) return report(agent, j.error());
    return commit("conv_vars", {{"conv", id}, {"vars", *j}});
}

Status Swarm::check_vars_draft(int64_t id, std::string_view text) {
    auto s = check_json_draft(text, "conv " + std::to_string(id) + " vars", check_vars);
    if (!s) {
        std::string agent;
        {
            if (auto c = conv_ptr(id)) {
                std::lock_guard lk(c->mu);
                agent = c->agent;
            }
        }
        return report(agent, s.error());
    }
    return s;
}

Result<double> Swarm::conv_changed(int64_t id) const {
    auto c = conv_ptr(id);
    if (!c) return make_error(ENOENT, "no conversation " + std::to_string(id));
    std::lock_guard lk(c->mu);
    return std::max(c->changed, c->out->mtime());
}

}  // namespace swarmfs
