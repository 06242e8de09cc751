#include "agents/token_bucket.h"

#include <algorithm>
#include <cmath>

namespace swarmfs {

namespace {

// Tokens are whole numbers in practice; the slack absorbs floating-point
// error in the refill so a retry at the promised time is not refused by a
// hair.
constexpr double kSlack = 1e-6;

// Beyond this a wait is as good as forever, and the conversion below would
// overflow Clock::duration.
constexpr double kMaxWaitSeconds = 1e9;

}  // namespace

TokenBucket::TokenBucket(double capacity, double refill_per_second, Clock::time_point now)
    : capacity_(std::max(0.0, capacity)),
      rate_(std::max(0.0, refill_per_second)),
      level_(capacity_),
      last_(now) {}

void TokenBucket::refill(Clock::time_point now) {
    if (now <= last_) return;
    double elapsed = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    // Debt is paid back at the same rate, so one clamp at the top suffices.
    level_ = std::min(capacity_, level_ + elapsed * rate_);
}

double TokenBucket::needed(double n) const { return std::min(std::max(0.0, n), capacity_); }

double TokenBucket::level(Clock::time_point now) {
    refill(now);
    return level_;
}

TokenBucket::Clock::duration TokenBucket::wait_for(double n, Clock::time_point now) {
    refill(now);
    double missing = needed(n) - level_;
    if (missing <= kSlack) return Clock::duration::zero();
    if (rate_ <= 0) return Clock::duration::max();
    double seconds = missing / rate_;
    if (seconds > kMaxWaitSeconds) return Clock::duration::max();
    auto ms = static_cast<int64_t>(std::ceil(seconds * 1000.0));
    return std::chrono::milliseconds(std::max<int64_t>(1, ms));
}

bool TokenBucket::try_take(double n, Clock::time_point now) {
    refill(now);
    if (needed(n) - level_ > kSlack) return false;
    level_ -= std::max(0.0, n);
    return true;
}

void TokenBucket::adjust(double delta, Clock::time_point now) {
    refill(now);
    level_ = std::min(capacity_, level_ + delta);
}

ProviderLimiter::ProviderLimiter(RateLimit limit, Clock::time_point now) : limit_(limit) {
    auto per_minute = [&](uint64_t n) {
        return TokenBucket(static_cast<double>(n), static_cast<double>(n) / 60.0, now);
    };
    if (limit.requests_per_minute > 0) requests_.emplace(per_minute(limit.requests_per_minute));
    if (limit.tokens_per_minute > 0) tokens_.emplace(per_minute(limit.tokens_per_minute));
}

ProviderLimiter::Clock::duration ProviderLimiter::acquire(uint64_t estimated_tokens,
                                                          Clock::time_point now) {
    std::lock_guard lk(mu_);
    auto tokens = static_cast<double>(estimated_tokens);
    auto wait = Clock::duration::zero();
    if (requests_) wait = std::max(wait, requests_->wait_for(1, now));
    if (tokens_) wait = std::max(wait, tokens_->wait_for(tokens, now));
    if (wait > Clock::duration::zero()) return wait;
    // Both have room (checked under the same lock), so both takes succeed.
    if (requests_) requests_->try_take(1, now);
    if (tokens_) tokens_->try_take(tokens, now);
    return Clock::duration::zero();
}

void ProviderLimiter::settle(uint64_t estimated_tokens, uint64_t actual_tokens,
                             Clock::time_point now) {
    std::lock_guard lk(mu_);
    if (!tokens_) return;
    tokens_->adjust(static_cast<double>(estimated_tokens) - static_cast<double>(actual_tokens),
                    now);
}

}  // namespace swarmfs
