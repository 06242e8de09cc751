#pragma once
// The append-only event log: the source of truth for everything swarmfs shows.
// One SQLite table in WAL mode. A single writer thread commits batches, so
// concurrent writers share one fsync (group commit) and ids follow commit order.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "vault/result.h"
#include "vault/sqlite.h"

namespace swarmfs {

struct Event {
    int64_t id = 0;  // assigned at commit
    double ts = 0;   // unix seconds, assigned when appended
    std::string kind;
    nlohmann::json data = nlohmann::json::object();

    // The form users read in MNT/log: {"id":..,"ts":"..Z","kind":..,<data>}.
    std::string to_line() const;
};

class EventLog {
  public:
    // path may be ":memory:" for tests. Durable mode uses WAL with
    // synchronous=FULL: a commit is on disk before it is acknowledged.
    static Result<std::unique_ptr<EventLog>> open(const std::string& path);
    ~EventLog();
    EventLog(const EventLog&) = delete;
    EventLog& operator=(const EventLog&) = delete;

    // Appends the events in one transaction and returns when it is on disk.
    // Returns the id of the last event.
    Result<int64_t> commit(std::vector<Event> events);
    // Appends without waiting; still ordered before any later commit().
    void post(std::vector<Event> events);
    // Waits until everything posted so far is committed.
    void drain();

    // Reads committed events with id > after, in order.
    Status for_each(int64_t after, const std::function<void(const Event&)>& fn);

    // Called on the writer thread, in id order, after each commit.
    void set_observer(std::function<void(const Event&)> fn);
    // Applied to every event before it is queued (on the caller's thread):
    // what must never reach the disk (secrets) is taken out here. Set it
    // before the first commit.
    void set_filter(std::function<void(Event&)> fn) { filter_ = std::move(fn); }

  private:
    std::function<void(Event&)> filter_;
    struct Batch {
        std::vector<Event> events;
        bool wait = false;
        bool done = false;
        Error error;
        bool failed = false;
        int64_t last_id = 0;
    };

    EventLog(sqlite::Database db, sqlite::Statement insert);
    std::shared_ptr<Batch> make_batch(std::vector<Event> events) const;
    void writer_loop();
    void write_batches(std::vector<std::shared_ptr<Batch>>& batches);

    sqlite::Database db_;
    sqlite::Statement insert_;
    std::mutex db_mu_;  // the connection: writer transactions vs readers

    std::mutex mu_;
    std::condition_variable cv_;       // wakes the writer
    std::condition_variable done_cv_;  // wakes waiters
    std::deque<std::shared_ptr<Batch>> pending_;
    uint64_t enqueued_ = 0, written_ = 0;
    bool stopping_ = false;
    std::function<void(const Event&)> observer_;
    std::thread writer_;
};

double now_seconds();
std::string iso_time(double ts);

}  // namespace swarmfs
