#include "fs/document_file.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <mutex>
#include <optional>

namespace swarmfs::fs {

namespace {
class DocumentHandle : public Handle {
  public:
    DocumentHandle(std::string text, bool truncated, SetFn set, SetFn check)
        : text_(std::move(text)),
          truncated_(truncated),
          set_(std::move(set)),
          check_(std::move(check)) {}
    ReadResult read(size_t size, uint64_t offset) override {
        std::lock_guard lk(mu_);
        if (offset >= text_.size()) return ReadResult::bytes({});
        return ReadResult::bytes(text_.substr(offset, size));
    }
    Result<size_t> write(std::string_view data, uint64_t offset) override {
        if (offset > (1u << 24)) return make_error(EFBIG, "document too large");
        std::lock_guard lk(mu_);
        if (rejected_) return *rejected_;
        bool appending = offset == text_.size();
        if (text_.size() < offset + data.size()) text_.resize(offset + data.size());
        text_.replace(offset, data.size(), data);
        dirty_ = written_ = true;
        if (appending && check_) {
            if (auto s = check_(text_); !s) {
                // Rejected: nothing of it will be installed at close.
                rejected_ = s.error();
                dirty_ = false;
                return s.error();
            }
        }
        return data.size();
    }
    Status truncate(uint64_t size) override {
        if (size > (1u << 24)) return make_error(EFBIG, "document too large");
        std::lock_guard lk(mu_);
        text_.resize(size);
        rejected_.reset();
        dirty_ = written_ = true;
        return {};
    }
    // A shell's `echo x > config` closes a duplicate of the descriptor
    // before echo writes, so a flush with nothing written yet installs
    // nothing; an open with O_TRUNC and no write at all (`: > instructions`)
    // empties the document at the last close.
    void release() override {
        bool clear;
        {
            std::lock_guard lk(mu_);
            clear = truncated_ && !written_;
        }
        if (clear) (void)set_("");
    }
    Status flush() override {
        std::string text;
        {
            std::lock_guard lk(mu_);
            if (!dirty_) return {};
            dirty_ = false;  // report a rejection once, not at every later close
            text = text_;
        }
        return set_(text);
    }

  private:
    std::mutex mu_;
    std::string text_;
    bool truncated_;
    bool dirty_ = false, written_ = false;
    std::optional<Error> rejected_;
    SetFn set_;
    SetFn check_;
};
}  // namespace

Result<Attr> DocumentFile::attr() const {
    auto text = get_();
    if (!text) return text.error();
    return Attr{S_IFREG | 0664, text->size(), mtime_()};
}

Result<std::unique_ptr<Handle>> DocumentFile::open(int flags) {
    bool truncating = (flags & O_TRUNC) && wants_write(flags);
    std::string text;
    if (!truncating) {
        auto cur = get_();
        if (!cur) return cur.error();
        text = std::move(*cur);
    }
    return std::unique_ptr<Handle>(
        std::make_unique<DocumentHandle>(std::move(text), truncating, set_, check_draft_));
}

Status DocumentFile::truncate(uint64_t size) {
    auto cur = get_();
    if (!cur) return cur.error();
    cur->resize(size);
    return set_(*cur);
}

}  // namespace swarmfs::fs
