// Provider rate limits through the mount, as a user sees them: a provider's
// "rpm" and "tpm" (requests and tokens per minute, token buckets shared by
// every agent on that provider, each holding a minute's worth) hold turns
// back instead of failing them. While held back an agent's status says
// `state waiting` and the log has a `rate_limited` event; the turn runs when
// capacity returns. Requests are timed where they arrive (tests/fake_openai
// records a `ts` for each); the checks are lower bounds with a generous
// slack ("this request did not come before the bucket could allow it"),
// never upper bounds on how fast something happens.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "tests/support/mount_fixture.h"

namespace swarmfs::it {
namespace {

using json = nlohmann::json;

// Time a request may take from leaving the rate limiter to being recorded by
// the fake provider, and clock noise: subtracted from every lower bound.
constexpr double kSlack = 0.5;

bool has(std::string_view hay, std::string_view needle) {
    return hay.find(needle) != std::string_view::npos;
}

std::string trim(std::string s) {
    while (!s.empty() && isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    size_t i = 0;
    while (i < s.size() && isspace(static_cast<unsigned char>(s[i]))) ++i;
    return s.substr(i);
}

// The complete lines of `s` parsed as JSON objects (a last partial line is
// left out).
std::vector<json> json_lines(const std::string& s) {
    std::vector<json> v;
    auto ls = lines(s);
    if (!s.empty() && s.back() != '\n' && !ls.empty()) ls.pop_back();
    for (const auto& l : ls) {
        auto j = json::parse(l, nullptr, false);
        if (!j.is_discarded() && j.is_object()) v.push_back(std::move(j));
    }
    return v;
}

// One chat request as the provider saw it.
struct Request {
    double ts = 0;     // arrival, seconds (the fake's wall clock)
    std::string user;  // the last user message, trimmed
};

// The chat requests recorded by `fake`, in arrival order.
std::vector<Request> chat_requests(const FakeOpenAI& fake) {
    std::vector<Request> v;
    for (auto& r : json_lines(fake.requests())) {
        if (!has(r.value("path", ""), "/chat/completions")) continue;
        Request q;
        q.ts = r.value("ts", 0.0);
        if (r.contains("body") && r["body"].is_object() && r["body"].contains("messages"))
            for (auto& m : r["body"]["messages"])
                if (m.value("role", "") == "user" && m.contains("content") &&
                    m["content"].is_string())
                    q.user = trim(m["content"].get<std::string>());
        v.push_back(std::move(q));
    }
    std::stable_sort(v.begin(), v.end(),
                     [](const Request& a, const Request& b) { return a.ts < b.ts; });
    return v;
}

// A bucket of `burst` refilled at `per_second` lets through k requests only
// over at least (k - burst) / per_second seconds: checks every run of
// consecutive arrivals against that (less kSlack). Reports the first run that
// came too early.
void expect_within_rate(const std::vector<Request>& reqs, double burst, double per_second) {
    for (size_t i = 0; i < reqs.size(); ++i) {
        for (size_t j = i; j < reqs.size(); ++j) {
            double k = static_cast<double>(j - i + 1);
            if (k <= burst) continue;
            double need = (k - burst) / per_second - kSlack;
            double span = reqs[j].ts - reqs[i].ts;
            if (span < need) {
                ADD_FAILURE() << "requests " << i + 1 << ".." << j + 1 << " (" << k
                              << " requests) arrived within " << span << " s; a bucket of " << burst
                              << " refilled at " << per_second << "/s needs at least "
                              << need + kSlack << " s";
                return;
            }
        }
    }
}

std::vector<json> of_kind(const std::vector<json>& evs, const std::string& kind,
                          const std::string& agent = "") {
    std::vector<json> v;
    for (auto& e : evs)
        if (e.value("kind", "") == kind && (agent.empty() || e.value("agent", "") == agent))
            v.push_back(e);
    return v;
}

// The event of `kind` for `turn`, or null.
json turn_event(const std::vector<json>& evs, const std::string& kind, int64_t turn) {
    for (auto& e : evs)
        if (e.value("kind", "") == kind && e.value("turn", int64_t{-1}) == turn) return e;
    return nullptr;
}

// Model agents against tests/fake_openai. Subclasses say which limits the
// provider "local" has (the JSON members to add to it).
class RateLimitBase : public WithFakeModel<> {
  protected:
    virtual std::string limits() const = 0;
    static std::string provider(const std::string& url, const std::string& extra) {
        return R"({"base_url": ")" + url +
               R"(", "backoff_initial": 0.05, "backoff_max": 0.2, "max_retries": 2,
                  "first_byte_timeout": 30, "idle_timeout": 30)" +
               (extra.empty() ? "" : ", " + extra) + "}";
    }
    std::string swarm_config() const override {
        return R"({"providers": {"local": )" + provider(fake_.base_url(), limits()) + "}}";
    }

    void make_model(const std::string& name, const std::string& prov = "local") {
        json cfg = {{"provider", prov}, {"model", "m"}, {"instructions", "You trade."}};
        ASSERT_NO_FATAL_FAILURE(make_agent(name, cfg.dump()));
    }
    // Queues `msgs` on a stopped agent, so that they later run back to back.
    void queue_stopped(const std::string& agent, const std::vector<std::string>& msgs) {
        ASSERT_EQ(ctl(agent, "stop"), 0) << err(agent);
        for (auto& m : msgs) ASSERT_EQ(send(agent, m + "\n"), 0) << m;
        ASSERT_EQ(field(agent, "queue"), std::to_string(msgs.size())) << status(agent);
    }
    // Reads MNT/log (endless) until `done` holds for its events; returns them
    // (ADD_FAILUREs after `timeout` if `required`).
    std::vector<json> log_until(const std::function<bool(const std::vector<json>&)>& done,
                                double timeout = 30, bool required = true) {
        Proc cat("cat " + shq(p("log")));
        std::vector<json> evs;
        bool ok = wait_until(
            [&] {
                cat.pump(0.05);
                evs = json_lines(cat.out());
                return done(evs);
            },
            timeout, 0.01);
        if (!ok && required) ADD_FAILURE() << "the log never got there; it says:\n" << cat.out();
        return evs;
    }
    // The log once it has `n` turn_finished/turn_failed events for `agent`.
    std::vector<json> log_with_turns(const std::string& agent, size_t n, double timeout = 30) {
        return log_until(
            [&](const std::vector<json>& evs) {
                return of_kind(evs, "turn_finished", agent).size() +
                           of_kind(evs, "turn_failed", agent).size() >=
                       n;
            },
            timeout);
    }
    // The text of the message a turn ran (via turn_started and message).
    static std::string turn_text(const std::vector<json>& evs, int64_t turn) {
        json started = turn_event(evs, "turn_started", turn);
        if (started.is_null()) return "(no turn_started)";
        int64_t msg = started.value("msg", int64_t{-1});
        for (auto& e : evs)
            if (e.value("kind", "") == "message" && e.value("msg", int64_t{-2}) == msg)
                return trim(e.value("text", ""));
        return "(no message " + std::to_string(msg) + ")";
    }
};

std::vector<std::string> numbered(const std::string& prefix, int n) {
    std::vector<std::string> v;
    for (int i = 0; i < n; ++i) {
        char buf[16];
        snprintf(buf, sizeof buf, "%02d", i);
        v.push_back(prefix + buf);
    }
    return v;
}

std::string echoes(const std::vector<std::string>& msgs) {
    std::string s;
    for (auto& m : msgs) s += "echo: " + m + "\n";
    return s;
}

// ------------------------------------------------------------ rpm

// 60 requests a minute: 60 at once, then one a second.
class RateLimitRpm : public RateLimitBase {
  protected:
    std::string limits() const override { return R"("rpm": 60)"; }
};

TEST_F(RateLimitRpm, TurnsOverTheRequestLimitWaitAndAllRunInTime) {
    // 65 messages run back to back: the first 60 (and one more per second
    // they take) go at once, the rest wait about a second each.
    constexpr int N = 65;
    const auto msgs = numbered("m", N);
    ASSERT_NO_FATAL_FAILURE(make_model("trader"));
    ASSERT_NO_FATAL_FAILURE(queue_stopped("trader", msgs));
    ASSERT_EQ(ctl("trader", "start"), 0) << err("trader");

    // Status says `waiting` while a turn is held back, and nothing is held
    // back before the minute's allowance has gone to the provider.
    bool saw_waiting = false;
    size_t sent_when_waiting = 0;
    std::string waiting_status;
    ASSERT_TRUE(wait_until(
        [&] {
            auto st = status("trader");
            if (!saw_waiting && kv(st, "state") == std::string("waiting")) {
                saw_waiting = true;
                waiting_status = st;
                sent_when_waiting = chat_requests(fake_).size();
            }
            return kv(st, "turns") == std::to_string(N);
        },
        60, 0.02))
        << status("trader");
    EXPECT_TRUE(saw_waiting) << "status never said `state waiting`";
    EXPECT_GE(sent_when_waiting, 60u) << "a turn waited before the burst of 60 was used up";
    EXPECT_EQ(kv(waiting_status, "failed"), std::string("0")) << waiting_status;

    // Every message got its reply, in order; nothing failed.
    ASSERT_TRUE(wait_idle("trader", 30)) << status("trader");
    EXPECT_EQ(cat_stream("agents/trader/output", 30), echoes(msgs));
    auto st = status("trader");
    EXPECT_EQ(kv(st, "failed"), std::string("0")) << st;
    EXPECT_EQ(kv(st, "parked"), std::string("0")) << st;
    EXPECT_EQ(kv(st, "last_error"), std::string("-")) << st;
    EXPECT_EQ(err("trader"), "") << "err has a failure line";

    // The log: rate_limited events naming the agent and provider, only for
    // turns past the burst, and each of those turns finished.
    auto evs = log_with_turns("trader", N);
    auto limited = of_kind(evs, "rate_limited");
    EXPECT_GE(limited.size(), 1u) << "no rate_limited event in the log";
    EXPECT_LE(limited.size(), static_cast<size_t>(N - 60)) << "more turns waited than were over";
    for (auto& e : limited) {
        EXPECT_EQ(e.value("agent", ""), "trader") << e.dump();
        EXPECT_EQ(e.value("provider", ""), "local") << e.dump();
        ASSERT_TRUE(e.contains("turn") && e["turn"].is_number_integer()) << e.dump();
        int64_t turn = e["turn"].get<int64_t>();
        EXPECT_FALSE(turn_event(evs, "turn_finished", turn).is_null())
            << "turn " << turn << " waited but never finished";
        // Only messages past the first 60 can have waited.
        std::string text = turn_text(evs, turn);
        EXPECT_TRUE(text.size() == 3 && text[0] == 'm' && std::stoi(text.substr(1)) >= 60)
            << "turn " << turn << " (" << text << ") waited within the burst";
    }
    EXPECT_TRUE(of_kind(evs, "turn_failed").empty());
    EXPECT_EQ(of_kind(evs, "turn_finished", "trader").size(), static_cast<size_t>(N));

    // The provider got each message once, in order, and never faster than
    // the bucket allows.
    auto reqs = chat_requests(fake_);
    ASSERT_EQ(reqs.size(), static_cast<size_t>(N));
    for (int i = 0; i < N; ++i) EXPECT_EQ(reqs[i].user, msgs[i]) << "request " << i + 1;
    expect_within_rate(reqs, 60, 1.0);
    // In particular the 61st did not come before about a second after the first.
    EXPECT_GE(reqs[60].ts - reqs[0].ts, 1.0 - kSlack);
    EXPECT_GE(reqs[N - 1].ts - reqs[0].ts, (N - 60) - kSlack);
}

// ------------------------------------------------------------ tpm

// 1200 tokens a minute: 1200 at once, then 20 a second. A request larger
// than the whole bucket is let through once it is full again.
class RateLimitTpm : public RateLimitBase {
  protected:
    std::string limits() const override { return R"("tpm": 1200)"; }
};

TEST_F(RateLimitTpm, ALargeMessageWaitsForTokenCapacity) {
    ASSERT_NO_FATAL_FAILURE(make_model("reader"));
    // A small message spends some of the minute's tokens at once (its usage,
    // prompt and reply, is charged when it ends); a large one (about 1500
    // tokens, more than the bucket holds) then waits until the bucket is
    // full again: about 3 s for the ~60 tokens the first one used.
    const std::string small = "first " + std::string(100, 's');
    const std::string large = "second " + std::string(6000, 'l');
    ASSERT_NO_FATAL_FAILURE(queue_stopped("reader", {small, large}));
    ASSERT_EQ(ctl("reader", "start"), 0) << err("reader");

    bool saw_waiting = false;
    size_t sent_when_waiting = 0;
    ASSERT_TRUE(wait_until(
        [&] {
            auto st = status("reader");
            if (!saw_waiting && kv(st, "state") == std::string("waiting")) {
                saw_waiting = true;
                sent_when_waiting = chat_requests(fake_).size();
            }
            return kv(st, "turns") == "2";
        },
        60, 0.02))
        << status("reader");
    EXPECT_TRUE(saw_waiting) << "status never said `state waiting`";
    EXPECT_EQ(sent_when_waiting, 1u) << "the large message was sent before it waited";

    EXPECT_EQ(cat_stream("agents/reader/output", 30), "echo: " + small + "\necho: " + large + "\n");
    auto st = status("reader");
    EXPECT_EQ(kv(st, "failed"), std::string("0")) << st;
    EXPECT_EQ(err("reader"), "");

    // The log: the large message's turn, and only it, waited.
    auto evs = log_with_turns("reader", 2);
    auto limited = of_kind(evs, "rate_limited");
    ASSERT_EQ(limited.size(), 1u) << "expected one rate_limited event";
    EXPECT_EQ(limited[0].value("agent", ""), "reader") << limited[0].dump();
    EXPECT_EQ(limited[0].value("provider", ""), "local") << limited[0].dump();
    int64_t turn = limited[0].value("turn", int64_t{-1});
    EXPECT_EQ(turn_text(evs, turn), large) << "turn " << turn;
    EXPECT_FALSE(turn_event(evs, "turn_finished", turn).is_null()) << "it did not finish";
    EXPECT_TRUE(of_kind(evs, "turn_failed").empty());

    // The large request came only once the first one's tokens had refilled:
    // used / (20 tokens a second) after the first request, at the earliest.
    auto fin = of_kind(evs, "turn_finished", "reader");
    ASSERT_EQ(fin.size(), 2u);
    int64_t used = fin[0].value("tokens_in", int64_t{0}) + fin[0].value("tokens_out", int64_t{0});
    EXPECT_GE(used, 40) << fin[0].dump();
    auto reqs = chat_requests(fake_);
    ASSERT_EQ(reqs.size(), 2u);
    EXPECT_EQ(reqs[0].user, small);
    EXPECT_EQ(reqs[1].user, trim(large));
    EXPECT_GE(reqs[1].ts - reqs[0].ts, static_cast<double>(used) / 20.0 - kSlack)
        << "the first request used " << used << " tokens";
}

// ------------------------------------------------------------ shared

// Agents a and b on "local" (60 requests a minute); c on "free", another
// provider (its own fake server) without limits.
class RateLimitShared : public RateLimitBase {
  protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(free_.start());
        RateLimitBase::SetUp();
    }
    void TearDown() override {
        RateLimitBase::TearDown();
        free_.stop();
    }
    std::string limits() const override { return R"("rpm": 60)"; }
    std::string swarm_config() const override {
        return R"({"providers": {"local": )" + provider(fake_.base_url(), limits()) +
               R"(, "free": )" + provider(free_.base_url(), "") + "}}";
    }
    FakeOpenAI free_;
};

TEST_F(RateLimitShared, AgentsOnOneProviderShareItsBucketOthersDoNotWait) {
    // 33 messages each: either agent alone stays under 60 a minute, the two
    // together do not.
    constexpr int N = 33;
    const auto as = numbered("a", N), bs = numbered("b", N), cs = numbered("c", 5);
    for (const char* n : {"a", "b"}) ASSERT_NO_FATAL_FAILURE(make_model(n));
    ASSERT_NO_FATAL_FAILURE(make_model("c", "free"));
    ASSERT_NO_FATAL_FAILURE(queue_stopped("a", as));
    ASSERT_NO_FATAL_FAILURE(queue_stopped("b", bs));
    ASSERT_EQ(ctl("a", "start"), 0) << err("a");
    ASSERT_EQ(ctl("b", "start"), 0) << err("b");

    std::set<std::string> waited;
    auto watch = [&] {
        for (const char* n : {"a", "b", "c"})
            if (field(n, "state") == "waiting") waited.insert(n);
    };
    ASSERT_TRUE(wait_until(
        [&] {
            watch();
            return waited.count("a") || waited.count("b");
        },
        30, 0.02))
        << status("a") << status("b");
    size_t sent_when_waiting = chat_requests(fake_).size();
    EXPECT_GE(sent_when_waiting, 60u) << "held back before 60 requests went to the provider";

    // While "local" holds a and b back, c on "free" is answered at once.
    for (auto& m : cs) ASSERT_EQ(send("c", m + "\n"), 0);
    ASSERT_TRUE(wait_until(
        [&] {
            watch();
            return field("c", "turns") == "5";
        },
        30, 0.02))
        << status("c");
    size_t local_when_c_done = chat_requests(fake_).size();
    EXPECT_LT(local_when_c_done, static_cast<size_t>(2 * N))
        << "c was answered only after a and b's backlog had drained";
    EXPECT_FALSE(waited.count("c")) << "c (provider free, no limits) was held back";
    EXPECT_EQ(cat_stream("agents/c/output"), echoes(cs));

    // a and b get through everything, nothing failed.
    ASSERT_TRUE(wait_until(
        [&] {
            watch();
            return field("a", "turns") == std::to_string(N) &&
                   field("b", "turns") == std::to_string(N);
        },
        60, 0.02))
        << status("a") << status("b");
    EXPECT_EQ(cat_stream("agents/a/output", 30), echoes(as));
    EXPECT_EQ(cat_stream("agents/b/output", 30), echoes(bs));
    for (const char* n : {"a", "b", "c"}) {
        EXPECT_EQ(field(n, "failed"), "0") << status(n);
        EXPECT_EQ(err(n), "") << n;
    }

    // Held-back turns are logged against "local", never against c.
    auto evs = log_until([&](const std::vector<json>& e) {
        return of_kind(e, "turn_finished", "a").size() == N &&
               of_kind(e, "turn_finished", "b").size() == N;
    });
    auto limited = of_kind(evs, "rate_limited");
    EXPECT_GE(limited.size(), 1u) << "no rate_limited event: the limit is not shared";
    for (auto& e : limited) {
        EXPECT_EQ(e.value("provider", ""), "local") << e.dump();
        EXPECT_NE(e.value("agent", ""), "c") << e.dump();
    }
    EXPECT_TRUE(of_kind(evs, "turn_failed").empty());

    // The two agents' requests together respect the one bucket.
    auto reqs = chat_requests(fake_);
    ASSERT_EQ(reqs.size(), static_cast<size_t>(2 * N));
    std::multiset<std::string> got, want(as.begin(), as.end());
    want.insert(bs.begin(), bs.end());
    for (auto& r : reqs) got.insert(r.user);
    EXPECT_EQ(got, want);
    expect_within_rate(reqs, 60, 1.0);
    EXPECT_GE(reqs.back().ts - reqs.front().ts, (2 * N - 60) - kSlack);
    // c's requests went to its own provider only.
    auto free_reqs = chat_requests(free_);
    ASSERT_EQ(free_reqs.size(), cs.size());
    for (size_t i = 0; i < cs.size(); ++i) EXPECT_EQ(free_reqs[i].user, cs[i]);
}

// ------------------------------------------------------------ stop

// 6 requests a minute: 6 at once, then one every 10 s, so a held-back turn
// waits long enough to be stopped while it waits.
class RateLimitSlow : public RateLimitBase {
  protected:
    std::string limits() const override { return R"("rpm": 6)"; }
    // Runs six messages to empty the bucket, then `rest`; returns once `agent`
    // is waiting, with the log so far (its rate_limited event included).
    std::vector<json> fill_then_wait(const std::string& agent,
                                     const std::vector<std::string>& rest) {
        auto msgs = numbered("fill", 6);
        msgs.insert(msgs.end(), rest.begin(), rest.end());
        queue_stopped(agent, msgs);
        EXPECT_EQ(ctl(agent, "start"), 0) << err(agent);
        EXPECT_TRUE(wait_field(agent, "state", "waiting", 20)) << status(agent);
        return log_until(
            [&](const std::vector<json>& evs) { return !of_kind(evs, "rate_limited").empty(); });
    }
};

TEST_F(RateLimitSlow, StopEndsAWaitingTurnAtOnceAndStartRunsTheQueue) {
    ASSERT_NO_FATAL_FAILURE(make_model("w"));
    auto evs = fill_then_wait("w", {"victim", "later"});
    ASSERT_FALSE(HasFailure());
    auto limited = of_kind(evs, "rate_limited", "w");
    ASSERT_EQ(limited.size(), 1u);
    const int64_t victim_turn = limited[0].value("turn", int64_t{-1});
    ASSERT_EQ(turn_text(evs, victim_turn), "victim");
    auto reqs = chat_requests(fake_);
    ASSERT_EQ(reqs.size(), 6u) << "the waiting turn's request went out";
    const double first_ts = reqs[0].ts;

    // stop returns once the turn is recorded: at once, not when the bucket
    // refills (about 10 s after the sixth request; a stop that did not end
    // the wait would return after the ctl's own 5 s limit, the turn still
    // running).
    auto r = sh("echo stop > " + shq(p("agents/w/ctl")), 25);
    ASSERT_FALSE(r.timed_out);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_LT(r.seconds, 4.0) << "stop waited for the rate limit";
    auto st = status("w");
    EXPECT_EQ(kv(st, "state"), std::string("stopped")) << st;
    EXPECT_EQ(kv(st, "queue"), std::string("1")) << "later stays queued: " << st;
    EXPECT_EQ(kv(st, "failed"), std::string("1")) << st;
    EXPECT_EQ(kv(st, "turns"), std::string("6")) << st;
    EXPECT_EQ(kv(st, "restarts"), std::string("0")) << "a stop is not a crash: " << st;
    EXPECT_TRUE(has(err("w"), "stopped by ctl")) << err("w");
    evs = log_until([&](const std::vector<json>& e) {
        return !turn_event(e, "turn_failed", victim_turn).is_null();
    });
    json failed = turn_event(evs, "turn_failed", victim_turn);
    EXPECT_EQ(failed.value("reason", ""), "stopped by ctl") << failed.dump();
    EXPECT_FALSE(failed.contains("retry"))
        << "a stopped turn does not run again: " << failed.dump();
    EXPECT_EQ(chat_requests(fake_).size(), 6u);

    // start: "later" runs (once the bucket has a request again); "victim"
    // never reaches the provider, not even when its wait would have ended.
    ASSERT_EQ(ctl("w", "start"), 0) << err("w");
    ASSERT_TRUE(wait_field("w", "turns", "7", 40)) << status("w");
    ASSERT_TRUE(wait_idle("w", 10)) << status("w");
    EXPECT_EQ(cat_stream("agents/w/output"), echoes(numbered("fill", 6)) + "echo: later\n");
    st = status("w");
    EXPECT_EQ(kv(st, "failed"), std::string("1")) << st;
    EXPECT_EQ(kv(st, "queue"), std::string("0")) << st;
    reqs = chat_requests(fake_);
    ASSERT_EQ(reqs.size(), 7u);
    for (auto& q : reqs) EXPECT_NE(q.user, "victim") << "the stopped turn reached the provider";
    EXPECT_EQ(reqs[6].user, "later");
    EXPECT_GE(reqs[6].ts - first_ts, 10.0 - kSlack) << "the 7th request came too early";
    evs = log_with_turns("w", 8);
    EXPECT_EQ(of_kind(evs, "turn_failed", "w").size(), 1u);
    EXPECT_EQ(of_kind(evs, "turn_finished", "w").size(), 7u);
}

// The documented behaviour: every turn held back by the rate limit is in the
// log as `rate_limited`, including one that runs right after a turn that was
// stopped while it waited.
TEST_F(RateLimitSlow, ATurnHeldBackAfterAStoppedWaitingTurnIsLoggedToo) {
    ASSERT_NO_FATAL_FAILURE(make_model("w"));
    auto evs = fill_then_wait("w", {"victim", "later"});
    ASSERT_FALSE(HasFailure());
    ASSERT_EQ(ctl("w", "stop"), 0) << err("w");
    ASSERT_EQ(field("w", "state"), "stopped");
    // At once: the bucket is still empty, so "later" is held back too.
    ASSERT_EQ(ctl("w", "start"), 0) << err("w");
    ASSERT_TRUE(wait_field("w", "state", "waiting", 10)) << status("w");
    ASSERT_EQ(chat_requests(fake_).size(), 6u);
    // Its turn is the agent's latest turn_started.
    evs = log_until([&](const std::vector<json>& e) {
        auto started = of_kind(e, "turn_started", "w");
        return started.size() == 8u;
    });
    auto started = of_kind(evs, "turn_started", "w");
    ASSERT_EQ(started.size(), 8u);
    const int64_t later_turn = started.back().value("turn", int64_t{-1});
    ASSERT_EQ(turn_text(evs, later_turn), "later");
    // Read the log while "later" is still held back (about 10 s in all).
    evs = log_until(
        [&](const std::vector<json>& e) {
            return !turn_event(e, "rate_limited", later_turn).is_null();
        },
        3, false);
    EXPECT_FALSE(turn_event(evs, "rate_limited", later_turn).is_null())
        << "turn " << later_turn << " (later) showed `state waiting` but the log has no "
        << "rate_limited event for it";
    // It still runs.
    ASSERT_TRUE(wait_field("w", "turns", "7", 40)) << status("w");
    EXPECT_EQ(chat_requests(fake_).back().user, "later");
}

// The documented behaviour: "Every event of a turn carries its turn and msg".
TEST_F(RateLimitSlow, RateLimitedEventsCarryTheirTurnAndMsg) {
    ASSERT_NO_FATAL_FAILURE(make_model("w"));
    auto evs = fill_then_wait("w", {"held"});
    ASSERT_FALSE(HasFailure());
    auto limited = of_kind(evs, "rate_limited", "w");
    ASSERT_EQ(limited.size(), 1u);
    const json& e = limited[0];
    ASSERT_TRUE(e.contains("turn") && e["turn"].is_number_integer()) << e.dump();
    json started = turn_event(evs, "turn_started", e["turn"].get<int64_t>());
    ASSERT_FALSE(started.is_null());
    EXPECT_TRUE(e.contains("msg")) << "rate_limited has no msg: " << e.dump();
    EXPECT_EQ(e.value("msg", int64_t{-1}), started.value("msg", int64_t{-2})) << e.dump();
}

}  // namespace
}  // namespace swarmfs::it
