// Black-box test support for swarmfs: a GoogleTest fixture that mounts a real
// swarmfs server on a temporary directory, plus small process and file helpers.
//
// Everything here talks to the server only through the mount (and the
// command line), like a user would. The fixture always cleans up: it kills the
// server, lazily unmounts, reaps leftover child processes and removes its
// temporary directory, and a guardian process does the same if the test binary
// itself dies (for example when ctest kills it on a timeout).
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace swarmfs::it {

// Monotonic seconds.
double now();

// Sleep for `seconds`.
void sleep_for(double seconds);

// Polls `pred` every `interval` seconds until it is true or `timeout` seconds
// have passed. Returns the last value of `pred`.
bool wait_until(const std::function<bool()>& pred, double timeout = 10, double interval = 0.02);

struct ShResult {
    int status = -1;         // exit code, 128+signal if killed, -1 if not reaped
    bool timed_out = false;  // killed by us after the timeout
    std::string out;         // stdout
    std::string err;         // stderr
    double seconds = 0;      // wall time
};

// Runs `/bin/sh -c cmd` (stdin /dev/null, own process group) and captures its
// output. After `timeout` seconds the whole process group gets SIGKILL.
ShResult sh(const std::string& cmd, double timeout = 20);

// Quotes `s` for /bin/sh.
std::string shq(std::string_view s);

// Reads the whole file (until EOF) with open/read/close. On failure returns
// std::nullopt and sets *err to the errno. Blocks as long as the file does.
std::optional<std::string> read_file(const std::string& path, int* err = nullptr);

// Like read_file but ASSERT-free convenience: returns "" on error.
std::string slurp(const std::string& path);

// open(flags)/write/close. Returns 0 on success or the errno of the first
// failing call; *stage (if given) names it: "open", "write" or "close".
int write_file(const std::string& path, std::string_view data,
               int flags = O_WRONLY | O_CREAT | O_TRUNC, const char** stage = nullptr);

// The lines of `s` (without their '\n'; a last line without '\n' is kept).
std::vector<std::string> lines(std::string_view s);

// Counts non-overlapping occurrences of `needle` in `hay`.
size_t count(std::string_view hay, std::string_view needle);

// The value of the `key value` line `key` in `s`, or nullopt.
std::optional<std::string> kv(std::string_view s, std::string_view key);

// Names in a directory (without . and ..), sorted; nullopt if it can't be read.
std::optional<std::vector<std::string>> list_dir(const std::string& path);

// A child process running `/bin/sh -c "exec CMD"` with stdout (and stderr,
// merged) on a pipe. Used for `cat`/`tail` readers that block on the mount.
class Proc {
  public:
    explicit Proc(const std::string& cmd);
    ~Proc();
    Proc(const Proc&) = delete;
    Proc& operator=(const Proc&) = delete;

    pid_t pid() const { return pid_; }
    // Everything read from the child's stdout so far.
    const std::string& out() const { return out_; }
    // Reads what is available for up to `timeout` seconds. False once EOF.
    bool pump(double timeout);
    // Pumps until out() contains `needle` or `timeout` passes.
    bool wait_for(std::string_view needle, double timeout);
    // Pumps until the child exits (and its stdout closes) or `timeout` passes.
    // Returns the exit status (code, or 128+signal) or nullopt on timeout.
    std::optional<int> wait_exit(double timeout);
    void signal(int sig);
    bool exited() const { return status_.has_value(); }

  private:
    bool try_reap();
    pid_t pid_ = -1;
    int fd_ = -1;
    std::string out_;
    std::optional<int> status_;
};

// tests/fake_openai, the loopback OpenAI server, started for one test.
class FakeOpenAI {
  public:
    // ASSERTs (call it through ASSERT_NO_FATAL_FAILURE) that it started.
    void start(const std::string& args = "");
    int port() const { return port_; }
    std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
    // POST /_script with these steps (a JSON array); ASSERTs success.
    void script(const std::string& steps) const;
    // GET /_requests: one JSON line per request so far.
    std::string requests() const;
    void stop() { proc_.reset(); }

  private:
    std::unique_ptr<Proc> proc_;
    int port_ = 0;
};

// The fixture. Each test gets a fresh temp dir with mnt/ and state/ and a
// server mounted on mnt/ (started in SetUp). Override swarm_config() to start
// it with `--config swarm.json`.
class MountedSwarm : public ::testing::Test {
  protected:
    void SetUp() override;
    void TearDown() override;

    // JSON for --config; empty means no --config.
    virtual std::string swarm_config() const { return {}; }
    // An existing swarm file to use as it is (relative exec paths resolve
    // against its folder); takes precedence over swarm_config().
    virtual std::string swarm_config_file() const { return {}; }

    const std::string& dir() const { return dir_; }
    const std::string& mnt() const { return mnt_; }
    const std::string& state() const { return state_; }
    const std::string& log_path() const { return log_; }
    // mnt() + "/" + rel.
    std::string p(std::string_view rel) const;

    // Starts the server and waits until the mount answers (ASSERTs).
    void start();
    // SIGTERM, wait up to `timeout` s (then SIGKILL). Returns the raw wait
    // status, or -1. Does not unmount: a clean server unmounts itself.
    int stop(double timeout = 10);
    // SIGKILL the server, then lazily unmount.
    void kill9();
    // Starts the server again with the same state dir (after stop/kill9).
    void restart();
    // True while mnt() is listed in /proc/self/mountinfo.
    bool mounted() const;
    pid_t server_pid() const { return pid_; }
    // The server's stdout+stderr so far.
    std::string server_log() const;

    // Helpers working through the mount. They ADD_FAILURE on errors (use
    // ASSERT_NO_FATAL_FAILURE around make_agent).
    void make_agent(const std::string& name, const std::string& config_json);
    // Writes one message to agents/NAME/inbox; returns 0 or errno.
    int send(const std::string& agent, std::string_view msg);
    // `timeout N cat` of a stream file: returns its content once it ends (EOF),
    // ADD_FAILUREs if it did not end within `timeout`.
    std::string cat_stream(const std::string& rel, double timeout = 15);
    // Polls agents/NAME/status until it says `state idle`.
    bool wait_idle(const std::string& agent, double timeout = 15);
    // agents/NAME/status, and one of its `key value` lines ("(none)" if absent).
    std::string status(const std::string& agent);
    std::string field(const std::string& agent, const std::string& key);
    // Polls agents/NAME/status until `key` has `value`.
    bool wait_field(const std::string& agent, const std::string& key, const std::string& value,
                    double timeout = 20);
    // Writes one command line to agents/NAME/ctl; returns 0 or errno.
    int ctl(const std::string& agent, const std::string& cmd);
    std::string err(const std::string& agent);  // agents/NAME/err

  private:
    void spawn_server();
    void unmount_lazy();
    void abort_connection();
    void reap_children(double timeout);
    void guardian_say(const std::string& line);

    std::string dir_, mnt_, state_, log_, config_path_;
    pid_t pid_ = -1;
    int guardian_fd_ = -1;
    std::string conn_;  // fuse connection id (device minor) while mounted
    bool skipped_ = false;
};

// A mounted swarm whose model is tests/fake_openai: started before the
// mount (its URL goes into the swarm file), stopped after the unmount.
// Base is MountedSwarm or a fixture derived from it.
template <class Base = MountedSwarm>
class WithFakeModel : public Base {
  protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(fake_.start(fake_args()));
        before_mount();
        Base::SetUp();
    }
    void TearDown() override {
        Base::TearDown();
        fake_.stop();
    }
    // fake_openai's options, e.g. "--require-key K".
    virtual std::string fake_args() const { return {}; }
    // Once fake_openai listens, before the server starts: its environment.
    virtual void before_mount() {}
    FakeOpenAI fake_;
};

}  // namespace swarmfs::it
