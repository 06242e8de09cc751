#include "fs/scratch_file.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "vault/event_log.h"

namespace swarmfs::fs {

std::shared_ptr<ScratchData> ScratchStore::get(const std::string& name) const {
    std::lock_guard lk(mu_);
    auto it = files_.find(name);
    return it == files_.end() ? nullptr : it->second;
}

std::shared_ptr<ScratchData> ScratchStore::create(const std::string& name, mode_t mode) {
    std::lock_guard lk(mu_);
    auto& slot = files_[name];
    if (!slot) {
        slot = std::make_shared<ScratchData>();
        slot->mode = mode & 07777;
        slot->mtime = now_seconds();
    }
    return slot;
}

bool ScratchStore::remove(const std::string& name) {
    std::lock_guard lk(mu_);
    return files_.erase(name) > 0;
}

void ScratchStore::put(const std::string& name, std::shared_ptr<ScratchData> d) {
    std::lock_guard lk(mu_);
    files_[name] = std::move(d);
}

std::vector<std::string> ScratchStore::names() const {
    std::lock_guard lk(mu_);
    std::vector<std::string> out;
    for (auto& [n, d] : files_) out.push_back(n);
    return out;
}

namespace {
class ScratchHandle : public Handle {
  public:
    explicit ScratchHandle(std::shared_ptr<ScratchData> d) : d_(std::move(d)) {}
    ReadResult read(size_t size, uint64_t offset) override {
        std::lock_guard lk(d_->mu);
        if (offset >= d_->data.size()) return ReadResult::bytes({});
        return ReadResult::bytes(d_->data.substr(offset, size));
    }
    Result<size_t> write(std::string_view data, uint64_t offset) override {
        if (offset + data.size() > (1u << 26)) return make_error(EFBIG, "scratch file too large");
        std::lock_guard lk(d_->mu);
        if (d_->data.size() < offset + data.size()) d_->data.resize(offset + data.size());
        d_->data.replace(offset, data.size(), data);
        d_->mtime = now_seconds();
        return data.size();
    }
    Status truncate(uint64_t size) override {
        if (size > (1u << 26)) return make_error(EFBIG, "scratch file too large");
        std::lock_guard lk(d_->mu);
        d_->data.resize(size);
        d_->mtime = now_seconds();
        return {};
    }

  private:
    std::shared_ptr<ScratchData> d_;
};
}  // namespace

Result<Attr> ScratchFile::attr() const {
    std::lock_guard lk(d_->mu);
    return Attr{S_IFREG | d_->mode, d_->data.size(), d_->mtime};
}

Result<std::unique_ptr<Handle>> ScratchFile::open(int flags) {
    if ((flags & O_TRUNC) && wants_write(flags)) {
        std::lock_guard lk(d_->mu);
        d_->data.clear();
        d_->mtime = now_seconds();
    }
    return std::unique_ptr<Handle>(std::make_unique<ScratchHandle>(d_));
}

Status ScratchFile::truncate(uint64_t size) {
    ScratchHandle h(d_);
    return h.truncate(size);
}

Result<std::string> ScratchFile::contents() const {
    std::lock_guard lk(d_->mu);
    return d_->data;
}

Status ScratchFile::replace(std::string data) {
    std::lock_guard lk(d_->mu);
    d_->data = std::move(data);
    d_->mtime = now_seconds();
    return {};
}

void ScratchFile::chmod(mode_t mode) {
    std::lock_guard lk(d_->mu);
    d_->mode = mode & 07777;
}

}  // namespace swarmfs::fs
