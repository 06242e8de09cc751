#include "vault/event_log.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>

namespace swarmfs {

double now_seconds() {
    using namespace std::chrono;
    return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string iso_time(double ts) {
    time_t secs = static_cast<time_t>(ts);
    int ms = static_cast<int>((ts - static_cast<double>(secs)) * 1000);
    struct tm tm {};
    gmtime_r(&secs, &tm);
    char buf[64];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    return buf;
}

std::string Event::to_line() const {
    nlohmann::ordered_json j;
    j["id"] = id;
    j["ts"] = iso_time(ts);
    j["kind"] = kind;
    for (auto& [k, v] : data.items()) j[k] = v;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

namespace {
const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS events(
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    ts   REAL NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS events_append_only_u BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_append_only_d BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
)sql";
}  // namespace

Result<std::unique_ptr<EventLog>> EventLog::open(const std::string& path) {
    auto db = sqlite::Database::open(path);
    if (!db) return db.error();
    // WAL lets readers run beside the writer; FULL makes every commit durable
    // on disk (not only across a process crash) before we acknowledge it.
    for (const char* pragma : {"PRAGMA journal_mode=WAL;", "PRAGMA synchronous=FULL;"}) {
        if (auto s = db->exec(pragma); !s) return s.error();
    }
    if (auto s = db->exec(kSchema); !s) return s.error();
    auto ins = db->prepare("INSERT INTO events(ts, kind, data) VALUES(?1, ?2, ?3)");
    if (!ins) return ins.error();
    return std::unique_ptr<EventLog>(new EventLog(std::move(*db), std::move(*ins)));
}

EventLog::EventLog(sqlite::Database db, sqlite::Statement insert)
    : db_(std::move(db)), insert_(std::move(insert)) {
    writer_ = std::thread([this] { writer_loop(); });
}

EventLog::~EventLog() {
    {
        std::lock_guard lk(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    writer_.join();
}

void EventLog::set_observer(std::function<void(const Event&)> fn) {
    std::lock_guard lk(mu_);
    observer_ = std::move(fn);
}

// Stamps and filters (redacts) the events as they are handed in, so that a
// batch waiting for the writer already holds what will be stored.
std::shared_ptr<EventLog::Batch> EventLog::make_batch(std::vector<Event> events) const {
    auto b = std::make_shared<Batch>();
    double ts = now_seconds();
    for (auto& e : events) {
        if (e.ts == 0) e.ts = ts;
        if (filter_) filter_(e);
    }
    b->events = std::move(events);
    return b;
}

Result<int64_t> EventLog::commit(std::vector<Event> events) {
    auto b = make_batch(std::move(events));
    b->wait = true;
    std::unique_lock lk(mu_);
    if (stopping_) return make_error(EIO, "event log is closing");
    pending_.push_back(b);
    ++enqueued_;
    cv_.notify_one();
    done_cv_.wait(lk, [&] { return b->done; });
    if (b->failed) return b->error;
    return b->last_id;
}

void EventLog::post(std::vector<Event> events) {
    auto b = make_batch(std::move(events));
    std::lock_guard lk(mu_);
    pending_.push_back(b);
    ++enqueued_;
    cv_.notify_one();
}

void EventLog::drain() {
    std::unique_lock lk(mu_);
    uint64_t target = enqueued_;
    done_cv_.wait(lk, [&] { return written_ >= target; });
}

void EventLog::writer_loop() {
    for (;;) {
        std::vector<std::shared_ptr<Batch>> batches;
        std::function<void(const Event&)> observer;
        {
            std::unique_lock lk(mu_);
            cv_.wait(lk, [&] { return stopping_ || !pending_.empty(); });
            if (pending_.empty() && stopping_) return;
            while (!pending_.empty()) {
                batches.push_back(std::move(pending_.front()));
                pending_.pop_front();
            }
            observer = observer_;
        }
        write_batches(batches);
        if (observer) {
            for (auto& b : batches)
                if (!b->failed)
                    for (auto& e : b->events) observer(e);
        }
        {
            std::lock_guard lk(mu_);
            for (auto& b : batches) b->done = true;
            written_ += batches.size();
        }
        done_cv_.notify_all();
    }
}

void EventLog::write_batches(std::vector<std::shared_ptr<Batch>>& batches) {
    std::lock_guard lk(db_mu_);
    auto fail_all = [&](const std::string& why) {
        spdlog::error("event log: {}", why);
        for (auto& b : batches) {
            b->failed = true;
            b->error = make_error(EIO, "event log: " + why);
        }
    };
    if (auto s = db_.exec("BEGIN IMMEDIATE"); !s) return fail_all(s.error().message);
    for (auto& b : batches) {
        for (auto& e : b->events) {
            insert_.bind(1, e.ts);
            insert_.bind(2, std::string_view(e.kind));
            std::string data =
                e.data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
            insert_.bind(3, std::string_view(data));
            int rc = insert_.step();
            insert_.reset();
            if (rc != SQLITE_DONE) {
                std::string why = db_.last_error();
                (void)db_.exec("ROLLBACK");
                return fail_all(why);
            }
            e.id = sqlite3_last_insert_rowid(db_.raw());
            b->last_id = e.id;
        }
    }
    if (auto s = db_.exec("COMMIT"); !s) {
        (void)db_.exec("ROLLBACK");
        return fail_all(s.error().message);
    }
}

Status EventLog::for_each(int64_t after, const std::function<void(const Event&)>& fn) {
    std::lock_guard lk(db_mu_);
    auto st = db_.prepare("SELECT id, ts, kind, data FROM events WHERE id > ?1 ORDER BY id");
    if (!st) return st.error();
    st->bind(1, after);
    int rc;
    while ((rc = st->step()) == SQLITE_ROW) {
        Event e;
        e.id = st->int64(0);
        e.ts = st->real(1);
        e.kind = st->text(2);
        e.data = nlohmann::json::parse(st->text(3), nullptr, false);
        if (e.data.is_discarded()) e.data = nlohmann::json::object();
        fn(e);
    }
    if (rc != SQLITE_DONE) return make_error(EIO, "reading the event log: " + db_.last_error());
    return {};
}

}  // namespace swarmfs
