#pragma once
// HTTP requests on the event loop: libcurl's multi interface driven by
// curl_multi_socket_action, its sockets watched by the EventLoop's epoll and
// its timeout kept as an EventLoop timer. A request in flight holds no thread.
//
// Everything here runs on the loop thread: construct it anywhere, but call
// start/cancel and destroy it on the loop thread (or after the loop stopped).
// Callbacks run on the loop thread and may call start/cancel (also for the
// request being reported); a cancelled request gets no further callback.
#include <curl/curl.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "agents/event_loop.h"

namespace swarmfs {

struct HttpRequest {
    std::string method = "POST";
    std::string url;
    std::vector<std::string> headers;  // "Name: value"
    std::string body;
    // Seconds; 0 means none.
    double connect_timeout = 0;     // TCP (and TLS) connect
    double first_byte_timeout = 0;  // from start until the first response byte
    double idle_timeout = 0;        // longest silence once the response began
    double total_timeout = 0;       // the whole transfer
};

struct HttpHead {
    int status = 0;
    std::string reason;                          // "Service Unavailable" (may be empty)
    std::map<std::string, std::string> headers;  // names lower-cased; repeated ones joined by ", "
    std::string header(const std::string& lower_name) const {
        auto it = headers.find(lower_name);
        return it == headers.end() ? std::string() : it->second;
    }
};

struct HttpDone {
    CURLcode code = CURLE_OK;  // CURLE_OPERATION_TIMEDOUT also for our own timeouts
    int status = 0;            // 0 when no response head arrived
    std::string error;         // empty on success, else a readable reason
    uint64_t body_bytes = 0;
};

struct HttpCallbacks {
    std::function<void(const HttpHead&)> on_head;   // once, before any data (final response)
    std::function<void(std::string_view)> on_data;  // body bytes as they arrive
    std::function<void(const HttpDone&)> on_done;   // exactly once unless cancelled
};

class HttpMulti {
  public:
    using Id = uint64_t;

    explicit HttpMulti(EventLoop& loop);
    ~HttpMulti();  // aborts every transfer without callbacks
    HttpMulti(const HttpMulti&) = delete;
    HttpMulti& operator=(const HttpMulti&) = delete;

    // Starts a request; failures to even start are reported by on_done
    // (posted, never from inside start). Returns its id (never 0).
    Id start(HttpRequest req, HttpCallbacks cb);
    // Aborts a transfer; no callback of it runs afterwards. Unknown ids are ignored.
    void cancel(Id id);
    size_t in_flight() const { return transfers_.size(); }

  private:
    // CURL and CURLM are both void here, so one deleter each.
    struct EasyDeleter {
        void operator()(CURL* e) const { curl_easy_cleanup(e); }
    };
    struct MultiDeleter {
        void operator()(CURLM* m) const { curl_multi_cleanup(m); }
    };
    struct SlistDeleter {
        void operator()(curl_slist* s) const { curl_slist_free_all(s); }
    };
    struct Transfer;

    static int socket_cb(CURL* easy, curl_socket_t s, int what, void* self, void* sockp);
    static int timer_cb(CURLM* multi, long timeout_ms, void* self);
    static size_t header_cb(char* data, size_t size, size_t n, void* t);
    static size_t write_cb(char* data, size_t size, size_t n, void* t);

    void on_socket(int fd, uint32_t events);
    void on_curl_timer();
    void action(curl_socket_t s, int ev_bitmask);
    void reap();
    void remove(Transfer& t);
    void arm_watchdog(Transfer& t, double delay);
    void on_watchdog(Id id);
    void fail(Id id, CURLcode code, std::string error);
    void add(Id id);
    void fail_soon(std::function<void(const HttpDone&)> done, std::string why);

    EventLoop& loop_;
    std::unique_ptr<CURLM, MultiDeleter> multi_;
    std::shared_ptr<char> alive_;  // loop callbacks hold a weak_ptr to it
    std::unordered_map<Id, std::unique_ptr<Transfer>> transfers_;
    std::unordered_map<int, uint32_t> sockets_;  // fd -> epoll events we watch for
    EventLoop::TimerId curl_timer_ = 0;
    uint64_t curl_timer_gen_ = 0;
    Id next_id_ = 1;
    bool in_curl_ = false;  // inside curl_multi_socket_action (its callbacks)
    std::vector<Id> deferred_cancels_;
    std::vector<Id> deferred_adds_;  // started from inside a libcurl callback
};

}  // namespace swarmfs
