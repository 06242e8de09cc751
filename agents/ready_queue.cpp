#include "agents/ready_queue.h"

#include <algorithm>

namespace swarmfs {

std::optional<Priority> parse_priority(std::string_view text) {
    if (text == "interactive") return Priority::interactive;
    if (text == "default" || text == "normal") return Priority::normal;
    if (text == "background") return Priority::background;
    return std::nullopt;
}

std::string_view priority_name(Priority p) {
    switch (p) {
        case Priority::interactive:
            return "interactive";
        case Priority::normal:
            return "default";
        case Priority::background:
            return "background";
    }
    return "default";
}

ReadyQueue::ReadyQueue(Clock::duration aging) : aging_(std::max(Clock::duration::zero(), aging)) {}

int ReadyQueue::effective_class(int base, const Entry& e, Clock::time_point now) const {
    if (aging_ == Clock::duration::zero() || now <= e.since) return base;
    auto steps = (now - e.since) / aging_;
    return steps >= base ? 0 : base - static_cast<int>(steps);
}

bool ReadyQueue::push(Key key, Priority priority, Clock::time_point now) {
    if (where_.count(key)) return false;
    int cls = std::clamp(static_cast<int>(priority), 0, kClasses - 1);
    List& list = classes_[cls];
    // Callers may read the clock before taking the scheduler's lock, so
    // arrivals can come slightly out of time order; clamping keeps each list
    // ordered by wait, which is what lets pop look only at the heads.
    if (!list.empty()) now = std::max(now, list.back().since);
    list.push_back(Entry{key, next_seq_++, now});
    where_.emplace(key, Place{cls, std::prev(list.end())});
    return true;
}

std::optional<ReadyQueue::Key> ReadyQueue::pop(Clock::time_point now) {
    int best = -1;
    int best_class = kClasses;
    for (int cls = 0; cls < kClasses; ++cls) {
        if (classes_[cls].empty()) continue;
        const Entry& head = classes_[cls].front();
        int eff = effective_class(cls, head, now);
        if (best < 0 || eff < best_class ||
            (eff == best_class && head.seq < classes_[best].front().seq)) {
            best = cls;
            best_class = eff;
        }
    }
    if (best < 0) return std::nullopt;
    Key key = classes_[best].front().key;
    classes_[best].pop_front();
    where_.erase(key);
    return key;
}

bool ReadyQueue::remove(Key key) {
    auto it = where_.find(key);
    if (it == where_.end()) return false;
    classes_[it->second.cls].erase(it->second.it);
    where_.erase(it);
    return true;
}

}  // namespace swarmfs
