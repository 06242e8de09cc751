// model_bench — the orchestration overhead of swarmfs's model agents, measured
// against the loopback OpenAI-compatible server tests/fake_openai (a
// deterministic echo model, zero latency). Not a test: it measures and prints.
// bench/model/run.sh starts the server and the mount and runs it twice:
//
//   model_bench run --url http://127.0.0.1:PORT/v1 --mnt MNT --out ours.json
//                   [--body-out body.json] [--samples 200] [--warmup 20]
//                   [--key KEY] [--timeout 30]
//   model_bench report --ours ours.json [--sdk sdk.json]
//
// "run" measures, per sample, in this order (interleaved, so that a noisy
// neighbour on the machine hits every kind alike):
//   (a) direct: one streamed chat completion over libcurl (one easy handle, so
//       a kept-alive connection, as libcurl's multi pool gives swarmfs), with
//       the very body swarmfs sent for a plain turn (taken from the server's
//       /_requests record), read to the end of the stream;
//   (b) plain:   a swarmfs turn through the mount on a fresh conversation
//       routed to "sales": open+write+close conv/N/in, then read conv/N/out
//       until EOF (the conversation is idle);
//   (c) handoff: the same, with "[handoff:support]": sales calls
//       transfer_to_support, support answers in the same turn;
//   (d) tool:    the same on "support" with "[tool:lookup_ticket {...}]":
//       support calls the exec tool, then answers with its result.
// Each timing starts before the open of `in` and records the time of the last
// byte of the reply ("last") and of the EOF that ends the turn ("end").
// A fresh conversation per sample (made and routed outside the timing) keeps
// every sample's context the same size. Replies are checked, so a broken turn
// fails the run instead of timing an error.
//
// "report" prints the side-by-side table from ours.json and the Agents SDK's
// sdk.json (bench/model/sdk_bench.mjs; same kinds, same shape).
#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "model_bench: %s\n", why.c_str());
  std::exit(1);
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// ---------------------------------------------------------------- HTTP

struct Curl {
  CURL* h = nullptr;
  curl_slist* headers = nullptr;
  std::string body;
  Clock::time_point last_byte;

  explicit Curl(const std::string& key) {
    h = curl_easy_init();
    if (!h) die("curl_easy_init failed");
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Accept: text/event-stream, application/json");
    if (!key.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + key).c_str());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Curl::write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
  }
  ~Curl() {
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
  }
  static size_t write_cb(char* p, size_t size, size_t n, void* self) {
    auto* c = static_cast<Curl*>(self);
    c->body.append(p, size * n);
    c->last_byte = Clock::now();
    return size * n;
  }
  // method GET, POST (with body) or DELETE; returns the HTTP status.
  long request(const std::string& method, const std::string& url, const std::string* post = nullptr) {
    body.clear();
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    if (post) {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, nullptr);
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, post->data());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(post->size()));
    } else {
      curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method == "GET" ? nullptr : method.c_str());
    }
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) die(method + " " + url + ": " + curl_easy_strerror(rc));
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    return status;
  }
};

// ---------------------------------------------------------------- the mount

volatile sig_atomic_t g_alarm = 0;
void on_alarm(int) { g_alarm = 1; }

std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) die("open " + path + ": " + std::strerror(errno));
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, n);
  ::close(fd);
  return s;
}

void write_file(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY);
  if (fd < 0) die("open " + path + ": " + std::strerror(errno));
  if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    die("write " + path + ": " + std::strerror(errno));
  if (::close(fd) != 0) die("close " + path + ": " + std::strerror(errno));
}

struct Sample {
  double last = 0, end = 0;
  double closed = NAN, first = NAN;  // swarmfs turns: close(in) returned; first reply byte
};

struct Kind {
  const char* name;
  const char* agent;    // the conversation is routed here
  const char* message;  // written to conv/N/in
  const char* expect;   // the reply starts with this
};

// The three kinds of turn, as the fake's echo model answers them.
const Kind kKinds[] = {
    {"plain", "sales", "hello from the bench\n", "echo: hello from the bench\n"},
    {"handoff", "sales", "[handoff:support] my printer is on fire\n",
     "tool transfer_to_support said: Transferred to support"},
    {"tool", "support", "[tool:lookup_ticket {\"id\":42}] what is the status of ticket 42?\n",
     "tool lookup_ticket said: {\"ticket\":{\"id\":42}"},
};

class Mount {
 public:
  Mount(std::string mnt, int timeout) : mnt_(std::move(mnt)), timeout_(timeout) {
    struct sigaction sa {};
    sa.sa_handler = on_alarm;  // no SA_RESTART: a stuck read ends with EINTR
    sigaction(SIGALRM, &sa, nullptr);
  }

  // One turn on a fresh conversation; dies with the reason if it goes wrong.
  Sample turn(const Kind& k, std::string* reply_out = nullptr) {
    std::string conv = mnt_ + "/conv/";
    conv += std::to_string(std::stoll(read_file(conv + "clone")));
    write_file(conv + "/ctl", std::string("agent ") + k.agent + "\n");
    int out = ::open((conv + "/out").c_str(), O_RDONLY);
    if (out < 0) die("open " + conv + "/out: " + std::strerror(errno));
    std::string reply;
    char buf[65536];
    g_alarm = 0;
    alarm(timeout_);

    auto t0 = Clock::now();
    int in = ::open((conv + "/in").c_str(), O_WRONLY);
    if (in < 0) die("open " + conv + "/in: " + std::strerror(errno));
    size_t len = std::strlen(k.message);
    if (::write(in, k.message, len) != static_cast<ssize_t>(len))
      die("write " + conv + "/in: " + std::strerror(errno));
    if (::close(in) != 0) die("close " + conv + "/in: " + std::strerror(errno));
    auto closed = Clock::now();
    Clock::time_point last = t0, first = t0;
    for (;;) {
      ssize_t n = ::read(out, buf, sizeof buf);
      if (n > 0) {
        last = Clock::now();
        if (reply.empty()) first = last;
        reply.append(buf, n);
        continue;
      }
      if (n == 0) break;
      if (errno == EINTR && !g_alarm) continue;
      die(std::string("read ") + conv + "/out: " +
          (g_alarm ? "the turn did not end within " + std::to_string(timeout_) + " s"
                   : std::strerror(errno)) +
          "; reply so far: " + reply + "\ncontext:\n" + read_file(conv + "/context"));
    }
    auto end = Clock::now();

    alarm(0);
    ::close(out);
    if (reply.rfind(k.expect, 0) != 0 || reply.back() != '\n')
      die(std::string(k.name) + " turn on " + conv + ": unexpected reply \"" + reply +
          "\" (expected \"" + k.expect + "...\")\ncontext:\n" + read_file(conv + "/context"));
    if (reply_out) *reply_out = reply;
    return {ms_between(t0, last), ms_between(t0, end), ms_between(t0, closed),
            ms_between(t0, first)};
  }

 private:
  std::string mnt_;
  int timeout_;
};

// ---------------------------------------------------------------- run

int run(int argc, char** argv) {
  std::string url, mnt, out_path, body_out, key = "sk-swarmfs-bench";
  int samples = 200, warmup = 20, timeout = 30;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--url") url = value();
    else if (a == "--mnt") mnt = value();
    else if (a == "--out") out_path = value();
    else if (a == "--body-out") body_out = value();
    else if (a == "--samples") samples = std::stoi(value());
    else if (a == "--warmup") warmup = std::stoi(value());
    else if (a == "--key") key = value();
    else if (a == "--timeout") timeout = std::stoi(value());
    else die("unknown argument " + a);
  }
  if (url.empty() || mnt.empty() || out_path.empty() || samples < 1 || warmup < 0)
    die("usage: model_bench run --url BASE_URL --mnt MNT --out FILE [--body-out FILE]\n"
        "       [--samples N] [--warmup N] [--key KEY] [--timeout S]");
  while (!url.empty() && url.back() == '/') url.pop_back();
  std::string origin = url;
  if (auto p = origin.find("://"); p != std::string::npos)
    if (auto s = origin.find('/', p + 3); s != std::string::npos) origin.resize(s);

  curl_global_init(CURL_GLOBAL_DEFAULT);
  Curl http(key);
  Mount swarm(mnt, timeout);

  // The baseline's body is the one a plain turn sends: run one, take it from
  // the server's record of requests.
  if (long st = http.request("DELETE", origin + "/_requests"); st != 200)
    die("DELETE /_requests: HTTP " + std::to_string(st));
  std::string reply;
  swarm.turn(kKinds[0], &reply);
  if (long st = http.request("GET", origin + "/_requests"); st != 200)
    die("GET /_requests: HTTP " + std::to_string(st));
  std::string last_line;
  {
    std::istringstream lines(http.body);
    for (std::string l; std::getline(lines, l);)
      if (!l.empty()) last_line = l;
  }
  json rec = json::parse(last_line, nullptr, false);
  if (rec.is_discarded() || !rec.contains("body") || !rec["body"].is_object())
    die("cannot read the plain turn's request from /_requests: " + last_line);
  if (rec.value("status", 0) != 200)
    die("the plain turn's request was answered " + std::to_string(rec.value("status", 0)));
  const std::string body = rec["body"].dump();
  if (!body_out.empty()) std::ofstream(body_out) << body << "\n";

  std::map<std::string, std::vector<Sample>> results;
  const std::string chat = url + "/chat/completions";
  for (int i = 0; i < warmup + samples; ++i) {
    auto t0 = Clock::now();
    long st = http.request("POST", chat, &body);
    auto end = Clock::now();
    if (st != 200 || http.body.find("data: [DONE]") == std::string::npos)
      die("direct request: HTTP " + std::to_string(st) + ": " + http.body.substr(0, 300));
    Sample direct{ms_between(t0, http.last_byte), ms_between(t0, end)};
    std::vector<Sample> turns;
    for (const Kind& k : kKinds) turns.push_back(swarm.turn(k));
    if (i < warmup) continue;
    results["direct"].push_back(direct);
    for (size_t j = 0; j < std::size(kKinds); ++j) results[kKinds[j].name].push_back(turns[j]);
    if ((i - warmup + 1) % 50 == 0)
      std::fprintf(stderr, "model_bench: %d/%d samples\n", i - warmup + 1, samples);
  }

  json out = {{"client", "swarmfs"}, {"samples", samples}, {"warmup", warmup}};
  for (auto& [kind, v] : results) {
    json last = json::array(), end = json::array(), closed = json::array(),
         first = json::array();
    for (auto& s : v) {
      last.push_back(s.last);
      end.push_back(s.end);
      if (!std::isnan(s.closed)) closed.push_back(s.closed);
      if (!std::isnan(s.first)) first.push_back(s.first);
    }
    out[kind] = {{"last", last}, {"end", end}};
    if (!closed.empty()) out[kind]["closed"] = closed;
    if (!first.empty()) out[kind]["first"] = first;
  }
  std::ofstream(out_path) << out.dump() << "\n";
  curl_global_cleanup();
  return 0;
}

// ---------------------------------------------------------------- report

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * v.size()));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

struct Stats {
  bool ok = false;
  double p50 = NAN, p99 = NAN;
  size_t n = 0;
};

Stats stats_of(const json& doc, const std::string& kind) {
  Stats s;
  if (!doc.is_object() || !doc.contains(kind)) return s;
  auto last = doc[kind].value("last", std::vector<double>{});
  if (last.empty()) return s;
  s.ok = true;
  s.n = last.size();
  s.p50 = percentile(last, 50);
  s.p99 = percentile(last, 99);
  return s;
}

json load(const std::string& path) {
  std::ifstream f(path);
  if (!f) return json();
  return json::parse(f, nullptr, false);
}

std::string fmt(double v, bool sign = false) {
  if (std::isnan(v)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, sign ? "%+.2f" : "%.2f", v);
  return b;
}

int report(int argc, char** argv) {
  std::string ours_path, sdk_path;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--ours" && i + 1 < argc) ours_path = argv[++i];
    else if (a == "--sdk" && i + 1 < argc) sdk_path = argv[++i];
    else die("usage: model_bench report --ours FILE [--sdk FILE]");
  }
  json ours = load(ours_path);
  if (!ours.is_object()) die("cannot read " + ours_path);
  json sdk = sdk_path.empty() ? json() : load(sdk_path);
  std::string sdk_skipped;
  if (!sdk.is_object()) sdk_skipped = "skipped: no results from the Agents SDK run";
  else if (sdk.contains("skipped")) sdk_skipped = "skipped: " + sdk.value("skipped", std::string());

  struct Row {
    const char* label;
    const char* kind;
    int calls;  // model requests the turn makes
  };
  const Row rows[] = {{"(a) direct request", "direct", 1},
                      {"(b) plain turn", "plain", 1},
                      {"(c) handoff turn", "handoff", 2},
                      {"(d) tool turn", "tool", 2}};
  Stats base = stats_of(ours, "direct");

  std::string sdk_title = "OpenAI Agents SDK (JS)";
  if (sdk_skipped.empty()) {
    sdk_title = "Agents SDK " + sdk.value("version", std::string("?")) + ", node " +
                sdk.value("node", std::string("?"));
  }
  std::printf("Per-turn latency in ms, %d samples per kind after %d warm-up rounds (%s).\n",
              ours.value("samples", 0), ours.value("warmup", 0),
              "fake_openai echo model, zero model latency");
  std::printf("+p50/+p99: over (a), the direct libcurl request. orch: p50 - calls x p50(a), the\n"
              "cost of the turn beyond its model requests.\n\n");
  std::printf("%-20s %5s | %-41s | %s\n", "", "model", "swarmfs (through the FUSE mount)",
              sdk_title.c_str());
  std::printf("%-20s %5s | %7s %7s %7s %7s %7s | %7s %7s %7s %7s %7s\n", "kind", "calls", "p50",
              "p99", "+p50", "+p99", "orch", "p50", "p99", "+p50", "+p99", "orch");
  for (const Row& r : rows) {
    Stats s = stats_of(ours, r.kind);
    bool is_base = std::string(r.kind) == "direct";
    auto cells = [&](const Stats& x) {
      if (!x.ok) return std::string("    (no samples)");
      char b[128];
      if (is_base && &x == &s) {
        std::snprintf(b, sizeof b, "%7s %7s %7s %7s %7s", fmt(x.p50).c_str(), fmt(x.p99).c_str(),
                      "", "", "");
      } else {
        std::snprintf(b, sizeof b, "%7s %7s %7s %7s %7s", fmt(x.p50).c_str(), fmt(x.p99).c_str(),
                      fmt(x.p50 - base.p50, true).c_str(), fmt(x.p99 - base.p99, true).c_str(),
                      fmt(x.p50 - r.calls * base.p50, true).c_str());
      }
      return std::string(b);
    };
    std::string right;
    if (!sdk_skipped.empty()) right = r.kind == std::string("direct") ? sdk_skipped : "";
    else right = cells(stats_of(sdk, r.kind));
    std::printf("%-20s %5d | %s | %s\n", r.label, r.calls, cells(s).c_str(), right.c_str());
  }
  if (sdk_skipped.empty())
    std::printf("\n(a) on the SDK side is node's own fetch() with the same body, streamed to its end\n"
                "(so +p50/orch there are still over libcurl's (a)).\n");
  std::printf("\nWhere the time goes, p50 in ms from the start of the write (SDK: of run()):\n");
  std::printf("%-20s | %9s %10s %9s %7s | %10s %9s\n", "", "in closed", "first byte", "last byte",
              "EOF", "last delta", "completed");
  for (const Row& r : rows) {
    if (r.kind == std::string("direct")) continue;
    auto p50_of = [](const json& doc, const char* kind, const char* key) {
      if (!doc.is_object() || !doc.contains(kind)) return static_cast<double>(NAN);
      return percentile(doc[kind].value(key, std::vector<double>{}), 50);
    };
    json none;
    const json& d = sdk_skipped.empty() ? sdk : none;
    std::printf("%-20s | %9s %10s %9s %7s | %10s %9s\n", r.label,
                fmt(p50_of(ours, r.kind, "closed")).c_str(), fmt(p50_of(ours, r.kind, "first")).c_str(),
                fmt(p50_of(ours, r.kind, "last")).c_str(), fmt(p50_of(ours, r.kind, "end")).c_str(),
                fmt(p50_of(d, r.kind, "last")).c_str(), fmt(p50_of(d, r.kind, "end")).c_str());
  }
  std::printf("in closed: close(in) returned, the message is committed (fsync) to the log.\n");
  if (Stats t = sdk_skipped.empty() ? stats_of(sdk, "tool_in_process") : Stats{}; t.ok)
    std::printf("For reference, the SDK's tool turn with lookup_ticket as an in-process function\n"
                "(no process started): p50 %s, p99 %s ms.\n",
                fmt(t.p50).c_str(), fmt(t.p99).c_str());
  if (sdk_skipped.empty() && sdk.value("lenient", false))
    std::printf("note: fake_openai ran with --lenient for the SDK: %s\n",
                sdk.value("lenient_reason", std::string("its requests failed the strict checks"))
                    .c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "run") return run(argc, argv);
  if (mode == "report") return report(argc, argv);
  std::fprintf(stderr, "usage: model_bench run ... | model_bench report ... (see the source)\n");
  return 2;
}
