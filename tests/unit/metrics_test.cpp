#include "agents/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

using namespace swarmfs;

namespace {

// Checks `text` line by line against the text exposition format 0.0.4 and
// returns the first problem, or "" if there is none.
std::string exposition_problem(const std::string& text) {
    static const std::string name = "[a-zA-Z_:][a-zA-Z0-9_:]*";
    static const std::string label = "[a-zA-Z_][a-zA-Z0-9_]*=\"(?:[^\"\\\\\\n]|\\\\[\\\\\"n])*\"";
    static const std::string number = "[-+]?(?:[0-9]*\\.?[0-9]+(?:[eE][-+]?[0-9]+)?|Inf|NaN)";
    static const std::regex help_re("# HELP (" + name + ") (?:[^\\\\\\n]|\\\\[\\\\n])*");
    static const std::regex type_re("# TYPE (" + name + ") (counter|gauge|histogram|untyped)");
    static const std::regex sample_re("(" + name + ")(?:\\{(?:" + label + "(?:," + label +
                                      ")*)?\\})? (" + number + ")");

    if (!text.empty() && text.back() != '\n') return "no newline at the end";
    std::istringstream in(text);
    std::string line, family, type, last_family;
    std::set<std::string> typed;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        std::smatch m;
        std::string where = "line " + std::to_string(n) + ": " + line;
        if (std::regex_match(line, m, help_re)) continue;
        if (std::regex_match(line, m, type_re)) {
            family = m[1];
            type = m[2];
            if (!typed.insert(family).second) return "TYPE twice, " + where;
            if (family < last_family) return "families out of order, " + where;
            last_family = family;
            continue;
        }
        if (!std::regex_match(line, m, sample_re)) return "malformed, " + where;
        std::string sample = m[1];
        bool belongs = sample == family;
        if (type == "histogram")
            belongs = sample == family + "_bucket" || sample == family + "_sum" ||
                      sample == family + "_count";
        if (!belongs) return "sample outside its family, " + where;
    }
    return "";
}

template <class T>
T must(Result<T> r) {
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? r.value() : T{};
}

}  // namespace

TEST(Metrics, RendersExactlyWhatPrometheusExpects) {
    MetricsRegistry reg;
    auto turns = must(reg.counter("swarmfs_turns_total", "Turns finished.", {"agent", "result"}));
    auto depth = must(reg.gauge("swarmfs_queue_depth", "Messages waiting.", {"agent"}));
    auto lat = must(reg.histogram("swarmfs_turn_seconds", "Turn latency.", {"agent"}, {0.5, 1}));
    must(turns->with({"a", "ok"}))->inc();
    must(turns->with({"a", "ok"}))->inc(2);
    must(depth->with({"b"}))->set(4);
    auto h = must(lat->with({"a"}));
    h->observe(0.25);
    h->observe(0.5);  // le is inclusive
    h->observe(3);
    EXPECT_EQ(reg.render(),
              "# HELP swarmfs_queue_depth Messages waiting.\n"
              "# TYPE swarmfs_queue_depth gauge\n"
              "swarmfs_queue_depth{agent=\"b\"} 4\n"
              "# HELP swarmfs_turn_seconds Turn latency.\n"
              "# TYPE swarmfs_turn_seconds histogram\n"
              "swarmfs_turn_seconds_bucket{agent=\"a\",le=\"0.5\"} 2\n"
              "swarmfs_turn_seconds_bucket{agent=\"a\",le=\"1\"} 2\n"
              "swarmfs_turn_seconds_bucket{agent=\"a\",le=\"+Inf\"} 3\n"
              "swarmfs_turn_seconds_sum{agent=\"a\"} 3.75\n"
              "swarmfs_turn_seconds_count{agent=\"a\"} 3\n"
              "# HELP swarmfs_turns_total Turns finished.\n"
              "# TYPE swarmfs_turns_total counter\n"
              "swarmfs_turns_total{agent=\"a\",result=\"ok\"} 3\n");
}

TEST(Metrics, TextParsesLineByLineEvenWithAwkwardLabelsAndHelp) {
    MetricsRegistry reg;
    auto c = must(reg.counter("c_total", "help with \\ and\nnewline and \"quotes\"", {"name"}));
    must(c->with({"back\\slash"}))->inc();
    must(c->with({"quote\"d"}))->inc();
    must(c->with({"new\nline"}))->inc();
    must(c->with({""}))->inc();
    must(c->with({"ünïcödé {}=,"}))->inc();
    auto g = must(reg.gauge("ns:gauge", ""));
    must(g->with({}))->set(-1.5e-300);
    auto inf = must(reg.gauge("inf_gauge", "infinite"));
    must(inf->with({}))->set(INFINITY);
    auto nan = must(reg.gauge("nan_gauge", "not a number"));
    must(nan->with({}))->set(NAN);
    auto h = must(reg.histogram("h_seconds", "a histogram", {}));
    must(h->with({}))->observe(1e9);
    auto empty = must(reg.counter("labelled_but_unused_total", "no series yet", {"x"}));
    (void)empty;

    std::string text = reg.render();
    EXPECT_EQ(exposition_problem(text), "") << text;
    EXPECT_NE(text.find("c_total{name=\"back\\\\slash\"} 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("c_total{name=\"quote\\\"d\"} 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("c_total{name=\"new\\nline\"} 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("# HELP c_total help with \\\\ and\\nnewline and \"quotes\"\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("inf_gauge +Inf\n"), std::string::npos) << text;
    EXPECT_NE(text.find("nan_gauge NaN\n"), std::string::npos) << text;
    EXPECT_EQ(text.find("# HELP ns:gauge"), std::string::npos) << "empty help is left out";
}

TEST(Metrics, UnlabelledFamiliesShowZeroBeforeAnythingHappens) {
    MetricsRegistry reg;
    must(reg.counter("restarts_total", "Restarts."));
    must(reg.histogram("wait_seconds", "Waits.", {}, {1}));
    EXPECT_EQ(reg.render(),
              "# HELP restarts_total Restarts.\n"
              "# TYPE restarts_total counter\n"
              "restarts_total 0\n"
              "# HELP wait_seconds Waits.\n"
              "# TYPE wait_seconds histogram\n"
              "wait_seconds_bucket{le=\"1\"} 0\n"
              "wait_seconds_bucket{le=\"+Inf\"} 0\n"
              "wait_seconds_sum 0\n"
              "wait_seconds_count 0\n");
}

TEST(Metrics, HistogramBucketsAreCumulative) {
    MetricsRegistry reg;
    auto fam = must(reg.histogram("lat_seconds", "", {}, {0.1, 1, 10, INFINITY}));
    EXPECT_EQ(fam->buckets(), (std::vector<double>{0.1, 1, 10}));  // +Inf is implied
    auto h = must(fam->with({}));
    for (double v : {0.05, 0.1, 0.2, 0.9, 5.0, 50.0, double(NAN)}) h->observe(v);
    auto s = h->snapshot();
    EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{2, 4, 5, 6}));
    EXPECT_EQ(s.count, 6u);  // NaN was ignored
    EXPECT_DOUBLE_EQ(s.sum, 56.25);
}

TEST(Metrics, ACounterIncrementedFromEightThreadsSumsCorrectly) {
    MetricsRegistry reg;
    auto fam = must(reg.counter("hits_total", "Hits.", {"agent"}));
    auto lat = must(reg.histogram("lat_seconds", "Latency.", {"agent"}, {0.5}));
    constexpr int kThreads = 8, kEach = 20000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            // Each thread looks the series up once and then only adds.
            auto c = must(fam->with({"shared"}));
            auto own = must(fam->with({"t" + std::to_string(t)}));
            auto h = must(lat->with({"shared"}));
            for (int i = 0; i < kEach; ++i) {
                c->inc();
                own->inc(0.5);
                h->observe(i % 2 ? 1.0 : 0.25);
            }
        });
    // Scrapes while the counting goes on see consistent, valid text.
    for (int i = 0; i < 20; ++i) {
        auto text = reg.render();
        EXPECT_EQ(exposition_problem(text), "") << text;
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(must(fam->with({"shared"}))->value(), kThreads * kEach);
    for (int t = 0; t < kThreads; ++t)
        EXPECT_EQ(must(fam->with({"t" + std::to_string(t)}))->value(), kEach / 2);
    auto s = must(lat->with({"shared"}))->snapshot();
    EXPECT_EQ(s.count, uint64_t{kThreads * kEach});
    EXPECT_EQ(s.cumulative[0], uint64_t{kThreads * kEach / 2});
    EXPECT_NE(reg.render().find("hits_total{agent=\"shared\"} 160000\n"), std::string::npos);
}

TEST(Metrics, NamesAreValidated) {
    EXPECT_TRUE(valid_metric_name("swarmfs:turns_total"));
    EXPECT_TRUE(valid_metric_name("_x9"));
    EXPECT_FALSE(valid_metric_name(""));
    EXPECT_FALSE(valid_metric_name("9lives"));
    EXPECT_FALSE(valid_metric_name("has-dash"));
    EXPECT_FALSE(valid_metric_name("has space"));
    EXPECT_TRUE(valid_label_name("agent_2"));
    EXPECT_FALSE(valid_label_name("ns:agent"));  // colons are for metric names only
    EXPECT_FALSE(valid_label_name("__reserved"));
    EXPECT_FALSE(valid_label_name("2x"));

    MetricsRegistry reg;
    EXPECT_EQ(reg.counter("bad-name", "").error().code, EINVAL);
    EXPECT_EQ(reg.gauge("g", "", {"bad label"}).error().code, EINVAL);
    EXPECT_EQ(reg.gauge("g", "", {"a", "a"}).error().code, EINVAL);
    EXPECT_EQ(reg.histogram("h", "", {"le"}).error().code, EINVAL);
    EXPECT_EQ(reg.histogram("h", "", {}, {1, 1}).error().code, EINVAL);
    EXPECT_EQ(reg.histogram("h", "", {}, {2, 1}).error().code, EINVAL);
    EXPECT_EQ(reg.histogram("h", "", {}, {NAN}).error().code, EINVAL);
    EXPECT_EQ(reg.render(), "");  // nothing half-registered
}

TEST(Metrics, RegisteringAgainReturnsTheSameFamilyOrRefusesAClash) {
    MetricsRegistry reg;
    auto a = must(reg.counter("turns_total", "Turns.", {"agent"}));
    EXPECT_EQ(must(reg.counter("turns_total", "Turns.", {"agent"})), a);
    EXPECT_EQ(reg.gauge("turns_total", "", {"agent"}).error().code, EEXIST);
    EXPECT_EQ(reg.counter("turns_total", "", {"other"}).error().code, EEXIST);

    auto h = must(reg.histogram("lat", "", {}, {1, 2}));
    EXPECT_EQ(must(reg.histogram("lat", "", {}, {1, 2})), h);
    EXPECT_EQ(reg.histogram("lat", "", {}, {1, 3}).error().code, EEXIST);
    // A histogram's samples would collide with these.
    EXPECT_EQ(reg.counter("lat_count", "").error().code, EEXIST);
    EXPECT_EQ(reg.gauge("lat_bucket", "").error().code, EEXIST);
    must(reg.gauge("x_sum", ""));
    EXPECT_EQ(reg.histogram("x", "").error().code, EEXIST);
    EXPECT_EQ(exposition_problem(reg.render()), "");
}

TEST(Metrics, WrongNumberOfLabelValuesIsRefused) {
    MetricsRegistry reg;
    auto fam = must(reg.counter("c_total", "", {"agent", "result"}));
    EXPECT_EQ(fam->with({"only-one"}).error().code, EINVAL);
    EXPECT_EQ(fam->with({"a", "b", "c"}).error().code, EINVAL);
    EXPECT_EQ(fam->with({}).error().code, EINVAL);
    EXPECT_EQ(reg.render(), "# TYPE c_total counter\n");
}

TEST(Metrics, RemovedSeriesDisappearButOldHandlesStayUsable) {
    MetricsRegistry reg;
    auto fam = must(reg.gauge("depth", "", {"agent"}));
    auto gone = must(fam->with({"archived"}));
    must(fam->with({"alive"}))->set(1);
    EXPECT_TRUE(fam->remove({"archived"}));
    EXPECT_FALSE(fam->remove({"archived"}));
    gone->inc();  // harmless
    EXPECT_EQ(reg.render(), "# TYPE depth gauge\ndepth{agent=\"alive\"} 1\n");
    // Asking again makes a fresh series.
    EXPECT_EQ(must(fam->with({"archived"}))->value(), 0);
}

TEST(Metrics, CountersNeverGoBackwardsAndGaugesGoBothWays) {
    Counter c;
    c.inc(2);
    c.inc(-5);
    c.inc(NAN);
    EXPECT_EQ(c.value(), 2);
    Gauge g;
    g.inc(3);
    g.dec();
    EXPECT_EQ(g.value(), 2);
    g.set(-7);
    EXPECT_EQ(g.value(), -7);
}

TEST(Metrics, CollectorsRunBeforeEachRenderAndMayRegisterAndSet) {
    MetricsRegistry reg;
    int depth = 0;
    reg.add_collector([&] {
        // Re-registering from a collector must not deadlock.
        auto g = must(reg.gauge("queued", "Queued messages."));
        must(g->with({}))->set(depth);
    });
    depth = 7;
    EXPECT_NE(reg.render().find("queued 7\n"), std::string::npos);
    depth = 2;
    EXPECT_NE(reg.render().find("queued 2\n"), std::string::npos);
}
