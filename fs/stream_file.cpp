#include "fs/stream_file.h"

#include <poll.h>
#include <sys/stat.h>

namespace swarmfs::fs {

namespace {
class StreamHandle : public Handle {
  public:
    StreamHandle(std::shared_ptr<ByteStream> s, bool seekable)
        : stream_(std::move(s)), seekable_(seekable) {}
    ~StreamHandle() override {
        if (listener_) stream_->unlisten(listener_);
    }
    ReadResult read(size_t size, uint64_t offset) override {
        auto chunk = stream_->read(offset, size);
        switch (chunk.state) {
            case ByteStream::State::Data:
                return ReadResult::bytes(std::move(chunk.data));
            case ByteStream::State::Wait:
                return ReadResult::waiting();
            case ByteStream::State::Eof:
                break;
        }
        return ReadResult::bytes({});
    }
    unsigned poll(uint64_t pos) override {
        return stream_->size() > pos || !stream_->live() ? POLLIN : 0;
    }
    void set_waker(std::function<void()> wake) override {
        listener_ = stream_->listen(std::move(wake));
    }
    bool nonseekable() const override { return !seekable_; }

  private:
    std::shared_ptr<ByteStream> stream_;
    bool seekable_;
    ByteStream::ListenerId listener_ = 0;
};
}  // namespace

Result<Attr> StreamFile::attr() const {
    auto s = stream_();
    if (!s) return make_error(ENOENT, "gone");
    return Attr{S_IFREG | 0444, seekable_ ? s->size() : 0, s->mtime()};
}

Result<std::unique_ptr<Handle>> StreamFile::open(int flags) {
    if (wants_write(flags)) return make_error(EACCES, "read-only stream");
    auto s = stream_();
    if (!s) return make_error(ENOENT, "gone");
    return std::unique_ptr<Handle>(std::make_unique<StreamHandle>(std::move(s), seekable_));
}

Result<std::string> StreamFile::contents() const {
    auto s = stream_();
    if (!s) return make_error(ENOENT, "gone");
    return s->snapshot();
}

}  // namespace swarmfs::fs
