// Scheduling, supervision and recovery through the mount (issue 4), as a user
// sees them: event fan-out runs subscribers in parallel, priority classes
// under a full pool and aging, token budgets (EDQUOT), stop mid-turn (an exec
// child and an HTTP request), restart intensity and parked messages,
// one_for_all groups, `swarmfs replay`, metrics, and kill -9 during a burst
// of writes. Overlap and order are proven with barrier and order files, not
// with wall-clock thresholds; times appear only as generous bounds on hangs.
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/mount_fixture.h"

namespace swarmfs::it {
namespace {

using json = nlohmann::json;

bool has(std::string_view hay, std::string_view needle) {
    return hay.find(needle) != std::string_view::npos;
}

bool pid_gone(pid_t pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

// ------------------------------------------------------------ metrics text

// The Prometheus text exposition format, parsed strictly enough to catch
// what a scraper would reject.
struct Metrics {
    std::map<std::string, double> samples;  // "name{k=\"v\",...}" (labels sorted) -> value
    std::map<std::string, std::string> types;
    std::vector<std::string> problems;

    static std::string key(const std::string& name, const std::map<std::string, std::string>& l) {
        std::string k = name + "{";
        bool first = true;
        for (auto& [n, v] : l) {
            k += (first ? "" : ",") + n + "=\"" + v + "\"";
            first = false;
        }
        return k + "}";
    }
    std::optional<double> get(const std::string& name,
                              const std::map<std::string, std::string>& labels = {}) const {
        auto it = samples.find(key(name, labels));
        if (it == samples.end()) return std::nullopt;
        return it->second;
    }
};

std::optional<double> parse_value(const std::string& v) {
    if (v == "+Inf") return INFINITY;
    if (v == "-Inf") return -INFINITY;
    if (v == "NaN") return NAN;
    if (v.empty()) return std::nullopt;
    char* end = nullptr;
    double d = strtod(v.c_str(), &end);
    if (*end) return std::nullopt;
    return d;
}

Metrics parse_metrics(const std::string& text) {
    Metrics m;
    static const std::regex name_re("[a-zA-Z_:][a-zA-Z0-9_:]*");
    static const std::regex label_re("[a-zA-Z_][a-zA-Z0-9_]*");
    static const std::regex type_re("(counter|gauge|histogram|summary|untyped)");
    std::set<std::string> seen_families;  // families whose samples have appeared
    // Histogram buckets per series, in order of appearance: (le, value).
    std::map<std::string, std::vector<std::pair<double, double>>> buckets;
    if (!text.empty() && text.back() != '\n') m.problems.push_back("no newline at the end");
    for (const auto& line : lines(text)) {
        auto bad = [&](const std::string& why) { m.problems.push_back(why + ": " + line); };
        if (line.empty()) continue;
        if (line[0] == '#') {
            std::istringstream ls(line.substr(1));
            std::string word, name, rest;
            ls >> word >> name;
            if (word != "HELP" && word != "TYPE") continue;  // a plain comment
            if (!std::regex_match(name, name_re)) {
                bad("bad metric name in " + word);
                continue;
            }
            if (word == "TYPE") {
                ls >> rest;
                if (!std::regex_match(rest, type_re)) bad("bad type");
                if (m.types.count(name)) bad("second TYPE for " + name);
                if (seen_families.count(name)) bad("TYPE after samples of " + name);
                m.types[name] = rest;
            }
            continue;
        }
        size_t i = 0;
        while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
        std::string name = line.substr(0, i);
        if (!std::regex_match(name, name_re)) {
            bad("bad metric name");
            continue;
        }
        std::map<std::string, std::string> labels;
        bool ok = true;
        if (i < line.size() && line[i] == '{') {
            ++i;
            while (ok && i < line.size() && line[i] != '}') {
                size_t eq = line.find('=', i);
                if (eq == std::string::npos) {
                    ok = false;
                    break;
                }
                std::string ln = line.substr(i, eq - i);
                if (!std::regex_match(ln, label_re) || labels.count(ln)) ok = false;
                i = eq + 1;
                if (i >= line.size() || line[i] != '"') {
                    ok = false;
                    break;
                }
                ++i;
                std::string v;
                while (i < line.size() && line[i] != '"') {
                    if (line[i] == '\\') {
                        if (i + 1 >= line.size()) break;
                        char c = line[i + 1];
                        if (c == 'n')
                            v += '\n';
                        else if (c == '\\' || c == '"')
                            v += c;
                        else
                            ok = false;
                        i += 2;
                    } else {
                        v += line[i++];
                    }
                }
                if (i >= line.size()) {
                    ok = false;
                    break;
                }
                ++i;  // the closing quote
                labels[ln] = v;
                if (i < line.size() && line[i] == ',') ++i;
            }
            if (i >= line.size() || line[i] != '}') ok = false;
            ++i;
        }
        if (!ok || i >= line.size() || line[i] != ' ') {
            bad("bad labels or no value");
            continue;
        }
        std::istringstream rest(line.substr(i + 1));
        std::string value, ts, extra;
        rest >> value >> ts >> extra;
        auto v = parse_value(value);
        if (!v) bad("bad value");
        if (!ts.empty() && !std::regex_match(ts, std::regex("-?[0-9]+"))) bad("bad timestamp");
        if (!extra.empty()) bad("trailing text");
        // The family: the name itself, or a histogram's / summary's base name.
        std::string family = name;
        if (!m.types.count(family)) {
            for (const char* suffix : {"_bucket", "_sum", "_count"}) {
                std::string s = suffix;
                if (name.size() > s.size() && name.ends_with(s) &&
                    m.types.count(name.substr(0, name.size() - s.size()))) {
                    family = name.substr(0, name.size() - s.size());
                    break;
                }
            }
        }
        if (!m.types.count(family)) bad("sample without a TYPE line");
        seen_families.insert(family);
        std::string k = Metrics::key(name, labels);
        if (m.samples.count(k)) bad("duplicate sample");
        if (v) m.samples[k] = *v;
        if (v && m.types[family] == "counter" && *v < 0) bad("negative counter");
        if (v && name == family + "_bucket" && m.types[family] == "histogram") {
            auto le = labels.count("le") ? parse_value(labels["le"]) : std::nullopt;
            if (!le) {
                bad("bucket without a numeric le");
                continue;
            }
            labels.erase("le");
            buckets[Metrics::key(family, labels)].emplace_back(*le, *v);
        }
    }
    for (auto& [series, bs] : buckets) {
        for (size_t j = 1; j < bs.size(); ++j) {
            if (!(bs[j].first > bs[j - 1].first))
                m.problems.push_back(series + ": le bounds not increasing");
            if (bs[j].second < bs[j - 1].second)
                m.problems.push_back(series + ": buckets not cumulative");
        }
        if (bs.empty() || !std::isinf(bs.back().first)) {
            m.problems.push_back(series + ": no +Inf bucket");
            continue;
        }
        // series is "family{labels}": its _count has the same labels.
        auto brace = series.find('{');
        std::string count_key = series.substr(0, brace) + "_count" + series.substr(brace);
        auto c = m.samples.find(count_key);
        if (c == m.samples.end() || c->second != bs.back().second)
            m.problems.push_back(series + ": _count differs from the +Inf bucket");
    }
    return m;
}

// ------------------------------------------------------------ fixtures

class Base : public MountedSwarm {
  protected:
    // A path in the test's own directory (outside the mount).
    std::string file(const std::string& name) const { return dir() + "/" + name; }
    void touch(const std::string& path) { ASSERT_EQ(write_file(path, ""), 0) << path; }
    // An exec agent running `script` with sh -c, with extra config keys.
    void make_sh_agent(const std::string& name, const std::string& script,
                       json extra = json::object()) {
        json cfg = {{"exec", {"sh", "-c", script}}};
        for (auto& [k, v] : extra.items()) cfg[k] = v;
        ASSERT_NO_FATAL_FAILURE(make_agent(name, cfg.dump()));
    }
    // A script that holds its turn until the file `gate` exists, then runs `then`.
    std::string gated(const std::string& gate, const std::string& then) const {
        return "while [ ! -e " + shq(file(gate)) + " ]; do sleep 0.02; done; " + then;
    }
    // Follows MNT/log (a stream that never ends) until `needle` shows up;
    // returns what was read (empty if it never did).
    std::string log_until(const std::string& needle, double timeout = 15) {
        Proc log("cat " + shq(p("log")));
        if (!log.wait_for(needle, timeout)) {
            ADD_FAILURE() << "log never said " << needle << "; got:\n" << log.out();
            return "";
        }
        return log.out();
    }
    ShResult replay(const std::string& args) {
        return sh(std::string(SWARMFS_BIN) + " replay --state " + shq(state()) + " " + args);
    }
    std::vector<json> json_lines(const std::string& text) {
        std::vector<json> v;
        for (const auto& l : lines(text)) {
            auto j = json::parse(l, nullptr, false);
            EXPECT_FALSE(j.is_discarded()) << "not JSON: " << l;
            if (!j.is_discarded()) v.push_back(std::move(j));
        }
        return v;
    }
    std::vector<std::string> file_lines(const std::string& path) {
        return lines(read_file(path).value_or(""));
    }
};

// Default pool (64 workers) and a one_for_all group of agents a and b.
class Sched : public Base {
  protected:
    std::string swarm_config() const override {
        // The agents record pids and files on the host to show what the
        // scheduler does: that needs the host's view, so no sandbox.
        return R"({"sandbox": false,
                   "supervisors": {"pair": {"strategy": "one_for_all", "agents": ["a", "b"]}}})";
    }
};

// One worker: the pool is full as soon as one turn runs. No aging to speak of.
class FullPool : public Base {
  protected:
    std::string swarm_config() const override {
        return R"({"sandbox": false, "scheduler": {"workers": 1, "aging": 3600}})";
    }
    // Agents that append their name to the order file when their turn runs.
    std::string order() const { return file("order"); }
    std::string record(const std::string& name) const {
        return "cat >/dev/null; echo " + name + " >> " + shq(order());
    }
};

class Aging : public FullPool {
  protected:
    std::string swarm_config() const override {
        return R"({"sandbox": false, "scheduler": {"workers": 1, "aging": 0.2}})";
    }
};

// Model agents against tests/fake_openai. The first-byte timeout is long so
// that a stalled request stays one request until it is stopped.
class ModelSched : public WithFakeModel<Base> {
  protected:
    std::string swarm_config() const override {
        return R"({"providers": {"local": {"base_url": ")" + fake_.base_url() +
               R"(", "backoff_initial": 0.05, "backoff_max": 0.2, "max_retries": 2,
                    "first_byte_timeout": 60, "idle_timeout": 60}}})";
    }
    void make_model(const std::string& name, json extra = json::object()) {
        json cfg = {{"provider", "local"}, {"model", "m"}, {"instructions", "You trade."}};
        for (auto& [k, v] : extra.items()) cfg[k] = v;
        ASSERT_NO_FATAL_FAILURE(make_agent(name, cfg.dump()));
    }
};

// ------------------------------------------------------------ fan-out

TEST_F(Sched, AnEventFansOutToEverySubscriberInParallel) {
    // Each subscriber marks that it started, then waits until all N have
    // started: it answers "together" only if all N turns overlapped. The
    // wait ends at a shared deadline, so a serial scheduler fails in ~30 s
    // instead of N x 30 s.
    constexpr int N = 8;
    const std::string barrier = file("barrier"), deadline = file("deadline");
    ASSERT_EQ(mkdir(barrier.c_str(), 0755), 0) << strerror(errno);
    const std::string script =
        "read -r payload; touch " + shq(barrier) + "/$SWARMFS_AGENT; d=$(cat " + shq(deadline) +
        "); while [ $(ls " + shq(barrier) + " | wc -l) -lt " + std::to_string(N) +
        " ] && [ $(date +%s) -lt $d ]; do sleep 0.05; done; "
        "if [ $(ls " +
        shq(barrier) + " | wc -l) -ge " + std::to_string(N) +
        " ]; then w=together; else w=alone; fi; echo \"$w $SWARMFS_TOPIC $payload\"";
    for (int i = 0; i < N; ++i)
        ASSERT_NO_FATAL_FAILURE(make_sh_agent("sub" + std::to_string(i), script,
                                              {{"subscribe", json::array({"prices"})}}));
    ASSERT_NO_FATAL_FAILURE(
        make_sh_agent("bystander", "cat", {{"subscribe", json::array({"news"})}}));
    auto topics = list_dir(p("events"));
    ASSERT_TRUE(topics);
    EXPECT_EQ(*topics, (std::vector<std::string>{"news", "prices"}))
        << "subscribing creates the topic";

    ASSERT_EQ(write_file(deadline, std::to_string(time(nullptr) + 30)), 0);
    const std::string payload = R"({"sym": "ACME", "px": 101.5})";
    auto r = sh("echo " + shq(payload) + " > " + shq(p("events/prices")));
    ASSERT_EQ(r.status, 0) << r.err;
    for (int i = 0; i < N; ++i) {
        std::string a = "sub" + std::to_string(i);
        EXPECT_EQ(cat_stream("agents/" + a + "/output", 45), "together prices " + payload + "\n")
            << a << " did not run at the same time as the other subscribers";
        ASSERT_TRUE(wait_idle(a));
        EXPECT_EQ(field(a, "turns"), "1") << status(a);
    }
    EXPECT_EQ(cat_stream("agents/bystander/output"), "") << "not subscribed to prices";
    EXPECT_EQ(field("bystander", "turns"), "0");

    // A second publication: another turn each; the topic streams both.
    r = sh("echo second > " + shq(p("events/prices")));
    ASSERT_EQ(r.status, 0) << r.err;
    for (int i = 0; i < N; ++i) {
        std::string a = "sub" + std::to_string(i);
        ASSERT_TRUE(wait_field(a, "turns", "2")) << status(a);
        EXPECT_TRUE(has(cat_stream("agents/" + a + "/output"), "together prices second\n"));
    }
    r = sh("head -n 2 " + shq(p("events/prices")), 10);
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.out, payload + "\nsecond\n");

    // Publishing to a new topic creates it; with no subscribers nothing runs.
    r = sh("echo hello > " + shq(p("events/fresh")));
    ASSERT_EQ(r.status, 0) << r.err;
    topics = list_dir(p("events"));
    ASSERT_TRUE(topics);
    EXPECT_EQ(*topics, (std::vector<std::string>{"fresh", "news", "prices"}));
    r = sh("head -n 1 " + shq(p("events/fresh")), 10);
    EXPECT_EQ(r.out, "hello\n");
    auto m = parse_metrics(slurp(p("metrics")));
    EXPECT_EQ(m.get("swarmfs_topic_published", {{"topic", "prices"}}), 2.0);
    EXPECT_EQ(m.get("swarmfs_topic_published", {{"topic", "fresh"}}), 1.0);
}

// ------------------------------------------------------------ priorities

TEST_F(FullPool, UnderAFullPoolInteractiveWorkStartsFirst) {
    ASSERT_NO_FATAL_FAILURE(make_sh_agent("blocker", gated("go", record("blocker"))));
    for (const char* n : {"bg", "def", "ui"}) ASSERT_NO_FATAL_FAILURE(make_sh_agent(n, record(n)));
    ASSERT_EQ(ctl("bg", "priority background"), 0) << err("bg");
    ASSERT_EQ(ctl("ui", "priority interactive"), 0) << err("ui");
    EXPECT_EQ(field("bg", "priority"), "background");
    EXPECT_EQ(field("def", "priority"), "default");
    EXPECT_EQ(field("ui", "priority"), "interactive");
    EXPECT_EQ(json::parse(slurp(p("agents/ui/config")))["priority"], "interactive");
    // A bad class is refused and changes nothing.
    EXPECT_EQ(ctl("ui", "priority urgent"), EINVAL);
    EXPECT_EQ(json::parse(slurp(p("agents/ui/config")))["priority"], "interactive");

    ASSERT_EQ(send("blocker", "x\n"), 0);
    ASSERT_TRUE(wait_field("blocker", "state", "running")) << status("blocker");
    // They arrive background first, interactive last; the one worker is busy.
    for (const char* n : {"bg", "def", "ui"}) ASSERT_EQ(send(n, "m\n"), 0);
    for (const char* n : {"bg", "def", "ui"}) EXPECT_EQ(field(n, "state"), "queued") << n;
    // The scheduler takes up a message on its own thread, just after the
    // write is acknowledged: the ready queue fills a moment later.
    EXPECT_TRUE(wait_until(
        [&] { return parse_metrics(slurp(p("metrics"))).get("swarmfs_ready_queue_depth") == 3.0; },
        5));
    auto m = parse_metrics(slurp(p("metrics")));
    EXPECT_EQ(m.get("swarmfs_workers"), 1.0);
    EXPECT_EQ(m.get("swarmfs_workers_busy"), 1.0);
    EXPECT_EQ(m.get("swarmfs_ready_queue_depth"), 3.0);
    EXPECT_EQ(m.get("swarmfs_agents", {{"state", "queued"}}), 3.0);

    touch(file("go"));
    ASSERT_TRUE(wait_until([&] { return file_lines(order()).size() == 4; }, 30)) << slurp(order());
    EXPECT_EQ(slurp(order()), "blocker\nui\ndef\nbg\n");
}

TEST_F(FullPool, ChangingThePriorityOfWaitingWorkTakesEffect) {
    // `priority background` on an agent whose message waits for a worker:
    // the user expects it to go behind default work that arrived later.
    ASSERT_NO_FATAL_FAILURE(make_sh_agent("blocker", gated("go", record("blocker"))));
    for (const char* n : {"digest", "chat"}) ASSERT_NO_FATAL_FAILURE(make_sh_agent(n, record(n)));
    ASSERT_EQ(send("blocker", "x\n"), 0);
    ASSERT_TRUE(wait_field("blocker", "state", "running")) << status("blocker");
    ASSERT_EQ(send("digest", "m\n"), 0);
    ASSERT_EQ(send("chat", "m\n"), 0);
    ASSERT_EQ(ctl("digest", "priority background"), 0) << err("digest");
    EXPECT_EQ(field("digest", "priority"), "background");
    touch(file("go"));
    ASSERT_TRUE(wait_until([&] { return file_lines(order()).size() == 3; }, 30)) << slurp(order());
    EXPECT_EQ(slurp(order()), "blocker\nchat\ndigest\n")
        << "digest was demoted to background while it waited, yet ran before default work";
}

TEST_F(FullPool, QueuedPrioritiesAreAsBeforeAfterKill9) {
    ASSERT_NO_FATAL_FAILURE(make_sh_agent("blocker", gated("go", record("blocker"))));
    for (const char* n : {"bg", "ui"}) ASSERT_NO_FATAL_FAILURE(make_sh_agent(n, record(n)));
    ASSERT_EQ(ctl("bg", "priority background"), 0);
    ASSERT_EQ(ctl("ui", "priority interactive"), 0);
    ASSERT_EQ(send("blocker", "x\n"), 0);
    ASSERT_TRUE(wait_field("blocker", "state", "running")) << status("blocker");
    ASSERT_EQ(send("bg", "m\n"), 0);
    ASSERT_EQ(send("ui", "m\n"), 0);
    ASSERT_NO_FATAL_FAILURE(kill9());
    touch(file("go"));  // nothing holds the blocker's rerun
    ASSERT_NO_FATAL_FAILURE(restart());
    EXPECT_EQ(field("bg", "priority"), "background");
    EXPECT_EQ(field("ui", "priority"), "interactive");
    ASSERT_TRUE(wait_until([&] { return file_lines(order()).size() == 3; }, 30)) << slurp(order());
    auto got = file_lines(order());
    // The blocker's interrupted turn runs again (default class); the
    // interactive message must not wait behind the background one.
    EXPECT_EQ(got.back(), "bg") << "background work ran before the rest after a restart:\n"
                                << slurp(order());
    EXPECT_EQ(got.front(), "ui") << "interactive work was not first after a restart:\n"
                                 << slurp(order());
}

TEST_F(Aging, BackgroundWorkAgesAndIsNotStarved) {
    // aging 0.2 s: after 1 s of waiting, background work counts as
    // interactive and, having arrived first, goes before new interactive work.
    ASSERT_NO_FATAL_FAILURE(make_sh_agent("blocker", gated("go", record("blocker"))));
    ASSERT_NO_FATAL_FAILURE(make_sh_agent("bg", record("bg"), {{"priority", "background"}}));
    ASSERT_NO_FATAL_FAILURE(make_sh_agent("ui", record("ui"), {{"priority", "interactive"}}));
    ASSERT_EQ(send("blocker", "x\n"), 0);
    ASSERT_TRUE(wait_field("blocker", "state", "running")) << status("blocker");
    ASSERT_EQ(send("bg", "m\n"), 0);
    sleep_for(1.0);  // five aging steps (a lower bound: more only ages it further)
    ASSERT_EQ(send("ui", "m\n"), 0);
    touch(file("go"));
    ASSERT_TRUE(wait_until([&] { return file_lines(order()).size() == 3; }, 30)) << slurp(order());
    EXPECT_EQ(slurp(order()), "blocker\nbg\nui\n");
}

// ------------------------------------------------------------ budgets

TEST_F(ModelSched, ASpentBudgetRefusesNewMessagesWithEdquotUntilRaised) {
    ASSERT_NO_FATAL_FAILURE(make_model("spender", {{"budget", 1}}));
    EXPECT_EQ(field("spender", "budget"), "1");
    // Three messages queued while stopped; the first turn spends the budget.
    ASSERT_EQ(ctl("spender", "stop"), 0);
    for (const char* m : {"one\n", "two\n", "three\n"}) ASSERT_EQ(send("spender", m), 0);
    EXPECT_EQ(field("spender", "queue"), "3");
    ASSERT_EQ(ctl("spender", "start"), 0);
    ASSERT_TRUE(wait_field("spender", "state", "budget exhausted")) << status("spender");
    auto st = status("spender");
    EXPECT_EQ(kv(st, "turns"), std::string("1")) << st;
    EXPECT_EQ(kv(st, "queue"), std::string("2")) << "the rest stay queued: " << st;
    EXPECT_EQ(cat_stream("agents/spender/output"), "echo: one\n");
    int used = std::stoi(kv(st, "tokens_in").value_or("0")) +
               std::stoi(kv(st, "tokens_out").value_or("0"));
    EXPECT_GE(used, 1) << st;

    // New messages are refused where the writer sees it.
    const char* stage = "";
    EXPECT_EQ(write_file(p("agents/spender/inbox"), "four\n", O_WRONLY | O_TRUNC, &stage), EDQUOT)
        << "failed at " << stage;
    auto r = sh("/bin/echo four > " + shq(p("agents/spender/inbox")));
    EXPECT_NE(r.status, 0) << "echo did not fail";
    EXPECT_TRUE(has(r.err, strerror(EDQUOT))) << r.err;
    EXPECT_TRUE(has(err("spender"), "token budget")) << err("spender");
    // ... and through a conversation routed to it.
    std::string n = slurp(p("conv/clone"));
    ASSERT_FALSE(n.empty());
    n.pop_back();
    int routed = write_file(p("conv/" + n + "/ctl"), "agent spender\n");
    if (routed == 0)
        EXPECT_EQ(write_file(p("conv/" + n + "/in"), "hi\n"), EDQUOT);
    else
        EXPECT_EQ(routed, EDQUOT);

    // Still spent after kill -9 and a restart.
    ASSERT_NO_FATAL_FAILURE(kill9());
    ASSERT_NO_FATAL_FAILURE(restart());
    EXPECT_EQ(field("spender", "state"), "budget exhausted") << status("spender");
    EXPECT_EQ(field("spender", "queue"), "2");
    EXPECT_EQ(send("spender", "four\n"), EDQUOT);

    // Raising the budget on ctl runs what waited and accepts new messages.
    ASSERT_EQ(ctl("spender", "budget 1000000"), 0) << err("spender");
    EXPECT_EQ(json::parse(slurp(p("agents/spender/config")))["budget"], 1000000);
    ASSERT_TRUE(wait_idle("spender", 20)) << status("spender");
    ASSERT_EQ(send("spender", "four\n"), 0);
    EXPECT_EQ(cat_stream("agents/spender/output"),
              "echo: one\necho: two\necho: three\necho: four\n");
    EXPECT_EQ(field("spender", "turns"), "4");
    EXPECT_EQ(field("spender", "budget"), "1000000");
}

// ------------------------------------------------------------ stop

TEST_F(Sched, StopKillsTheRunningExecChildAndKeepsTheQueue) {
    // Message "one" starts a child (in the turn's process group) and hangs.
    const std::string pid1 = file("pid1"), pid2 = file("pid2");
    ASSERT_NO_FATAL_FAILURE(
        make_sh_agent("trade", "read -r m; if [ \"$m\" = one ]; then echo $$ > " + shq(pid1) +
                                   "; sleep 600 & echo $! > " + shq(pid2) +
                                   "; echo started; wait; fi; " + "echo \"done $m\""));
    ASSERT_EQ(send("trade", "one\n"), 0);
    ASSERT_EQ(send("trade", "two\n"), 0);
    ASSERT_TRUE(wait_until([&] { return file_lines(pid2).size() == 1; }, 15));
    const pid_t shell = std::stoi(file_lines(pid1).at(0));
    const pid_t child = std::stoi(file_lines(pid2).at(0));
    ASSERT_EQ(kill(shell, 0), 0);
    ASSERT_EQ(kill(child, 0), 0);
    EXPECT_EQ(field("trade", "state"), "running");

    auto r = sh("echo stop > " + shq(p("agents/trade/ctl")), 30);
    ASSERT_FALSE(r.timed_out) << "stop did not return";
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(wait_until([&] { return pid_gone(shell) && pid_gone(child); }, 10))
        << "the turn's processes are still there: " << shell << " " << child;
    auto st = status("trade");
    EXPECT_EQ(kv(st, "state"), std::string("stopped")) << st;
    EXPECT_EQ(kv(st, "queue"), std::string("1")) << "two waits for start: " << st;
    EXPECT_EQ(kv(st, "failed"), std::string("1")) << st;
    EXPECT_EQ(kv(st, "restarts"), std::string("0")) << "a stop is not a crash: " << st;
    EXPECT_TRUE(has(err("trade"), "stopped by ctl")) << err("trade");
    EXPECT_TRUE(has(log_until("stopped by ctl"), "stopped by ctl"));

    ASSERT_EQ(ctl("trade", "start"), 0);
    ASSERT_TRUE(wait_idle("trade"));
    auto out = cat_stream("agents/trade/output");
    EXPECT_EQ(count(out, "done two\n"), 1u) << out;
    EXPECT_EQ(count(out, "done one"), 0u) << out;
    EXPECT_EQ(field("trade", "turns"), "1");
    EXPECT_EQ(field("trade", "failed"), "1");
}

TEST_F(ModelSched, StopAbortsTheHttpRequestAndKeepsTheQueue) {
    ASSERT_NO_FATAL_FAILURE(fake_.script(R"([{"stall_ms": 30000}])"));
    ASSERT_NO_FATAL_FAILURE(make_model("trade"));
    ASSERT_EQ(send("trade", "one\n"), 0);
    ASSERT_EQ(send("trade", "two\n"), 0);
    ASSERT_TRUE(wait_until([&] { return has(fake_.requests(), "one"); }, 15))
        << "the request never reached the provider";
    EXPECT_EQ(field("trade", "state"), "running");
    // The server's connection to the provider, as ss sees it.
    const std::string conns =
        "ss -Htnp state established '( dport = :" + std::to_string(fake_.port()) +
        " )' | grep -c 'pid=" + std::to_string(server_pid()) + ",'";
    ASSERT_EQ(sh(conns).out, "1\n") << "expected one open request: " << sh("ss -tnp").out;

    auto r = sh("echo stop > " + shq(p("agents/trade/ctl")), 25);
    ASSERT_FALSE(r.timed_out) << "stop waited for the stalled request";
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(wait_until([&] { return sh(conns).out == "0\n"; }, 10))
        << "the HTTP request is still open: " << sh("ss -tnp").out;
    auto st = status("trade");
    EXPECT_EQ(kv(st, "state"), std::string("stopped")) << st;
    EXPECT_EQ(kv(st, "queue"), std::string("1")) << st;
    EXPECT_EQ(kv(st, "failed"), std::string("1")) << st;
    EXPECT_EQ(kv(st, "restarts"), std::string("0")) << st;
    EXPECT_TRUE(has(err("trade"), "stopped by ctl")) << err("trade");

    ASSERT_EQ(ctl("trade", "start"), 0);
    ASSERT_TRUE(wait_idle("trade"));
    EXPECT_EQ(cat_stream("agents/trade/output"), "echo: two\n");
    EXPECT_EQ(lines(fake_.requests()).size(), 2u) << "the stopped request was retried:\n"
                                                  << fake_.requests();
}

// ------------------------------------------------------------ supervision

TEST_F(Sched, PastItsRestartIntensityAnAgentStaysCrashedUntilRestart) {
    const std::string ok = file("ok");
    ASSERT_NO_FATAL_FAILURE(make_sh_agent("frail", "[ -e " + shq(ok) + " ] && cat",
                                          {{"restart", {{"max_restarts", 3}, {"period", 60}}}}));
    ASSERT_NO_FATAL_FAILURE(make_sh_agent("steady", "cat"));
    for (const char* m : {"one\n", "two\n", "three\n"}) ASSERT_EQ(send("frail", m), 0);
    // one: crash, restart, crash: parked; two: the same, and the fourth
    // crash is past 3 restarts in 60 s.
    ASSERT_TRUE(wait_field("frail", "state", "crashed")) << status("frail");
    auto st = status("frail");
    EXPECT_EQ(kv(st, "crashed"), std::string("3/3 in 60s: exit status 1")) << st;
    EXPECT_EQ(kv(st, "parked"), std::string("2")) << st;
    EXPECT_EQ(kv(st, "restarts"), std::string("3")) << st;
    EXPECT_EQ(kv(st, "failed"), std::string("4")) << st;
    EXPECT_EQ(kv(st, "queue"), std::string("1")) << "three waits for restart: " << st;
    std::string e = err("frail");
    EXPECT_EQ(count(e, "parked as failed"), 2u) << e;
    EXPECT_TRUE(has(e, "until \"restart\"")) << e;

    // The parked messages are in the log, and err names the same ones.
    std::string log = log_until("\"kind\":\"agent_crashed\"");
    std::map<int64_t, std::string> texts;
    std::vector<int64_t> parked;
    for (auto& j : json_lines(log)) {
        if (j.value("agent", "") != "frail") continue;
        if (j["kind"] == "message") texts[j.value("msg", int64_t{0})] = j.value("text", "");
        if (j.value("parked", false)) parked.push_back(j.value("msg", int64_t{0}));
    }
    ASSERT_EQ(parked.size(), 2u) << log;
    EXPECT_EQ(texts[parked[0]], "one\n");
    EXPECT_EQ(texts[parked[1]], "two\n");
    for (auto m : parked)
        EXPECT_TRUE(has(e, "message " + std::to_string(m) + " parked as failed")) << e;

    // Another agent is unaffected; a new message is kept but does not run.
    ASSERT_EQ(send("steady", "fine\n"), 0);
    EXPECT_EQ(cat_stream("agents/steady/output"), "fine\n");
    ASSERT_EQ(send("frail", "four\n"), 0);
    EXPECT_EQ(cat_stream("agents/frail/output"), "") << "a crashed agent runs nothing";
    EXPECT_EQ(field("frail", "queue"), "2");

    // Given up stays given up across kill -9, until "restart".
    ASSERT_NO_FATAL_FAILURE(kill9());
    ASSERT_NO_FATAL_FAILURE(restart());
    EXPECT_EQ(field("frail", "state"), "crashed") << status("frail");
    touch(ok);
    ASSERT_EQ(ctl("frail", "restart"), 0) << err("frail");
    ASSERT_TRUE(wait_idle("frail")) << status("frail");
    EXPECT_EQ(cat_stream("agents/frail/output"), "three\nfour\n");
    st = status("frail");
    EXPECT_FALSE(kv(st, "crashed")) << st;
    EXPECT_EQ(kv(st, "turns"), std::string("2")) << st;
}

TEST_F(Sched, ATurnPastItsTimeLimitIsACrash) {
    const std::string pids = file("pids");
    ASSERT_NO_FATAL_FAILURE(make_sh_agent("hang", "echo $$ >> " + shq(pids) + "; exec sleep 600",
                                          {{"turn_timeout", 0.5}}));
    ASSERT_EQ(send("hang", "x\n"), 0);
    ASSERT_TRUE(wait_field("hang", "parked", "1")) << status("hang");
    ASSERT_TRUE(wait_idle("hang"));
    auto e = err("hang");
    EXPECT_TRUE(has(e, "turn timed out after 0.5 s")) << e;
    EXPECT_TRUE(has(e, "parked as failed")) << e;
    auto st = status("hang");
    EXPECT_EQ(kv(st, "failed"), std::string("2")) << "run once more, then parked: " << st;
    EXPECT_EQ(kv(st, "restarts"), std::string("2")) << st;
    auto started = file_lines(pids);
    EXPECT_EQ(started.size(), 2u);
    for (auto& pid : started)
        EXPECT_TRUE(wait_until([&] { return pid_gone(std::stoi(pid)); }, 10))
            << "timed-out turn's process " << pid << " still runs";
}

TEST_F(Sched, ACrashInAOneForAllGroupRestartsItsSiblings) {
    // b (in the group with a) and c (outside it) run held turns; a crashes.
    auto held = [&](const std::string& who) {
        return "echo $$ >> " + shq(file(who + ".pids")) + "; " + gated("go", "echo done");
    };
    ASSERT_NO_FATAL_FAILURE(make_sh_agent("a", "exit 7"));
    ASSERT_NO_FATAL_FAILURE(make_sh_agent("b", held("b")));
    ASSERT_NO_FATAL_FAILURE(make_sh_agent("c", held("c")));
    ASSERT_EQ(send("b", "x\n"), 0);
    ASSERT_EQ(send("c", "x\n"), 0);
    ASSERT_TRUE(wait_until(
        [&] {
            return file_lines(file("b.pids")).size() == 1 && file_lines(file("c.pids")).size() == 1;
        },
        15));
    const pid_t b_first = std::stoi(file_lines(file("b.pids"))[0]);
    const pid_t c_first = std::stoi(file_lines(file("c.pids"))[0]);

    ASSERT_EQ(send("a", "boom\n"), 0);
    ASSERT_TRUE(wait_field("a", "parked", "1")) << status("a");
    EXPECT_TRUE(has(err("b"), "restarted with a (one_for_all group pair)")) << err("b");
    EXPECT_TRUE(wait_until([&] { return file_lines(file("b.pids")).size() >= 2; }, 15))
        << "b's message did not run again";
    EXPECT_TRUE(wait_until([&] { return pid_gone(b_first); }, 10)) << "b's first turn still runs";
    EXPECT_EQ(file_lines(file("c.pids")).size(), 1u) << "c is not in the group";
    EXPECT_EQ(kill(c_first, 0), 0) << "c's turn was touched";
    EXPECT_TRUE(has(log_until("\"kind\":\"group_restarted\""), "\"group\":\"pair\""));

    touch(file("go"));
    ASSERT_TRUE(wait_idle("b"));
    ASSERT_TRUE(wait_idle("c"));
    EXPECT_EQ(cat_stream("agents/b/output"), "done\n");
    EXPECT_EQ(cat_stream("agents/c/output"), "done\n");
    auto b = status("b"), c = status("c"), a = status("a");
    EXPECT_EQ(kv(b, "turns"), std::string("1")) << b;
    EXPECT_EQ(kv(b, "parked"), std::string("0")) << b;
    EXPECT_EQ(kv(c, "turns"), std::string("1")) << c;
    EXPECT_EQ(kv(c, "failed"), std::string("0")) << c;
    EXPECT_EQ(kv(a, "state"), std::string("idle")) << a;
    EXPECT_EQ(kv(a, "restarts"), std::string("2")) << a;
}

// ------------------------------------------------------------ replay

TEST_F(Sched, ReplayPrintsTheHistoryAndItsFiltersWork) {
    ASSERT_NO_FATAL_FAILURE(make_agent("upper", R"({"exec": ["tr", "a-z", "A-Z"]})"));
    ASSERT_NO_FATAL_FAILURE(make_agent("other", R"({"exec": ["cat"]})"));
    ASSERT_EQ(send("upper", "hello\n"), 0);
    EXPECT_EQ(cat_stream("agents/upper/output"), "HELLO\n");
    ASSERT_TRUE(wait_idle("upper"));
    ASSERT_EQ(send("other", "x\n"), 0);
    EXPECT_EQ(cat_stream("agents/other/output"), "x\n");
    ASSERT_TRUE(wait_idle("other"));

    auto all = replay("");
    ASSERT_EQ(all.status, 0) << all.err;
    auto events = json_lines(all.out);
    ASSERT_FALSE(events.empty());
    int64_t last_id = 0;
    json finished, message;
    for (auto& e : events) {
        EXPECT_GT(e.value("id", int64_t{0}), last_id) << e.dump();
        last_id = e.value("id", int64_t{0});
        EXPECT_TRUE(e.contains("ts") && e.contains("kind")) << e.dump();
        if (e.value("agent", "") != "upper") continue;
        if (e["kind"] == "turn_finished") finished = e;
        if (e["kind"] == "message") message = e;
    }
    ASSERT_TRUE(finished.is_object()) << all.out;
    ASSERT_TRUE(message.is_object()) << all.out;
    EXPECT_EQ(finished.value("output", ""), "HELLO\n");
    EXPECT_EQ(message.value("text", ""), "hello\n");
    const std::string turn = std::to_string(finished.value("turn", int64_t{0}));
    const std::string msg = std::to_string(message.value("msg", int64_t{0}));

    // The same lines as MNT/log.
    {
        Proc log("cat " + shq(p("log")));
        EXPECT_TRUE(wait_until(
            [&] {
                log.pump(0.05);
                return log.out().size() >= all.out.size();
            },
            10));
        EXPECT_EQ(log.out().substr(0, all.out.size()), all.out);
    }

    // --turn: the turn from start to finish, nothing else.
    auto r = replay("--turn " + turn);
    ASSERT_EQ(r.status, 0) << r.err;
    std::set<std::string> kinds;
    for (auto& e : json_lines(r.out)) {
        EXPECT_EQ(std::to_string(e.value("turn", int64_t{-1})), turn) << e.dump();
        kinds.insert(e.value("kind", ""));
    }
    EXPECT_TRUE(kinds.count("turn_started") && kinds.count("turn_finished")) << r.out;

    // --agent: upper's events only.
    r = replay("--agent upper");
    ASSERT_EQ(r.status, 0) << r.err;
    auto mine = json_lines(r.out);
    EXPECT_GE(mine.size(), 3u) << r.out;
    for (auto& e : mine) EXPECT_EQ(e.value("agent", ""), "upper") << e.dump();

    // --kind and --msg.
    r = replay("--kind message");
    ASSERT_EQ(r.status, 0) << r.err;
    auto msgs = json_lines(r.out);
    EXPECT_EQ(msgs.size(), 2u) << r.out;
    for (auto& e : msgs) EXPECT_EQ(e.value("kind", ""), "message");
    r = replay("--msg " + msg);
    ASSERT_EQ(r.status, 0) << r.err;
    kinds.clear();
    for (auto& e : json_lines(r.out)) {
        EXPECT_EQ(std::to_string(e.value("msg", int64_t{-1})), msg) << e.dump();
        kinds.insert(e.value("kind", ""));
    }
    EXPECT_TRUE(kinds.count("message") && kinds.count("turn_finished")) << r.out;
    r = replay("--agent upper --kind turn_finished");
    EXPECT_EQ(json_lines(r.out).size(), 1u) << r.out;

    // --after: only later events (other's message and turn).
    const int64_t after = finished.value("id", int64_t{0});
    r = replay("--after " + std::to_string(after));
    ASSERT_EQ(r.status, 0) << r.err;
    auto later = json_lines(r.out);
    EXPECT_FALSE(later.empty());
    for (auto& e : later) {
        EXPECT_GT(e.value("id", int64_t{0}), after) << e.dump();
        EXPECT_NE(e.value("agent", ""), "upper") << e.dump();
    }

    // It works on a dead swarm's state too, and says what is wrong.
    ASSERT_NO_FATAL_FAILURE(kill9());
    r = replay("");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, all.out);
    r = replay("--bogus");
    EXPECT_EQ(r.status, 2);
    EXPECT_TRUE(has(r.err, "usage")) << r.err;
    r = sh(std::string(SWARMFS_BIN) + " replay --state " + shq(file("nowhere")));
    EXPECT_EQ(r.status, 1);
    EXPECT_TRUE(has(r.err, "no event log")) << r.err;
}

// ------------------------------------------------------------ metrics

TEST_F(ModelSched, MetricsParseAndMatchStatus) {
    ASSERT_NO_FATAL_FAILURE(make_model("sales"));
    ASSERT_NO_FATAL_FAILURE(make_agent("picky", R"({"exec": ["sh", "-c", "exit 3"]})"));
    ASSERT_NO_FATAL_FAILURE(make_sh_agent("held", gated("go", "cat")));
    ASSERT_EQ(send("sales", "hello\n"), 0);
    ASSERT_EQ(send("sales", "again\n"), 0);
    ASSERT_EQ(send("picky", "x\n"), 0);
    EXPECT_EQ(cat_stream("agents/sales/output"), "echo: hello\necho: again\n");
    ASSERT_TRUE(wait_field("picky", "parked", "1"));
    ASSERT_TRUE(wait_idle("picky"));
    ASSERT_TRUE(wait_idle("sales"));
    ASSERT_EQ(send("held", "one\n"), 0);
    ASSERT_TRUE(wait_field("held", "state", "running"));
    ASSERT_EQ(send("held", "two\n"), 0);

    const std::string text = slurp(p("metrics"));
    auto m = parse_metrics(text);
    for (auto& pr : m.problems) ADD_FAILURE() << pr;
    if (!m.problems.empty()) std::cerr << text;
    EXPECT_EQ(m.types["swarmfs_turns_total"], "counter");
    EXPECT_EQ(m.types["swarmfs_turn_seconds"], "histogram");
    EXPECT_EQ(m.types["swarmfs_queue_depth"], "gauge");

    auto num = [&](const std::string& agent, const std::string& key) {
        return std::stod(field(agent, key));
    };
    EXPECT_EQ(m.get("swarmfs_turns_total", {{"agent", "sales"}, {"result", "ok"}}),
              num("sales", "turns"));
    EXPECT_EQ(m.get("swarmfs_turns_total", {{"agent", "picky"}, {"result", "failed"}}),
              num("picky", "failed"));
    EXPECT_EQ(m.get("swarmfs_restarts_total", {{"agent", "picky"}}), num("picky", "restarts"));
    EXPECT_EQ(m.get("swarmfs_tokens_total", {{"agent", "sales"}, {"direction", "in"}}),
              num("sales", "tokens_in"));
    EXPECT_EQ(m.get("swarmfs_tokens_total", {{"agent", "sales"}, {"direction", "out"}}),
              num("sales", "tokens_out"));
    EXPECT_EQ(m.get("swarmfs_turn_seconds_count", {{"agent", "sales"}}), 2.0);
    EXPECT_EQ(m.get("swarmfs_turn_seconds_count", {{"agent", "picky"}}), 2.0);
    EXPECT_EQ(m.get("swarmfs_queue_wait_seconds_count", {{"agent", "sales"}}), 2.0);
    for (const char* a : {"sales", "picky", "held"})
        EXPECT_EQ(m.get("swarmfs_queue_depth", {{"agent", a}}), num(a, "queue")) << a;
    EXPECT_EQ(m.get("swarmfs_queue_depth", {{"agent", "held"}}), 1.0);
    EXPECT_EQ(m.get("swarmfs_running_turns", {{"agent", "held"}}), 1.0);
    EXPECT_EQ(m.get("swarmfs_running_turns", {{"agent", "sales"}}), 0.0);
    EXPECT_EQ(m.get("swarmfs_agents", {{"state", "idle"}}), 2.0);
    EXPECT_EQ(m.get("swarmfs_agents", {{"state", "running"}}), 1.0);
    EXPECT_EQ(m.get("swarmfs_workers"), 64.0);
    EXPECT_EQ(m.get("swarmfs_workers_busy"), 1.0);
    EXPECT_EQ(m.get("swarmfs_ready_queue_depth"), 0.0);

    touch(file("go"));
    ASSERT_TRUE(wait_idle("held"));
    m = parse_metrics(slurp(p("metrics")));
    EXPECT_TRUE(m.problems.empty());
    EXPECT_EQ(m.get("swarmfs_turns_total", {{"agent", "held"}, {"result", "ok"}}), 2.0);
    EXPECT_EQ(m.get("swarmfs_workers_busy"), 0.0);
    EXPECT_EQ(m.get("swarmfs_agents", {{"state", "idle"}}), 3.0);
}

// ------------------------------------------------------------ recovery

TEST_F(Sched, Kill9DuringABurstOfWritesToSeveralAgents) {
    // Eight writers send to four agents; the server dies mid-burst. After a
    // restart every acknowledged message is in its agent's output exactly
    // once, and nothing appears twice or out of nowhere.
    const std::vector<std::string> agents = {"w0", "w1", "w2", "w3"};
    for (auto& a : agents) ASSERT_NO_FATAL_FAILURE(make_sh_agent(a, "sleep 0.02; cat"));
    constexpr int kWriters = 8, kPerWriter = 300;
    std::mutex mu;
    std::map<std::string, std::set<std::string>> acked, tried;  // agent -> messages
    std::atomic<int> n_acked{0};
    std::atomic<bool> killed{false};
    std::vector<std::string> early_failures;
    std::vector<std::thread> writers;
    for (int t = 0; t < kWriters; ++t)
        writers.emplace_back([&, t] {
            for (int k = 0; k < kPerWriter; ++k) {
                const std::string& a = agents[(t + k) % agents.size()];
                std::string m = "t" + std::to_string(t) + "-m" + std::to_string(k);
                {
                    std::lock_guard lk(mu);
                    tried[a].insert(m);
                }
                int e = write_file(p("agents/" + a + "/inbox"), m + "\n");
                std::lock_guard lk(mu);
                if (e == 0) {
                    acked[a].insert(m);
                    ++n_acked;
                    continue;
                }
                if (!killed) early_failures.push_back(m + ": " + strerror(e));
                return;
            }
        });
    EXPECT_TRUE(wait_until([&] { return n_acked >= 80; }, 60));
    killed = true;
    ASSERT_NO_FATAL_FAILURE(kill9());
    for (auto& w : writers) w.join();
    EXPECT_TRUE(early_failures.empty()) << early_failures.front();
    const int total = n_acked;
    EXPECT_LT(total, kWriters * kPerWriter) << "the kill came after the burst, not during it";

    ASSERT_NO_FATAL_FAILURE(restart());
    // The kill left acknowledged work unfinished (else nothing was recovered).
    int pending = 0;
    for (auto& a : agents) pending += std::stoi(kv(status(a), "queue").value_or("0"));
    EXPECT_GT(pending, 0) << "every message had finished before the kill";
    RecordProperty("acknowledged", total);
    RecordProperty("pending_after_restart", pending);
    for (auto& a : agents) {
        ASSERT_TRUE(wait_idle(a, 90)) << status(a);
        const std::string out = cat_stream("agents/" + a + "/output", 30);
        std::map<std::string, int> seen;
        for (auto& l : lines(out)) ++seen[l];
        for (auto& [l, n] : seen) {
            EXPECT_EQ(n, 1) << a << ": \"" << l << "\" appears " << n << " times";
            EXPECT_TRUE(tried[a].count(l)) << a << ": \"" << l << "\" was never sent";
        }
        size_t missing = 0;
        for (auto& m : acked[a])
            if (!seen.count(m)) ++missing;
        EXPECT_EQ(missing, 0u) << a << ": " << missing << " of " << acked[a].size()
                               << " acknowledged messages never ran";
        EXPECT_EQ(field(a, "queue"), "0");
        EXPECT_EQ(field(a, "turns"), std::to_string(seen.size())) << status(a);
    }
}

}  // namespace
}  // namespace swarmfs::it
