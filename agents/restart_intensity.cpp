#include "agents/restart_intensity.h"

#include <algorithm>
#include <charconv>

namespace swarmfs {

RestartIntensity::RestartIntensity(int max_restarts, Clock::duration period)
    : max_(std::max(0, max_restarts)), period_(std::max(Clock::duration::zero(), period)) {}

void RestartIntensity::forget_before(Clock::time_point now) {
    while (!restarts_.empty() && now - restarts_.front() >= period_) restarts_.pop_front();
}

bool RestartIntensity::allow_restart(Clock::time_point now) {
    forget_before(now);
    if (static_cast<int>(restarts_.size()) >= max_) return false;
    restarts_.push_back(now);
    return true;
}

int RestartIntensity::recent(Clock::time_point now) const {
    return static_cast<int>(std::count_if(restarts_.begin(), restarts_.end(),
                                          [&](auto t) { return now - t < period_; }));
}

void RestartIntensity::record_past(double at, double now) {
    double ago = std::max(0.0, now - at);
    auto when = Clock::now() -
                std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(ago));
    if (Clock::now() - when >= period_) return;
    restarts_.push_back(when);
    while (static_cast<int>(restarts_.size()) > max_) restarts_.pop_front();
}

void RestartIntensity::reset() { restarts_.clear(); }

std::string RestartIntensity::status(Clock::time_point now, std::string_view reason) const {
    return format_crash_status(recent(now), max_, period_, reason);
}

std::string format_crash_status(int recent, int max_restarts,
                                std::chrono::steady_clock::duration period,
                                std::string_view reason) {
    // Shortest form that reads back exactly: "30", "1.5", "0.25".
    char secs[32];
    double s = std::chrono::duration<double>(period).count();
    auto end = std::to_chars(secs, secs + sizeof secs, s).ptr;

    std::string out = "crashed " + std::to_string(recent) + "/" + std::to_string(max_restarts) +
                      " in " + std::string(secs, end) + "s";
    if (!reason.empty()) {
        out += ": ";
        for (char c : reason) out += (c == '\n' || c == '\r') ? ' ' : c;
    }
    return out;
}

}  // namespace swarmfs
