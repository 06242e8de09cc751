#pragma once
// The scheduler's queue of ready work: which agent (or turn) a free worker
// starts next. Three quality-of-service classes as Grand Central Dispatch
// has them: interactive work first, then default, then background; FIFO
// within a class. Waiting work ages: every `aging` interval it has waited
// lifts it one class, so background work reaches the front after 2 x aging
// however much interactive work keeps arriving. Equal classes go in arrival
// order.
//
// Not thread-safe: the scheduler owns it and holds its own lock around it.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string_view>
#include <unordered_map>

namespace swarmfs {

enum class Priority { interactive = 0, normal = 1, background = 2 };

// "interactive", "default" (also "normal"), "background"; nullopt otherwise.
std::optional<Priority> parse_priority(std::string_view text);
// The name users see and write: normal is "default".
std::string_view priority_name(Priority p);

class ReadyQueue {
  public:
    using Clock = std::chrono::steady_clock;
    using Key = uint64_t;

    // aging 0 (or less) turns aging off: strict priority, which can starve.
    explicit ReadyQueue(Clock::duration aging = std::chrono::seconds(5));

    // Queues `key` at the back of its class. A key already queued keeps its
    // place and class, and push returns false; to change its class, remove
    // and push it (its wait then starts again).
    bool push(Key key, Priority priority, Clock::time_point now);
    // The next key to start, taken off the queue; nullopt when empty.
    // O(1): only the three class heads can be next, since within a class the
    // head has waited longest and arrived first.
    std::optional<Key> pop(Clock::time_point now);
    // Takes `key` off the queue wherever it is (its agent was stopped).
    // False if it was not queued.
    bool remove(Key key);

    bool contains(Key key) const { return where_.count(key) != 0; }
    size_t size() const { return where_.size(); }
    size_t size(Priority p) const { return classes_[static_cast<int>(p)].size(); }
    bool empty() const { return where_.empty(); }
    Clock::duration aging() const { return aging_; }

  private:
    struct Entry {
        Key key;
        uint64_t seq;  // arrival order, breaks ties between classes
        Clock::time_point since;
    };
    using List = std::list<Entry>;
    static constexpr int kClasses = 3;

    int effective_class(int base, const Entry& e, Clock::time_point now) const;

    Clock::duration aging_;
    uint64_t next_seq_ = 0;
    List classes_[kClasses];
    struct Place {
        int cls;
        List::iterator it;
    };
    std::unordered_map<Key, Place> where_;
};

}  // namespace swarmfs
