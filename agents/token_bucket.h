#pragma once
// Rate limits for a provider: token buckets for requests per minute and model
// tokens per minute, shared by every agent on that provider. Time is passed
// in, so callers (and tests) decide what "now" is; a turn that is refused is
// told how long to wait and retries then, rather than failing.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>

namespace swarmfs {

// A bucket that holds up to `capacity` tokens and refills continuously at
// `refill_per_second`. The level may go below zero (debt) when usage is
// charged after the fact. Not thread-safe: ProviderLimiter holds the lock.
class TokenBucket {
  public:
    using Clock = std::chrono::steady_clock;

    // Starts full at `now`.
    TokenBucket(double capacity, double refill_per_second, Clock::time_point now);

    // The level at `now`; negative while in debt. Time that goes backwards
    // (a caller that read the clock before another one) adds nothing.
    double level(Clock::time_point now);
    // How long until `n` could be taken: zero if now. Rounded up to whole
    // milliseconds, so retrying after that long succeeds (if nobody else took
    // the tokens meanwhile). Clock::duration::max() if it never refills.
    Clock::duration wait_for(double n, Clock::time_point now);
    // Takes `n` if it is there. A request larger than the capacity could never
    // fit, so it is admitted once the bucket is full and leaves it in debt.
    bool try_take(double n, Clock::time_point now);
    // Adds (refund) or removes (charge) tokens without asking; the level
    // never rises above the capacity but may fall below zero.
    void adjust(double delta, Clock::time_point now);

    double capacity() const { return capacity_; }
    double refill_per_second() const { return rate_; }

  private:
    void refill(Clock::time_point now);
    double needed(double n) const;

    double capacity_;
    double rate_;
    double level_;
    Clock::time_point last_;
};

// 0 means unlimited.
struct RateLimit {
    uint64_t requests_per_minute = 0;
    uint64_t tokens_per_minute = 0;
};

// One per provider; thread-safe. Each bucket holds a minute's worth, so a
// quiet provider admits a burst of a full minute's allowance at once.
class ProviderLimiter {
  public:
    using Clock = std::chrono::steady_clock;

    explicit ProviderLimiter(RateLimit limit, Clock::time_point now = Clock::now());

    // Zero: admitted, one request and `estimated_tokens` are taken.
    // Otherwise nothing is taken and the caller should try again after the
    // returned wait (always > 0). Admission is all or nothing across both
    // buckets, so a refused request holds no capacity while it waits.
    Clock::duration acquire(uint64_t estimated_tokens, Clock::time_point now);
    // Once the real usage is known: charges the difference (into debt if
    // need be, which delays later requests) or refunds the overestimate.
    // settle(estimated, 0, now) returns the tokens of a request never sent.
    void settle(uint64_t estimated_tokens, uint64_t actual_tokens, Clock::time_point now);

    RateLimit limit() const { return limit_; }

  private:
    mutable std::mutex mu_;
    const RateLimit limit_;
    std::optional<TokenBucket> requests_;
    std::optional<TokenBucket> tokens_;
};

}  // namespace swarmfs
