#pragma once
// Restart intensity, as an Erlang/OTP supervisor has it: a crashed agent is
// restarted at most `max_restarts` times within any `period`; one more crash
// inside that window and it stays crashed, with the reason, until a person
// says `restart`. This keeps a crash loop from burning tokens or CPU.
// Not thread-safe: one per agent, used under that agent's lock.
#include <chrono>
#include <deque>
#include <string>
#include <string_view>

namespace swarmfs {

class RestartIntensity {
  public:
    using Clock = std::chrono::steady_clock;

    explicit RestartIntensity(int max_restarts = 5,
                              Clock::duration period = std::chrono::seconds(30));

    // Called at a crash: true if a restart now stays within the intensity, and
    // then it is recorded. A refused restart is not recorded (it did not
    // happen), so recent() stays at max_restarts while the agent is given up.
    // max_restarts 0 never allows one.
    bool allow_restart(Clock::time_point now);
    // Restarts within the period that ends at `now`.
    int recent(Clock::time_point now) const;
    // A restart that happened at unix time `at`, read back from the log at
    // unix time `now`: kept if it is still inside the window, so a server
    // restarted in the middle of a crash loop does not start counting afresh.
    void record_past(double at, double now);
    // Forgets the history: an explicit `restart` command gives a fresh start.
    void reset();

    int max_restarts() const { return max_; }
    Clock::duration period() const { return period_; }

    // "crashed 3/5 in 30s: REASON", the line `status` shows.
    std::string status(Clock::time_point now, std::string_view reason) const;

  private:
    void forget_before(Clock::time_point now);

    int max_;
    Clock::duration period_;
    // Times of the restarts still inside the window, oldest first; never
    // longer than max_.
    std::deque<Clock::time_point> restarts_;
};

// The same text from plain numbers, for callers that keep their own counts.
// The reason is put on one line (newlines become spaces); an empty reason
// drops the ": ..." part.
std::string format_crash_status(int recent, int max_restarts,
                                std::chrono::steady_clock::duration period,
                                std::string_view reason);

}  // namespace swarmfs
