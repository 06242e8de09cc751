// sched_bench — the scheduler under load: fan-out of events, sustained inbox
// traffic at two pool sizes, and a swarm of 10,000 agents. Not a test: it
// measures and prints. bench/sched/run.sh builds it, starts fake_openai and
// runs it; see the header of run.sh for what each figure means.
//
//   sched_bench --swarmfs BIN --work DIR --model-url http://127.0.0.1:PORT
//               [--registry FILE] [--shm DIR] [--latency-ms 200]
//               [--fanout-reps 5] [--single-samples 5]
//               [--tp-seconds 5] [--tp-agents 100] [--tp-writers 8]
//               [--many 10000] [--idle-seconds 5] [--only fanout,tp,many]
//
// It mounts every swarmfs it measures itself (swarmfs -f, a child process)
// so that mount time and the server's /proc figures are its own; each child's
// "PID MOUNTPOINT" goes to --registry first, so the calling script can clean
// up whatever happens. Everything else is a plain client: open, read, write,
// close on the mount, as cat and echo would.
#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

// ---------------------------------------------------------------- options

struct Options {
  std::string swarmfs, work, model_url, registry, shm;
  int latency_ms = 200;
  int fanout_reps = 5;
  int single_samples = 5;
  double tp_seconds = 5;
  int tp_agents = 100;
  int tp_writers = 8;
  int many = 10000;
  double idle_seconds = 5;
  std::set<std::string> only;
  bool want(const std::string& part) const { return only.empty() || only.count(part); }
};

[[noreturn]] void usage(const char* prog) {
  std::fprintf(stderr,
               "usage: %s --swarmfs BIN --work DIR --model-url URL [--registry FILE] [--shm DIR]\n"
               "          [--latency-ms N] [--fanout-reps N] [--single-samples N]\n"
               "          [--tp-seconds S] [--tp-agents N] [--tp-writers N]\n"
               "          [--many N] [--idle-seconds S] [--only fanout,tp,many]\n",
               prog);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(argv[0]);
      return argv[++i];
    };
    if (a == "--swarmfs") o.swarmfs = value();
    else if (a == "--work") o.work = value();
    else if (a == "--model-url") o.model_url = value();
    else if (a == "--registry") o.registry = value();
    else if (a == "--shm") o.shm = value();
    else if (a == "--latency-ms") o.latency_ms = std::stoi(value());
    else if (a == "--fanout-reps") o.fanout_reps = std::stoi(value());
    else if (a == "--single-samples") o.single_samples = std::stoi(value());
    else if (a == "--tp-seconds") o.tp_seconds = std::stod(value());
    else if (a == "--tp-agents") o.tp_agents = std::stoi(value());
    else if (a == "--tp-writers") o.tp_writers = std::stoi(value());
    else if (a == "--many") o.many = std::stoi(value());
    else if (a == "--idle-seconds") o.idle_seconds = std::stod(value());
    else if (a == "--only") {
      std::stringstream ss(value());
      std::string part;
      while (std::getline(ss, part, ',')) o.only.insert(part);
    } else usage(argv[0]);
  }
  if (o.swarmfs.empty() || o.work.empty() || (o.model_url.empty() && o.want("fanout")))
    usage(argv[0]);
  if (o.shm.empty()) o.shm = o.work + "/shm-baseline";
  // The children run in their own folders: every path absolute.
  for (std::string* p : {&o.swarmfs, &o.work, &o.registry, &o.shm}) {
    if (p->empty() || (*p)[0] == '/') continue;
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd)) *p = std::string(cwd) + "/" + *p;
  }
  return o;
}

// ---------------------------------------------------------------- helpers

using Clock = std::chrono::steady_clock;
const Clock::time_point kEpoch = Clock::now();
double now() { return std::chrono::duration<double>(Clock::now() - kEpoch).count(); }
void sleep_for(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

int failures = 0;  // figures that could not be measured; the exit status

std::string ms(double seconds) {
  char buf[32];
  double m = seconds * 1000;
  if (m >= 100) std::snprintf(buf, sizeof buf, "%.0f ms", m);
  else if (m >= 10) std::snprintf(buf, sizeof buf, "%.1f ms", m);
  else std::snprintf(buf, sizeof buf, "%.2f ms", m);
  return buf;
}
std::string secs(double s) {
  char buf[32];
  if (s < 1) return ms(s);
  std::snprintf(buf, sizeof buf, "%.2f s", s);
  return buf;
}
std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
std::string mib(long kb) { return fmt("%.1f MiB", kb / 1024.0); }

// A note under a figure: wrapped at 78 columns, indented.
void note(const std::string& text, int indent = 6) {
  std::string line, word;
  auto flush_word = [&] {
    if (word.empty()) return;
    if (!line.empty() && indent + line.size() + 1 + word.size() > 78) {
      std::printf("%*s%s\n", indent, "", line.c_str());
      line.clear();
    }
    if (!line.empty()) line += ' ';
    line += word;
    word.clear();
  };
  for (char c : text) {
    if (c == ' ') flush_word();
    else word += c;
  }
  flush_word();
  if (!line.empty()) std::printf("%*s%s\n", indent, "", line.c_str());
}
// A figure: label, value, then its note.
void figure(const std::string& label, const std::string& value, const std::string& what) {
  std::printf("  %-44s %s\n", label.c_str(), value.c_str());
  note(what);
}
void failed(const std::string& what) {
  ++failures;
  std::printf("  FAILED: %s\n", what.c_str());
  std::fflush(stdout);
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  double rank = p / 100.0 * static_cast<double>(v.size() - 1);
  size_t lo = static_cast<size_t>(rank);
  size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (rank - static_cast<double>(lo));
}
double median(std::vector<double> v) { return percentile(std::move(v), 50); }

bool write_file(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
  return static_cast<bool>(f);
}
std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// One message: open, write, close; 0 once close acknowledged it (durable).
int send_message(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  size_t done = 0;
  while (done < text.size()) {
    ssize_t w = ::write(fd, text.data() + done, text.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return e;
    }
    done += static_cast<size_t>(w);
  }
  if (::close(fd) != 0) return errno;
  return 0;
}

// Reads fd from off until EOF (the agent went idle); returns what it read,
// and the time EOF came in *eof_at. -1 size on error.
struct Drained {
  std::string data;
  double eof_at = 0;
  int err = 0;
};
Drained drain_from(int fd, off_t off) {
  Drained d;
  char buf[65536];
  for (;;) {
    ssize_t r = ::pread(fd, buf, sizeof buf, off);
    if (r < 0) {
      if (errno == EINTR) continue;
      d.err = errno;
      break;
    }
    if (r == 0) break;
    d.data.append(buf, static_cast<size_t>(r));
    off += r;
  }
  d.eof_at = now();
  return d;
}

// ---------------------------------------------------------------- /proc

long proc_status_kb(pid_t pid, const char* key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  size_t n = std::strlen(key);
  while (std::getline(f, line))
    if (line.compare(0, n, key) == 0 && line.size() > n && line[n] == ':')
      return std::atol(line.c_str() + n + 1);
  return -1;
}
// utime + stime of the whole process, in seconds.
double proc_cpu_seconds(pid_t pid) {
  std::string s = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close_paren = s.rfind(')');
  if (close_paren == std::string::npos) return -1;
  std::stringstream ss(s.substr(close_paren + 2));
  std::string field;
  std::vector<std::string> f;
  while (ss >> field) f.push_back(field);
  // f[0] is field 3 (state); utime and stime are fields 14 and 15.
  if (f.size() < 13) return -1;
  double ticks = std::atof(f[11].c_str()) + std::atof(f[12].c_str());
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}
// Context switches summed over all threads: how often the server woke up.
long proc_wakeups(pid_t pid) {
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return -1;
  long total = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(dir + "/" + e->d_name + "/status");
    std::string line;
    while (std::getline(f, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0 ||
          line.rfind("nonvoluntary_ctxt_switches:", 0) == 0)
        total += std::atol(line.c_str() + line.find(':') + 1);
    }
  }
  ::closedir(d);
  return total;
}

// ---------------------------------------------------------------- commands

// Runs argv with stdout to /dev/null; returns the wall time, or -1.
double timed_run(const std::vector<std::string>& argv) {
  std::vector<char*> a;
  for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
  a.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  double t0 = now();
  int rc = posix_spawnp(&pid, a[0], &fa, nullptr, a.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  double t = now() - t0;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? t : -1;
}

// opendir + readdir to the end + closedir; entries in *count.
double timed_readdir(const std::string& path, long* count) {
  double t0 = now();
  DIR* d = ::opendir(path.c_str());
  if (!d) return -1;
  long n = 0;
  while (::readdir(d)) ++n;
  ::closedir(d);
  double t = now() - t0;
  if (count) *count = n;
  return t;
}

// ---------------------------------------------------------------- HTTP (fake_openai's script)

size_t curl_sink(char* p, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}
// Returns the body, or nullopt. *seconds: the request's wall time.
std::optional<std::string> http(const std::string& method, const std::string& url,
                                const std::string& body = "", double* seconds = nullptr) {
  CURL* c = curl_easy_init();
  if (!c) return std::nullopt;
  std::string out;
  curl_slist* h = curl_slist_append(nullptr, "Content-Type: application/json");
  h = curl_slist_append(h, "Authorization: Bearer sk-sched-bench");
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_sink);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (!body.empty() || method == "POST") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  double t0 = now();
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (seconds) *seconds = now() - t0;
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK || status != 200) return std::nullopt;
  return out;
}

// fake_openai answers the next `n` chat requests with the model latency
// before the first byte and then the whole stream at once (chunk_delay_ms 0):
// a turn is then one model call of about --latency-ms, whatever the reply's
// length. Without a step every stream event would wait --latency-ms.
bool script_fast_streams(const Options& o, int n) {
  if (!http("DELETE", o.model_url + "/_script")) return false;
  std::string steps = "[";
  for (int i = 0; i < n; ++i) steps += std::string(i ? "," : "") + "{\"chunk_delay_ms\":0}";
  steps += "]";
  return http("POST", o.model_url + "/_script", steps).has_value();
}
int script_left(const Options& o) {
  auto b = http("GET", o.model_url + "/_script");
  if (!b) return -1;
  // {"queued":N,...} or an array; count the steps' key.
  int n = 0;
  for (size_t p = 0; (p = b->find("chunk_delay_ms", p)) != std::string::npos; ++p) ++n;
  return n;
}

// ---------------------------------------------------------------- mounting swarmfs

struct Mount {
  pid_t pid = -1;
  std::string dir, mnt, state, log;
  double mount_seconds = 0;
};

bool is_mounted(const std::string& mnt, const std::string& parent) {
  struct stat a, b;
  if (::stat(mnt.c_str(), &a) != 0 || ::stat(parent.c_str(), &b) != 0) return false;
  return a.st_dev != b.st_dev;
}

// Mounts a fresh swarmfs (fresh state) with this swarm file under work/NAME,
// in the foreground as a child; mount_seconds is from fork to the mount point
// answering (swarmfs opens the swarm, declares its agents, then mounts).
std::optional<Mount> mount_swarm(const Options& o, const std::string& name,
                                 const std::string& swarm_json) {
  Mount m;
  m.dir = o.work + "/" + name;
  m.mnt = m.dir + "/mnt";
  m.state = m.dir + "/state";
  m.log = m.dir + "/swarmfs.log";
  ::mkdir(m.dir.c_str(), 0755);
  ::mkdir(m.mnt.c_str(), 0755);
  std::string cfg = m.dir + "/swarm.json";
  if (!write_file(cfg, swarm_json)) return std::nullopt;
  double t0 = now();
  pid_t pid = ::fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) {
    int fd = ::open(m.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, 0);
    if (::chdir(m.dir.c_str()) != 0) _exit(127);
    ::setenv("SWARMFS_SCHED_BENCH_KEY", "sk-sched-bench", 1);
    ::execl(o.swarmfs.c_str(), o.swarmfs.c_str(), m.mnt.c_str(), "--state", m.state.c_str(),
            "--config", cfg.c_str(), "-f", static_cast<char*>(nullptr));
    std::fprintf(stderr, "exec %s: %s\n", o.swarmfs.c_str(), std::strerror(errno));
    _exit(127);
  }
  m.pid = pid;
  if (!o.registry.empty()) {
    std::ofstream r(o.registry, std::ios::app);
    r << pid << " " << m.mnt << "\n";
  }
  for (;;) {
    if (is_mounted(m.mnt, m.dir)) break;
    int status;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      std::string log = read_file(m.log);
      std::fprintf(stderr, "sched_bench: swarmfs for %s exited before mounting:\n%s\n",
                   name.c_str(), log.c_str());
      return std::nullopt;
    }
    if (now() - t0 > 300) {
      std::fprintf(stderr, "sched_bench: swarmfs for %s did not mount in 300 s\n", name.c_str());
      ::kill(pid, SIGKILL);
      return std::nullopt;
    }
    sleep_for(0.002);
  }
  m.mount_seconds = now() - t0;
  return m;
}

void unmount_swarm(Mount& m) {
  if (m.pid < 0) return;
  if (is_mounted(m.mnt, m.dir)) timed_run({"fusermount3", "-u", m.mnt});
  for (int i = 0; i < 200; ++i) {
    int status;
    if (::waitpid(m.pid, &status, WNOHANG) == m.pid) {
      m.pid = -1;
      return;
    }
    if (i == 100) ::kill(m.pid, SIGTERM);
    sleep_for(0.05);
  }
  ::kill(m.pid, SIGKILL);
  ::waitpid(m.pid, nullptr, 0);
  if (is_mounted(m.mnt, m.dir)) timed_run({"fusermount3", "-u", "-z", m.mnt});
  m.pid = -1;
}

std::string agent_name(const char* prefix, int i, int width) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%0*d", prefix, width, i);
  return buf;
}

// A thread blocked in a FUSE read ends with EINTR when signalled (the
// handler is installed without SA_RESTART); used to stop readers on failure.
void on_sigusr1(int) {}

// ================================================================ (1) fan-out

void bench_fanout(const Options& o) {
  std::printf("(1) fan-out: one event to N subscribers, each a model turn of about %d ms\n",
              o.latency_ms);
  note("Model agents against tests/fake_openai --latency-ms " + std::to_string(o.latency_ms) +
           ", with a script step per request (chunk_delay_ms 0): " +
           std::to_string(o.latency_ms) +
           " ms before the first byte of every chat response, then the whole stream at "
           "once, so one model call is one latency whatever the reply's length (without "
           "the step the fake would also wait " +
           std::to_string(o.latency_ms) +
           " ms between each of the stream events: role, one per word, finish, usage, [DONE]). 64 "
           "agents; agent 0 subscribes "
           "to fan1, agents 0-7 to fan8, all 64 to fan64; default scheduler (64 workers).",
       2);
  const int kMax = 64;
  std::string agents;
  for (int i = 0; i < kMax; ++i) {
    std::string subs = "\"fan64\"";
    if (i < 8) subs = "\"fan8\"," + subs;
    if (i < 1) subs = "\"fan1\"," + subs;
    agents += std::string(i ? ",\n" : "") + "    \"" + agent_name("m", i, 2) +
              "\": {\"provider\": \"local\", \"model\": \"fake-model\", "
              "\"instructions\": \"Answer.\", \"subscribe\": [" +
              subs + "]}";
  }
  std::string swarm = "{\n  \"providers\": {\"local\": {\"base_url\": \"" + o.model_url +
                      "/v1\", \"api_key_env\": \"SWARMFS_SCHED_BENCH_KEY\", \"max_retries\": 0}},\n"
                      "  \"agents\": {\n" +
                      agents + "\n  }\n}\n";
  auto mount = mount_swarm(o, "fanout", swarm);
  if (!mount) return failed("could not mount the fan-out swarm");
  Mount& m = *mount;
  std::string mnt = m.mnt;
  auto bail = [&](const std::string& why) {
    failed(why);
    unmount_swarm(m);
  };

  // The model on its own: one streamed request by libcurl, the body a turn sends.
  std::string body =
      "{\"model\":\"fake-model\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
      "\"messages\":[{\"role\":\"system\",\"content\":\"Answer.\"},"
      "{\"role\":\"user\",\"content\":\"tick\\n\"}]}";
  std::vector<double> direct;
  for (int i = 0; i < o.single_samples + 1; ++i) {
    double t = 0;
    if (!script_fast_streams(o, 1) || !http("POST", o.model_url + "/v1/chat/completions", body, &t))
      return bail("direct request to fake_openai");
    if (i > 0) direct.push_back(t);  // the first opens the connection
  }

  // One turn through the mount, sequentially: inbox write to EOF on output.
  std::vector<double> single;
  {
    std::string out = mnt + "/agents/m00/output", inbox = mnt + "/agents/m00/inbox";
    for (int i = 0; i < o.single_samples + 1; ++i) {
      if (!script_fast_streams(o, 1)) return bail("fake_openai script");
      int fd = ::open(out.c_str(), O_RDONLY | O_CLOEXEC);
      struct stat st;
      ::fstat(fd, &st);
      double t0 = now();
      int e = send_message(inbox, "single " + std::to_string(i) + "\n");
      Drained d = drain_from(fd, st.st_size);
      ::close(fd);
      if (e || d.err || d.data.find("echo:") == std::string::npos)
        return bail("single turn: " + std::string(e ? std::strerror(e) : "no reply"));
      if (i > 0) single.push_back(d.eof_at - t0);  // the first warms the connection
    }
  }
  double single_p50 = median(single);

  // Warm every agent's path once (connections, first turn), untimed.
  struct Row {
    int n;
    std::vector<double> ack, done;
    int bad = 0;
    std::string problem;
  };
  std::vector<Row> rows;
  auto trial = [&](int n, int rep, Row* row) -> bool {
    std::string topic = "fan" + std::to_string(n);
    if (!script_fast_streams(o, n)) {
      if (row) row->problem = "fake_openai script";
      return false;
    }
    std::vector<int> fds(n);
    std::vector<off_t> offs(n);
    for (int i = 0; i < n; ++i) {
      fds[i] = ::open((mnt + "/agents/" + agent_name("m", i, 2) + "/output").c_str(),
                      O_RDONLY | O_CLOEXEC);
      struct stat st;
      ::fstat(fds[i], &st);
      offs[i] = st.st_size;
    }
    std::mutex mu;
    std::condition_variable cv;
    bool go = false;
    std::vector<Drained> got(n);
    std::vector<std::thread> readers;
    for (int i = 0; i < n; ++i) {
      readers.emplace_back([&, i] {
        {
          std::unique_lock lk(mu);
          cv.wait(lk, [&] { return go; });
        }
        got[i] = drain_from(fds[i], offs[i]);
      });
    }
    std::string payload = "tick " + std::to_string(n) + "." + std::to_string(rep) + "\n";
    double t0 = now();
    int e = send_message(mnt + "/events/" + topic, payload);
    double acked = now();
    {
      std::lock_guard lk(mu);
      go = true;
    }
    cv.notify_all();
    for (auto& t : readers) t.join();
    for (int fd : fds) ::close(fd);
    if (e) {
      if (row) row->problem = std::string("publish: ") + std::strerror(e);
      return false;
    }
    double last = 0;
    int bad = 0;
    for (auto& g : got) {
      last = std::max(last, g.eof_at);
      if (g.err || g.data.find("echo: " + payload.substr(0, payload.size() - 1)) ==
                       std::string::npos)
        ++bad;
    }
    int left = script_left(o);
    if (row) {
      row->ack.push_back(acked - t0);
      row->done.push_back(last - t0);
      row->bad += bad;
      if (left > 0)
        row->problem = std::to_string(left) + " script step(s) unused (fewer model calls than turns)";
    }
    return bad == 0;
  };
  for (int n : {1, 8, 64}) {
    trial(n, -1, nullptr);  // warm-up
    Row r;
    r.n = n;
    for (int rep = 0; rep < o.fanout_reps; ++rep) trial(n, rep, &r);
    rows.push_back(std::move(r));
  }
  // Check the turns really ran: every agent's status counts its turns.
  long turns = 0;
  for (int i = 0; i < kMax; ++i) {
    std::string s = read_file(mnt + "/agents/" + agent_name("m", i, 2) + "/status");
    auto p = s.find("\nturns ");
    if (p != std::string::npos) turns += std::atol(s.c_str() + p + 7);
  }
  long expected = static_cast<long>(o.single_samples + 1) +
                  static_cast<long>(o.fanout_reps + 1) * (1 + 8 + 64);
  std::printf("\n");
  figure("model alone (direct streamed request)", "p50 " + ms(median(direct)),
         "one chat completion by libcurl straight to fake_openai, read to its end: the "
         "model's own time, without swarmfs (median of " +
             std::to_string(direct.size()) + ").");
  figure("single turn through swarmfs", "p50 " + ms(single_p50),
         "write agents/m00/inbox (open, write, close) to EOF on its output, one at a time "
         "(median of " +
             std::to_string(single.size()) + "); the sequential sums below are N x this.");
  std::printf("\n  %-12s %-16s %-26s %-16s %s\n", "subscribers", "publish ack p50",
              "all turns done p50 (range)", "sequential sum", "speedup");
  for (auto& r : rows) {
    if (r.done.empty()) {
      failed("fan-out to " + std::to_string(r.n) + ": " + r.problem);
      continue;
    }
    double p50 = median(r.done);
    double lo = *std::min_element(r.done.begin(), r.done.end());
    double hi = *std::max_element(r.done.begin(), r.done.end());
    double seq = r.n * single_p50;
    std::printf("  %-12d %-16s %-26s %-16s %.1fx\n", r.n, ms(median(r.ack)).c_str(),
                (ms(p50) + " (" + ms(lo) + ".." + ms(hi) + ")").c_str(), ms(seq).c_str(),
                seq / p50);
    if (r.bad) failed(std::to_string(r.bad) + " subscriber reply(ies) missing or wrong at N=" +
                      std::to_string(r.n));
    if (!r.problem.empty()) std::printf("  note: N=%d: %s\n", r.n, r.problem.c_str());
  }
  note("publish ack: open, write, close of events/fanN (the publication and one message per "
       "subscriber committed, fsync'd, in one transaction). all turns done: from the start of "
       "that write to EOF on every subscriber's output (EOF comes when the agent is idle "
       "again, i.e. its turn finished); median, min..max of " +
       std::to_string(o.fanout_reps) +
       " publications after one warm-up. sequential sum: N x the single turn above, what "
       "the same work costs one turn at a time. speedup = sequential sum / done; N means "
       "perfectly parallel.");
  std::printf("  %-44s %ld of %ld\n", "turns counted in the agents' status files", turns,
              expected);
  note("sum of `turns` over agents/m*/status: every message of this part ran as a turn.");
  std::printf("  %-44s %s\n", "swarmfs resident memory after part (1)",
              mib(proc_status_kb(m.pid, "VmRSS")).c_str());
  note("VmRSS of the swarmfs process (64 model agents, after " + std::to_string(turns) +
       " turns).");
  unmount_swarm(m);
}

// ================================================================ (2) inbox throughput

struct TpResult {
  std::string label;
  bool ok = false;
  std::string problem;
  double mount_s = 0, window = 0;
  long acked = 0, errors = 0, done_in_window = 0, seen = 0;
  double ack_p50 = 0, ack_p99 = 0, first_p50 = 0, first_p99 = 0, first_max = 0;
  double drain = 0, backlog_peak = 0;
  long rss_kb = 0;
  double cpu = 0;  // swarmfs CPU seconds during the window and drain
};

TpResult run_throughput(const Options& o, const std::string& label, std::optional<int> workers) {
  TpResult res;
  res.label = label;
  const int A = o.tp_agents, W = o.tp_writers;
  std::string agents;
  for (int i = 0; i < A; ++i)
    agents += std::string(i ? ",\n" : "") + "    \"" + agent_name("c", i, 3) +
              "\": {\"exec\": [\"cat\"]}";
  std::string sched =
      workers ? "  \"scheduler\": {\"workers\": " + std::to_string(*workers) + "},\n" : "";
  std::string swarm = "{\n" + sched + "  \"agents\": {\n" + agents + "\n  }\n}\n";
  auto mount = mount_swarm(o, "tp-" + label, swarm);
  if (!mount) {
    res.problem = "could not mount";
    return res;
  }
  Mount& m = *mount;
  res.mount_s = m.mount_seconds;

  // Message ids index these; sized for far more than a run sends.
  const size_t kMaxMsgs = 1'000'000;
  std::vector<std::atomic<double>> t_start(kMaxMsgs), t_ack(kMaxMsgs), t_first(kMaxMsgs);
  std::atomic<long> next_id{0}, acked{0}, seen{0}, errors{0};
  std::atomic<int> last_errno{0};
  struct PerAgent {
    std::mutex mu;
    std::condition_variable cv;
    long pending = 0;  // acknowledged - seen (may dip below 0 briefly)
    int fd = -1;
    std::string inbox;
  };
  std::vector<PerAgent> per(A);
  std::atomic<bool> stop_readers{false};
  for (int i = 0; i < A; ++i) {
    std::string base = m.mnt + "/agents/" + agent_name("c", i, 3);
    per[i].inbox = base + "/inbox";
    per[i].fd = ::open((base + "/output").c_str(), O_RDONLY | O_CLOEXEC);
    if (per[i].fd < 0) {
      res.problem = "open output: " + std::string(std::strerror(errno));
      unmount_swarm(m);
      return res;
    }
  }
  // One reader per agent: while messages are outstanding it reads the output
  // (a read at the end waits while the agent has work); each line is one
  // message ("m<id> ...\n", cat sends it back), stamped with the time the
  // read that brought its first byte returned.
  std::vector<pthread_t> reader_handles(A);
  std::vector<std::atomic<bool>> reader_done(A);
  std::vector<std::thread> readers;
  for (int i = 0; i < A; ++i) {
    readers.emplace_back([&, i] {
      struct Done {
        std::atomic<bool>& flag;
        ~Done() { flag = true; }
      } done{reader_done[i]};
      PerAgent& p = per[i];
      std::string partial;
      double partial_at = 0;
      char buf[65536];
      off_t off = 0;
      for (;;) {
        {
          std::unique_lock lk(p.mu);
          p.cv.wait(lk, [&] { return p.pending > 0 || stop_readers; });
          if (stop_readers) return;
        }
        ssize_t r = ::pread(p.fd, buf, sizeof buf, off);
        double t = now();
        if (r < 0) {
          if (stop_readers) return;
          continue;  // EINTR
        }
        if (r == 0) {
          sleep_for(0.0005);  // idle yet a message outstanding: should not happen
          continue;
        }
        off += r;
        long lines = 0;
        for (ssize_t k = 0; k < r; ++k) {
          if (partial.empty()) partial_at = t;
          if (buf[k] != '\n') {
            partial += buf[k];
            continue;
          }
          long id = partial.size() > 1 && partial[0] == 'm' ? std::atol(partial.c_str() + 1) : -1;
          if (id >= 0 && static_cast<size_t>(id) < kMaxMsgs)
            t_first[id].store(partial_at, std::memory_order_relaxed);
          partial.clear();
          ++lines;
        }
        if (lines) {
          std::lock_guard lk(p.mu);
          p.pending -= lines;
          seen += lines;
        }
      }
    });
  }
  for (int i = 0; i < A; ++i) reader_handles[i] = readers[i].native_handle();
  auto stop_all_readers = [&] {
    stop_readers = true;
    for (auto& p : per) {
      std::lock_guard lk(p.mu);
      p.cv.notify_all();
    }
    // A reader parked in a FUSE read ends it with EINTR when signalled; the
    // signal is repeated in case it arrived just before the read began.
    for (int round = 0; round < 500; ++round) {
      bool all = true;
      for (int i = 0; i < A; ++i)
        if (!reader_done[i]) {
          pthread_kill(reader_handles[i], SIGUSR1);
          all = false;
        }
      if (all) break;
      sleep_for(0.01);
    }
    for (auto& t : readers) t.join();
  };
  auto send_one = [&](bool timed) -> bool {
    long id = next_id++;
    if (static_cast<size_t>(id) >= kMaxMsgs) return false;
    int agent = static_cast<int>(id % A);
    char text[64];
    std::snprintf(text, sizeof text, "m%09ld to %s\n", id, agent_name("c", agent, 3).c_str());
    double t0 = now();
    t_start[id].store(t0, std::memory_order_relaxed);
    int e = send_message(per[agent].inbox, text);
    double t1 = now();
    if (e) {
      ++errors;
      last_errno = e;
      return true;
    }
    t_ack[id].store(t1, std::memory_order_relaxed);
    if (timed) ++acked;
    PerAgent& p = per[agent];
    {
      std::lock_guard lk(p.mu);
      ++p.pending;
    }
    p.cv.notify_one();
    return true;
  };
  auto wait_seen = [&](long target, double timeout) -> bool {
    double t0 = now();
    while (seen.load() < target) {
      if (now() - t0 > timeout) return false;
      sleep_for(0.002);
    }
    return true;
  };

  // Warm-up: one message to every agent (first exec of cat, files opened).
  for (int i = 0; i < A; ++i) send_one(false);
  if (!wait_seen(A, 60)) {
    res.problem = "warm-up replies did not all arrive";
    stop_all_readers();
    unmount_swarm(m);
    return res;
  }
  long first_id = next_id.load();
  long seen_before = seen.load();

  // The window: W writers for tp_seconds, each message to the next agent in turn.
  double cpu0 = proc_cpu_seconds(m.pid);
  double w0 = now(), w_end = w0 + o.tp_seconds;
  std::atomic<long> max_backlog{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < W; ++w)
    writers.emplace_back([&] {
      while (now() < w_end)
        if (!send_one(true)) break;
    });
  // Sample the backlog (acknowledged, reply not yet seen) during the window.
  while (now() < w_end) {
    long b = (next_id.load() - first_id) - (seen.load() - seen_before);
    max_backlog = std::max(max_backlog.load(), b);
    sleep_for(0.05);
  }
  for (auto& t : writers) t.join();
  double w1 = now();
  long last_id = next_id.load();
  long sent = last_id - first_id;
  long failed_sends = errors.load();
  bool drained = wait_seen(seen_before + sent - failed_sends, 120);
  double drained_at = now();
  res.cpu = proc_cpu_seconds(m.pid) - cpu0;
  res.rss_kb = proc_status_kb(m.pid, "VmRSS");
  stop_all_readers();
  for (auto& p : per) ::close(p.fd);

  res.window = w1 - w0;
  res.acked = acked.load();
  res.errors = failed_sends;
  res.drain = drained_at - w1;
  res.backlog_peak = static_cast<double>(max_backlog.load());
  std::vector<double> ack_lat, first_lat;
  for (long id = first_id; id < last_id; ++id) {
    double a = t_ack[id].load(), s = t_start[id].load(), f = t_first[id].load();
    if (a <= 0) continue;
    ack_lat.push_back(a - s);
    if (f > 0) {
      first_lat.push_back(f - s);
      ++res.seen;
      if (f <= w1) ++res.done_in_window;
    }
  }
  res.ack_p50 = percentile(ack_lat, 50);
  res.ack_p99 = percentile(ack_lat, 99);
  res.first_p50 = percentile(first_lat, 50);
  res.first_p99 = percentile(first_lat, 99);
  res.first_max = first_lat.empty() ? 0 : *std::max_element(first_lat.begin(), first_lat.end());
  res.ok = drained && res.errors == 0;
  if (!drained)
    res.problem = std::to_string(res.acked - res.seen) + " acknowledged message(s) never showed "
                  "in output within 120 s";
  if (res.errors)
    res.problem += (res.problem.empty() ? "" : "; ") + std::to_string(res.errors) +
                   " write(s) failed, last: " + std::strerror(last_errno.load());
  unmount_swarm(m);
  return res;
}

// The machine's own pace for the same work without swarmfs: `threads`
// threads, each running cat with the message on its stdin and reading its
// stdout to the end, for `seconds`. Returns runs per second.
double direct_cat_rate(int threads, double seconds) {
  std::atomic<long> runs{0};
  double start = now(), end = start + seconds;
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      const char* argv[] = {"cat", nullptr};
      while (now() < end) {
        int in[2], out[2];
        if (::pipe2(in, O_CLOEXEC) != 0) return;
        if (::pipe2(out, O_CLOEXEC) != 0) {
          ::close(in[0]);
          ::close(in[1]);
          return;
        }
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        pid_t pid;
        int rc = posix_spawnp(&pid, "cat", &fa, nullptr, const_cast<char**>(argv), environ);
        posix_spawn_file_actions_destroy(&fa);
        ::close(in[0]);
        ::close(out[1]);
        if (rc == 0) {
          const char msg[] = "m000000000 to c000\n";
          ssize_t w = ::write(in[1], msg, sizeof msg - 1);
          (void)w;
        }
        ::close(in[1]);
        char buf[256];
        while (::read(out[0], buf, sizeof buf) > 0) {
        }
        ::close(out[0]);
        if (rc == 0) {
          ::waitpid(pid, nullptr, 0);
          ++runs;
        }
      }
    });
  for (auto& t : ts) t.join();
  return static_cast<double>(runs.load()) / (now() - start);
}

void bench_throughput(const Options& o) {
  std::printf("(2) sustained inbox traffic: %d exec agents (cat), %d writer threads, %.0f s\n",
              o.tp_agents, o.tp_writers, o.tp_seconds);
  note("Two fresh mounts, the same swarm file but for the scheduler: \"workers\": 2, and no "
       "scheduler section (the default, 64 turn slots). Each writer sends one message per "
       "open, write, close to agents c000..c" +
           std::to_string(o.tp_agents - 1) +
           " in turn (a shared counter); one reader thread per agent follows its output. "
           "State (SQLite log, fsync per commit, group commit) on the disk under the work dir.",
       2);
  std::fflush(stdout);
  double direct2 = direct_cat_rate(2, 2), direct64 = direct_cat_rate(64, 2);
  std::vector<TpResult> r;
  r.push_back(run_throughput(o, "workers=2", 2));
  r.push_back(run_throughput(o, "workers=64 (default)", std::nullopt));
  std::printf("\n  %-44s %-22s %s\n", "", r[0].label.c_str(), r[1].label.c_str());
  // A run that did not get as far as its window shows "-".
  auto row = [&](const std::string& label, const std::function<std::string(const TpResult&)>& f,
                 const std::string& what) {
    auto cell = [&](const TpResult& x) { return x.window > 0 ? f(x) : std::string("-"); };
    std::printf("  %-44s %-22s %s\n", label.c_str(), cell(r[0]).c_str(), cell(r[1]).c_str());
    note(what);
  };
  row("acknowledged messages/s", [](const TpResult& x) { return fmt("%.0f/s", x.acked / x.window); },
      "messages whose close() returned 0 (durable) during the window, per second.");
  row("replies started/s (in the window)",
      [](const TpResult& x) { return fmt("%.0f/s", x.done_in_window / x.window); },
      "messages whose reply's first byte was read before the window ended, per second: the "
      "rate the agents kept up with.");
  std::printf("  %-44s %-22s %s\n", "baseline: cat run directly, no swarmfs",
              fmt("%.0f/s", direct2).c_str(), fmt("%.0f/s", direct64).c_str());
  note("this machine's pace for the same work without the file system: 2 (left) or 64 "
       "(right) threads each starting cat (posix_spawn), writing the message to its stdin, "
       "reading its stdout to the end; 2 s each, before the mounts. An upper bound for "
       "replies/s.");
  row("ack latency p50 / p99",
      [](const TpResult& x) { return ms(x.ack_p50) + " / " + ms(x.ack_p99); },
      "start of the inbox write to close() returning (the fsync'd commit, shared by "
      "concurrent writers).");
  row("write-to-first-output p50 / p99",
      [](const TpResult& x) { return ms(x.first_p50) + " / " + ms(x.first_p99); },
      "start of the inbox write to the read that returned the reply's first byte from that "
      "agent's output; every message of the window, those answered after it too. When "
      "acknowledged/s exceeds replies/s the queues grow and this is mostly waiting in them.");
  row("write-to-first-output max",
      [](const TpResult& x) { return ms(x.first_max); },
      "the slowest message of the window.");
  row("backlog peak / drain after the window",
      [](const TpResult& x) { return fmt("%.0f", x.backlog_peak) + " / " + secs(x.drain); },
      "most messages acknowledged but not yet answered at once (sampled every 50 ms), and "
      "the time from the last write to the last reply.");
  row("swarmfs CPU (window + drain)",
      [](const TpResult& x) { return fmt("%.2f s", x.cpu) + fmt(" (%.0f%%)", 100 * x.cpu / (x.window + x.drain)); },
      "utime+stime of the swarmfs process (not its cat children), and as a share of one "
      "core over that time.");
  row("swarmfs resident memory after",
      [](const TpResult& x) { return mib(x.rss_kb); }, "VmRSS of the swarmfs process.");
  row("time to mount (100 agents)", [](const TpResult& x) { return secs(x.mount_s); },
      "fork of swarmfs -f to the mount point answering (fresh state: one agent_created "
      "commit per agent).");
  for (auto& x : r)
    if (!x.ok) failed(x.label + ": " + x.problem);
}

// ================================================================ (3) 10,000 agents

struct ListFigures {
  double readdir_cold = -1, readdir = -1, ls = -1, ls_l = -1;
  long entries = 0;
};

ListFigures list_figures(const std::string& dir, int reps) {
  ListFigures f;
  f.readdir_cold = timed_readdir(dir, &f.entries);
  std::vector<double> rd, ls, lsl;
  for (int i = 0; i < reps; ++i) rd.push_back(timed_readdir(dir, nullptr));
  for (int i = 0; i < reps; ++i) ls.push_back(timed_run({"ls", dir}));
  for (int i = 0; i < std::max(1, reps / 2); ++i) lsl.push_back(timed_run({"ls", "-l", dir}));
  f.readdir = median(rd);
  f.ls = median(ls);
  f.ls_l = median(lsl);
  return f;
}

struct IdleFigures {
  double cpu = 0, wakeups = 0;
};
IdleFigures idle_figures(pid_t pid, double seconds) {
  sleep_for(1);  // settle
  double c0 = proc_cpu_seconds(pid);
  long w0 = proc_wakeups(pid);
  sleep_for(seconds);
  IdleFigures f;
  f.cpu = proc_cpu_seconds(pid) - c0;
  f.wakeups = static_cast<double>(proc_wakeups(pid) - w0) / seconds;
  return f;
}

std::string fstype(const std::string& path) {
  // The mount in /proc/mounts with the longest prefix of path.
  std::ifstream f("/proc/mounts");
  std::string dev, mnt, type, rest, best_type = "?";
  size_t best = 0;
  while (f >> dev >> mnt >> type && std::getline(f, rest)) {
    if (path.compare(0, mnt.size(), mnt) == 0 && mnt.size() >= best &&
        (path.size() == mnt.size() || path[mnt.size()] == '/' || mnt == "/")) {
      best = mnt.size();
      best_type = type;
    }
  }
  return best_type;
}

struct RoundTrip {
  bool ok = true;
  std::string problem;
  std::vector<double> samples;
};
// n+1 messages to agent_dir's inbox, one at a time; inbox write to EOF on output.
RoundTrip round_trips(const std::string& agent_dir, int n) {
  RoundTrip r;
  for (int i = 0; i <= n; ++i) {
    int fd = ::open((agent_dir + "/output").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      r.ok = false;
      r.problem = std::string("open output: ") + std::strerror(errno);
      return r;
    }
    struct stat st;
    ::fstat(fd, &st);
    std::string text = "still there? " + std::to_string(i) + "\n";
    double t0 = now();
    int e = send_message(agent_dir + "/inbox", text);
    Drained d = drain_from(fd, st.st_size);
    ::close(fd);
    if (e || d.err || d.data.find(text) == std::string::npos) {
      r.ok = false;
      r.problem = e ? std::strerror(e) : d.err ? std::strerror(d.err) : "no reply";
      return r;
    }
    if (i > 0) r.samples.push_back(d.eof_at - t0);
  }
  return r;
}

double timed_cat(const std::string& path, std::string* out) {
  double t0 = now();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[65536];
  ssize_t r;
  while ((r = ::read(fd, buf, sizeof buf)) > 0) out->append(buf, static_cast<size_t>(r));
  ::close(fd);
  return r < 0 ? -1 : now() - t0;
}

void bench_many(const Options& o) {
  const int N = o.many;
  std::printf("(3) %d agents declared in the swarm file (exec cat, all idle)\n", N);
  note("Beside: a swarm of one agent for the server's own footprint, and the same " +
           std::to_string(N) + " names as empty folders on tmpfs (" + fstype(o.shm) +
           ") and on the work dir's disk (" + fstype(o.work) +
           "), listed the same way. Listing times are medians of 5 (ls -l: of 2) after one "
           "cold readdir.",
       2);
  std::fflush(stdout);

  // The baselines: plain folders.
  std::string ext = o.work + "/many-plain";
  ::mkdir(ext.c_str(), 0755);
  ::mkdir(o.shm.c_str(), 0755);
  for (auto& base : {ext, o.shm})
    for (int i = 0; i < N; ++i) ::mkdir((base + "/" + agent_name("a", i, 5)).c_str(), 0755);
  ListFigures tmpfs = list_figures(o.shm, 5), disk = list_figures(ext, 5);

  // The reference: a swarm of one agent (the server's own footprint).
  auto small = mount_swarm(o, "many-one", "{\"agents\": {\"solo\": {\"exec\": [\"cat\"]}}}\n");
  if (!small) return failed("could not mount a one-agent swarm");
  RoundTrip small_rt = round_trips(small->mnt + "/agents/solo", 5);
  long small_rss = proc_status_kb(small->pid, "VmRSS");
  long small_threads = proc_status_kb(small->pid, "Threads");
  IdleFigures small_idle = idle_figures(small->pid, o.idle_seconds);
  double small_mount = small->mount_seconds;
  unmount_swarm(*small);

  // The big one.
  std::string agents;
  agents.reserve(static_cast<size_t>(N) * 40);
  for (int i = 0; i < N; ++i)
    agents += std::string(i ? ",\n" : "") + "    \"" + agent_name("a", i, 5) +
              "\": {\"exec\": [\"cat\"]}";
  auto big = mount_swarm(o, "many", "{\n  \"agents\": {\n" + agents + "\n  }\n}\n");
  if (!big) return failed("could not mount the " + std::to_string(N) + "-agent swarm");
  Mount& m = *big;
  long rss_mounted = proc_status_kb(m.pid, "VmRSS");
  ListFigures sw = list_figures(m.mnt + "/agents", 5);
  long rss_listed = proc_status_kb(m.pid, "VmRSS");
  long hwm = proc_status_kb(m.pid, "VmHWM");
  long threads = proc_status_kb(m.pid, "Threads");
  IdleFigures idle = idle_figures(m.pid, o.idle_seconds);
  // The swarm-wide files that grow with the agents.
  std::string metrics, ctl;
  double t_metrics = timed_cat(m.mnt + "/metrics", &metrics);
  double t_ctl = timed_cat(m.mnt + "/ctl", &ctl);
  // Still answering after all that: message round trips to the last agent.
  RoundTrip big_rt = round_trips(m.mnt + "/agents/" + agent_name("a", N - 1, 5), 5);
  unmount_swarm(m);

  std::printf("\n  %-34s %-18s %-10s %-10s %s\n", "", "swarmfs", "tmpfs", fstype(o.work).c_str(),
              "1-agent swarm");
  auto cell = [](double s) { return s < 0 ? std::string("failed") : ms(s); };
  std::printf("  %-34s %-18s %-10s %-10s %s\n", "time to mount", secs(m.mount_seconds).c_str(),
              "-", "-", secs(small_mount).c_str());
  note("fork of swarmfs -f (fresh state) to the mount point answering: reading the swarm "
       "file and committing one agent_created event per agent to the SQLite log.");
  std::printf("  %-34s %-18s %-10s %-10s %s\n", "readdir agents/ (first, cold)",
              cell(sw.readdir_cold).c_str(), cell(tmpfs.readdir_cold).c_str(),
              cell(disk.readdir_cold).c_str(), "-");
  note("opendir + readdir to the end + closedir of the " + std::to_string(N) +
       " entries, the first time after mounting (swarmfs also numbers the inodes then).");
  std::printf("  %-34s %-18s %-10s %-10s %s\n", "readdir agents/", cell(sw.readdir).c_str(),
              cell(tmpfs.readdir).c_str(), cell(disk.readdir).c_str(), "-");
  note("the same, again (FUSE listings are not cached by the kernel: each one asks swarmfs).");
  std::printf("  %-34s %-18s %-10s %-10s %s\n", "ls agents", cell(sw.ls).c_str(),
              cell(tmpfs.ls).c_str(), cell(disk.ls).c_str(), "-");
  note("`ls DIR > /dev/null` run as a process: exec, readdir, sort, print; no stat per entry.");
  std::printf("  %-34s %-18s %-10s %-10s %s\n", "ls -l agents", cell(sw.ls_l).c_str(),
              cell(tmpfs.ls_l).c_str(), cell(disk.ls_l).c_str(), "-");
  note("ls also calls statx and two getxattr per entry, each a path walk; swarmfs gives the "
       "kernel no entry or attribute caching (timeouts 0), so on swarmfs that is 6 FUSE "
       "LOOKUPs and a GETATTR per entry (counted with swarmfs -d).");
  std::printf("  %-34s %-18ld %-10ld %-10ld %s\n", "entries read", sw.entries, tmpfs.entries,
              disk.entries, "-");
  note("readdir's count, . and .. included: should be " + std::to_string(N + 2) + ".");
  std::printf("  %-34s %-18s %-10s %-10s %s\n", "resident memory (VmRSS) mounted",
              mib(rss_mounted).c_str(), "-", "-", mib(small_rss).c_str());
  note("the swarmfs process right after mounting; per agent: " +
       fmt("%.1f KiB", static_cast<double>(rss_mounted - small_rss) / (N - 1)) +
       " more than the 1-agent swarm.");
  std::printf("  %-34s %-18s %-10s %-10s %s\n", "resident memory after the listings",
              mib(rss_listed).c_str(), "-", "-", "-");
  note("after the readdirs and ls -l (each entry looked up, its inode numbered); peak "
       "(VmHWM, mounting included) " + mib(hwm) + ".");
  std::printf("  %-34s %-18s %-10s %-10s %s\n", ("idle CPU over " + fmt("%.0f s", o.idle_seconds)).c_str(),
              (fmt("%.2f s", idle.cpu) + fmt(" (%.2f%%)", 100 * idle.cpu / o.idle_seconds)).c_str(),
              "-", "-",
              (fmt("%.2f s", small_idle.cpu) + fmt(" (%.2f%%)", 100 * small_idle.cpu / o.idle_seconds)).c_str());
  note("utime+stime of the swarmfs process (from /proc/PID/stat, 10 ms ticks) while nothing "
       "happens, after a 1 s settle; % of one core.");
  std::printf("  %-34s %-18s %-10s %-10s %s\n", "idle wakeups/s",
              fmt("%.1f", idle.wakeups).c_str(), "-", "-", fmt("%.1f", small_idle.wakeups).c_str());
  note("context switches per second summed over the server's threads (" +
       std::to_string(threads) + " threads; 1-agent swarm: " + std::to_string(small_threads) +
       "): 0 means nothing polls.");
  std::printf("  %-34s %-18s %-10s %-10s %s\n", "read metrics / ctl",
              (cell(t_metrics) + " / " + cell(t_ctl)).c_str(), "-", "-", "-");
  note("cat of MNT/metrics (" + fmt("%.0f KiB", metrics.size() / 1024.0) + ", " +
       std::to_string(std::count(metrics.begin(), metrics.end(), '\n')) +
       " lines) and of MNT/ctl (" + std::to_string(std::count(ctl.begin(), ctl.end(), '\n')) +
       " lines): the swarm-wide files that grow with the agents.");
  auto rt_cell = [](const RoundTrip& r) {
    return r.ok ? "p50 " + ms(median(r.samples)) : std::string("failed");
  };
  std::printf("  %-34s %-18s %-10s %-10s %s\n", "message round trip (cat)",
              rt_cell(big_rt).c_str(), "-", "-", rt_cell(small_rt).c_str());
  note("inbox write (open, write, close) to EOF on output, one at a time, median of 5 after "
       "one warm-up, to " + agent_name("a", N - 1, 5) + " after all of the above (and to solo): "
       "the swarm still works (beside the same on the 1-agent swarm).");
  if (!big_rt.ok) failed("round trip to " + agent_name("a", N - 1, 5) + ": " + big_rt.problem);
  if (!small_rt.ok) failed("round trip to solo: " + small_rt.problem);
  if (sw.entries != N + 2) failed("readdir of agents/ read " + std::to_string(sw.entries) + " entries");
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  struct sigaction sa {};
  sa.sa_handler = on_sigusr1;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a parked FUSE read ends with EINTR
  sigaction(SIGUSR1, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  bool first = true;
  auto part = [&](const char* name, void (*fn)(const Options&)) {
    if (!o.want(name)) return;
    if (!first) std::printf("\n");
    first = false;
    double t0 = now();
    fn(o);
    std::printf("  [part took %.0f s]\n", now() - t0);
  };
  part("fanout", bench_fanout);
  part("tp", bench_throughput);
  part("many", bench_many);
  curl_global_cleanup();
  return failures ? 1 : 0;
}
