#pragma once
// An append-only byte stream that readers follow: an agent's output, a
// conversation's out, the swarm log. "live" means more bytes may come, so a
// reader at the end should wait; when not live, the end is EOF.
// Listeners hear every change; they must not call back into the stream's
// writer and are invoked without the stream's lock held.
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace swarmfs {

class ByteStream {
  public:
    enum class State { Data, Wait, Eof };
    struct Chunk {
        State state;
        std::string data;
    };

    explicit ByteStream(bool live = false) : live_(live) {}

    Chunk read(uint64_t offset, size_t max) const;
    void append(std::string_view bytes);
    void set_live(bool live);
    bool live() const;
    uint64_t size() const;
    double mtime() const;
    std::string snapshot() const;

    using ListenerId = uint64_t;
    ListenerId listen(std::function<void()> fn);
    void unlisten(ListenerId id);

  private:
    void notify();

    mutable std::mutex mu_;
    std::string data_;
    bool live_;
    double mtime_ = 0;
    ListenerId next_id_ = 1;
    std::map<ListenerId, std::function<void()>> listeners_;
};

}  // namespace swarmfs
