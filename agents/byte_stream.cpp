#include "agents/byte_stream.h"

#include <vector>

#include "vault/event_log.h"

namespace swarmfs {

ByteStream::Chunk ByteStream::read(uint64_t offset, size_t max) const {
    std::lock_guard lk(mu_);
    if (offset < data_.size()) return {State::Data, data_.substr(offset, max)};
    return {live_ ? State::Wait : State::Eof, {}};
}

void ByteStream::append(std::string_view bytes) {
    if (bytes.empty()) return;
    {
        std::lock_guard lk(mu_);
        data_.append(bytes);
        mtime_ = now_seconds();
    }
    notify();
}

void ByteStream::set_live(bool live) {
    {
        std::lock_guard lk(mu_);
        if (live_ == live) return;
        live_ = live;
    }
    notify();
}

bool ByteStream::live() const {
    std::lock_guard lk(mu_);
    return live_;
}

uint64_t ByteStream::size() const {
    std::lock_guard lk(mu_);
    return data_.size();
}

double ByteStream::mtime() const {
    std::lock_guard lk(mu_);
    return mtime_;
}

std::string ByteStream::snapshot() const {
    std::lock_guard lk(mu_);
    return data_;
}

ByteStream::ListenerId ByteStream::listen(std::function<void()> fn) {
    std::lock_guard lk(mu_);
    ListenerId id = next_id_++;
    listeners_.emplace(id, std::move(fn));
    return id;
}

void ByteStream::unlisten(ListenerId id) {
    std::lock_guard lk(mu_);
    listeners_.erase(id);
}

void ByteStream::notify() {
    std::vector<std::function<void()>> fns;
    {
        std::lock_guard lk(mu_);
        fns.reserve(listeners_.size());
        for (auto& [id, fn] : listeners_) fns.push_back(fn);
    }
    for (auto& fn : fns) fn();
}

}  // namespace swarmfs
