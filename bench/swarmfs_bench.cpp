// swarmfs_bench — a benchmark of a mounted swarmfs against libfuse's
// passthrough_ll example and a plain tmpfs. Not a test: it measures and prints.
// bench/run.sh sets up the mounts and runs it; see the README.
//
//   swarmfs_bench --swarm MNT [--agent cat] [--sink sink]
//                 [--passthrough DIR] [--raw DIR]
//                 [--cell-seconds 1.5] [--inbox-seconds 3] [--writers 8]
//                 [--samples 200]
//
// Plain C++20 and POSIX; no FUSE or swarmfs code: it is a client like any other.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string swarm;
  std::string agent = "cat";
  std::string sink = "sink";
  std::string passthrough;
  std::string raw;
  double cell_seconds = 1.5;
  double inbox_seconds = 3.0;
  int writers = 8;
  int samples = 200;
};

[[noreturn]] void usage(const char* prog) {
  std::fprintf(stderr,
               "usage: %s --swarm MNT [--agent NAME] [--sink NAME] [--passthrough DIR]\n"
               "          [--raw DIR] [--cell-seconds S] [--inbox-seconds S]\n"
               "          [--writers N] [--samples N]\n",
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
    if (a == "--swarm") o.swarm = value();
    else if (a == "--agent") o.agent = value();
    else if (a == "--sink") o.sink = value();
    else if (a == "--passthrough") o.passthrough = value();
    else if (a == "--raw") o.raw = value();
    else if (a == "--cell-seconds") o.cell_seconds = std::stod(value());
    else if (a == "--inbox-seconds") o.inbox_seconds = std::stod(value());
    else if (a == "--writers") o.writers = std::stoi(value());
    else if (a == "--samples") o.samples = std::stoi(value());
    else usage(argv[0]);
  }
  if (o.swarm.empty()) usage(argv[0]);
  return o;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Human-friendly rate: 12345 -> "12.3k".
std::string rate(double per_second) {
  char buf[32];
  if (per_second >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", per_second / 1e6);
  else if (per_second >= 1e4) std::snprintf(buf, sizeof buf, "%.1fk", per_second / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", per_second);
  return buf;
}

std::string micros(double seconds) {
  char buf[32];
  double us = seconds * 1e6;
  if (us >= 10000) std::snprintf(buf, sizeof buf, "%.1f ms", us / 1000);
  else if (us >= 1000) std::snprintf(buf, sizeof buf, "%.2f ms", us / 1000);
  else std::snprintf(buf, sizeof buf, "%.0f us", us);
  return buf;
}

void note(const char* text) {
  // Wrap at 78 columns, indented by three spaces.
  std::string line, word;
  auto flush_word = [&] {
    if (word.empty()) return;
    if (!line.empty() && 3 + line.size() + 1 + word.size() > 78) {
      std::printf("   %s\n", line.c_str());
      line.clear();
    }
    if (!line.empty()) line += ' ';
    line += word;
    word.clear();
  };
  for (const char* p = text; *p; ++p) {
    if (*p == ' ') flush_word();
    else word += *p;
  }
  flush_word();
  if (!line.empty()) std::printf("   %s\n", line.c_str());
}

// Run op() repeatedly for `seconds`; return ops/s, or nullopt with errno text
// in *error if op fails.
std::optional<double> ops_per_second(double seconds, const std::function<int()>& op,
                                     std::string* error) {
  // Warm-up (and early failure detection).
  for (int i = 0; i < 20; ++i) {
    if (int e = op(); e != 0) {
      *error = std::strerror(e);
      return std::nullopt;
    }
  }
  long n = 0;
  auto t0 = Clock::now();
  double elapsed = 0;
  do {
    for (int i = 0; i < 64; ++i) {
      if (int e = op(); e != 0) {
        *error = std::strerror(e);
        return std::nullopt;
      }
    }
    n += 64;
    elapsed = seconds_since(t0);
  } while (elapsed < seconds);
  return n / elapsed;
}

int do_stat(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? 0 : errno;
}

int do_open_read_close(const std::string& path) {
  char buf[8192];
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = 0;
  for (;;) {
    ssize_t r = ::read(fd, buf, sizeof buf);
    if (r > 0) continue;
    if (r < 0) err = errno;
    break;
  }
  if (::close(fd) != 0 && err == 0) err = errno;
  return err;
}

// One message: open, write, close. Returns 0 once close acknowledged it.
int send_message(const std::string& inbox, const std::string& text) {
  int fd = ::open(inbox.c_str(), O_WRONLY | O_CLOEXEC);
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

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  double rank = p / 100.0 * (v.size() - 1);
  size_t lo = static_cast<size_t>(rank);
  size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (rank - lo);
}

// ---------------------------------------------------------------------------

int bench_small_files(const Options& o) {
  // The same relative paths under each root: bench/run.sh copies the swarmfs
  // files onto the tmpfs, so sizes and path depths (one FUSE lookup per path
  // component, since neither server lets the kernel cache entries) match.
  const std::vector<std::string> files = {"status", "agents/" + o.agent + "/config"};
  struct Root {
    const char* label;
    std::string dir;
  };
  std::vector<Root> roots = {{"swarmfs", o.swarm}};
  if (!o.passthrough.empty()) roots.push_back({"passthrough_ll", o.passthrough});
  if (!o.raw.empty()) roots.push_back({"tmpfs", o.raw});
  const bool ratio = roots.size() > 1;

  std::printf("1. Small files, one thread, operations per second (best of 3 interleaved rounds\n"
              "   of %.2f s per figure)\n\n",
              o.cell_seconds / 3);
  std::printf("   %-34s", "");
  for (const auto& r : roots) std::printf(" %15s", r.label);
  if (ratio) std::printf(" %18s", "swarmfs/passthr.");
  std::printf("\n");

  int failures = 0;
  struct Op {
    const char* label;
    int (*fn)(const std::string&);
  };
  for (Op op : {Op{"stat", do_stat}, Op{"open+read+close", do_open_read_close}}) {
    for (const auto& f : files) {
      std::string label = std::string(op.label) + " " + f;
      std::printf("   %-34s", label.c_str());
      // Rounds interleaved across the roots, best of each: a burst of load
      // from elsewhere on the machine then hurts no column more than another.
      std::vector<double> v(roots.size(), 0);
      std::vector<std::string> errors(roots.size());
      for (int round = 0; round < 3; ++round) {
        for (size_t i = 0; i < roots.size(); ++i) {
          if (!errors[i].empty()) continue;
          std::string path = roots[i].dir + "/" + f;
          auto x = ops_per_second(o.cell_seconds / 3, [&] { return op.fn(path); }, &errors[i]);
          if (x) v[i] = std::max(v[i], *x);
        }
      }
      for (size_t i = 0; i < roots.size(); ++i) {
        if (!errors[i].empty()) ++failures;
        std::printf(" %15s", errors[i].empty() ? rate(v[i]).c_str() : ("error: " + errors[i]).c_str());
      }
      if (ratio && v[0] > 0 && v[1] > 0) std::printf(" %17.2fx", v[0] / v[1]);
      std::printf("\n");
    }
  }
  std::printf("\n");
  note("What it means: how many stat() calls, and how many complete open, read to EOF, close "
       "cycles, one thread gets per second. The swarmfs files are synthetic: status is rendered "
       "from the swarm's state, config from the agent's definition. The other columns are real "
       "files of the same size at the same paths: passthrough_ll is libfuse's example file "
       "system, run with cache=never (no attribute, entry or page cache, as swarmfs serves its "
       "files) over a tmpfs, i.e. the cost of FUSE round trips to a trivial server; tmpfs is the "
       "kernel alone. A ratio near 1 means swarmfs costs about what FUSE itself costs; the "
       "deeper path costs more everywhere under FUSE because every path component is a lookup "
       "request.");
  std::printf("\n");
  return failures;
}

int bench_inbox(const Options& o) {
  std::string inbox = o.swarm + "/agents/" + o.sink + "/inbox";
  std::printf("3. Acknowledged inbox messages per second (agent '%s', %.1f s each)\n\n", o.sink.c_str(),
              o.inbox_seconds);
  std::printf("   %-10s %14s %12s %16s %8s\n", "writers", "messages/s", "messages", "mean ack time",
              "errors");
  int failures = 0;
  for (int writers : {1, o.writers}) {
    std::atomic<long> ok{0}, errors{0};
    std::atomic<int> first_error{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    auto t0 = Clock::now();
    for (int w = 0; w < writers; ++w) {
      threads.emplace_back([&, w] {
        long i = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          std::string text = "bench writer " + std::to_string(w) + " message " + std::to_string(i++) + "\n";
          int e = send_message(inbox, text);
          if (e == 0) {
            ok.fetch_add(1, std::memory_order_relaxed);
          } else {
            errors.fetch_add(1, std::memory_order_relaxed);
            int zero = 0;
            first_error.compare_exchange_strong(zero, e);
            if (errors.load() > 100) break;  // give up early on a broken inbox
          }
        }
      });
    }
    while (seconds_since(t0) < o.inbox_seconds && errors.load() <= 100)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    stop = true;
    for (auto& t : threads) t.join();
    double elapsed = seconds_since(t0);
    double per_s = ok.load() / elapsed;
    std::string mean = ok.load() ? micros(elapsed * writers / ok.load()) : "-";
    std::printf("   %-10d %14s %12ld %16s %8ld\n", writers, rate(per_s).c_str(), ok.load(), mean.c_str(),
                errors.load());
    if (errors.load()) {
      std::printf("   (first error: %s)\n", std::strerror(first_error.load()));
      ++failures;
    }
    std::fflush(stdout);
  }
  std::printf("\n");
  note("What it means: each message is open(inbox), one write, close(); a close() that returns 0 "
       "is the server's acknowledgement that the message is committed to the SQLite log on disk "
       "(fsync), so this is the rate of durable, acknowledged messages. The agent is stopped "
       "during this test, so the messages only queue: the figure is the ingest path (FUSE, "
       "parsing, log append, fsync), not the agent's work. With several writers the server can "
       "commit concurrent messages together; 'mean ack time' is the average time one writer "
       "waited for one open..close.");
  std::printf("\n");
  return failures;
}

int bench_latency(const Options& o) {
  std::string dir = o.swarm + "/agents/" + o.agent;
  std::string inbox = dir + "/inbox";
  std::string output = dir + "/output";
  std::printf("2. Round trip through exec agent '%s' (%d messages, one at a time)\n\n", o.agent.c_str(),
              o.samples);
  std::vector<double> ack, first, done;
  int errors = 0;
  std::string first_error;
  for (int i = 0; i < o.samples && errors < 3; ++i) {
    int fd = ::open(output.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      ++errors;
      if (first_error.empty()) first_error = std::string("open output: ") + std::strerror(errno);
      continue;
    }
    struct stat st;
    if (::fstat(fd, &st) != 0 || ::lseek(fd, st.st_size, SEEK_SET) < 0) {
      ++errors;
      if (first_error.empty()) first_error = std::string("fstat/lseek output: ") + std::strerror(errno);
      ::close(fd);
      continue;
    }
    std::string text = "ping " + std::to_string(i) + "\n";
    auto t0 = Clock::now();
    int e = send_message(inbox, text);
    auto t1 = Clock::now();
    if (e != 0) {
      ++errors;
      if (first_error.empty()) first_error = std::string("send: ") + std::strerror(e);
      ::close(fd);
      continue;
    }
    char buf[4096];
    ssize_t got = 0, r = 0;
    std::optional<Clock::time_point> t2;
    // Read to EOF: the first byte is the reply arriving; EOF (the agent idle
    // again) is the turn finished. Draining also keeps samples independent.
    // poll() first, so that a reply or an EOF that never comes costs one
    // timeout and an error line, not the whole run.
    bool timed_out = false;
    for (;;) {
      struct pollfd p = {fd, POLLIN, 0};
      int n = ::poll(&p, 1, 10000);
      if (n == 0) {
        timed_out = true;
        break;
      }
      if (n < 0 && errno == EINTR) continue;
      r = ::read(fd, buf, sizeof buf);
      if (r == 0) break;
      if (r < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        break;
      }
      if (!t2) t2 = Clock::now();
      got += r;
    }
    auto t3 = Clock::now();
    ::close(fd);
    if (timed_out || r < 0 || !t2 || got < static_cast<ssize_t>(text.size())) {
      ++errors;
      if (first_error.empty())
        first_error = timed_out ? "no reply, or no EOF after it, within 10 s (" + std::to_string(got) +
                                      " bytes read)"
                      : r < 0   ? std::string("read output: ") + std::strerror(errno)
                                : "reply missing or short (" + std::to_string(got) + " of " +
                                    std::to_string(text.size()) + " bytes)";
      continue;
    }
    ack.push_back(std::chrono::duration<double>(t1 - t0).count());
    first.push_back(std::chrono::duration<double>(*t2 - t1).count());
    done.push_back(std::chrono::duration<double>(t3 - t1).count());
  }
  std::printf("   %-40s %10s %10s %10s\n", "", "p50", "p99", "max");
  auto row = [](const char* label, const std::vector<double>& v) {
    if (v.empty()) {
      std::printf("   %-40s %10s %10s %10s\n", label, "-", "-", "-");
      return;
    }
    std::printf("   %-40s %10s %10s %10s\n", label, micros(percentile(v, 50)).c_str(),
                micros(percentile(v, 99)).c_str(), micros(*std::max_element(v.begin(), v.end())).c_str());
  };
  row("acknowledge (open+write+close of inbox)", ack);
  row("close returned -> first byte of reply", first);
  row("close returned -> reply complete (EOF)", done);
  std::printf("   samples %zu, errors %d%s%s\n\n", first.size(), errors, errors ? ", first: " : "",
              first_error.c_str());
  note("What it means: the middle line is the figure asked for. For each message the client "
       "opens the agent's output, seeks to its end (output is seekable and its size is its "
       "length), sends the message, and after close() returns waits (poll(), then read()) until "
       "the reply's first byte arrives. In between the server queues the message, starts the exec "
       "agent (a new 'cat' process per message: fork, exec, stdin, stdout) and streams its "
       "stdout into output; the parked read is answered without polling. 'reply complete' "
       "adds the process exit, the commit of the turn to the log, and the EOF that says the "
       "agent is idle again.");
  std::printf("\n");
  return errors ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  int failures = 0;
  failures += bench_small_files(o);
  failures += bench_latency(o);
  failures += bench_inbox(o);
  if (failures) std::printf("swarmfs_bench: %d measurement(s) failed\n", failures);
  return failures ? 1 : 0;
}
