#include "fs/control_file.h"

#include <sys/stat.h>

namespace swarmfs::fs {

namespace {
class ControlHandle : public StringHandle {
  public:
    ControlHandle(std::string state, CommandFn run)
        : StringHandle(std::move(state)), run_(std::move(run)) {}
    Result<size_t> write(std::string_view data, uint64_t) override {
        if (auto s = run_(data); !s) return s.error();
        return data.size();
    }
    Status truncate(uint64_t) override { return {}; }

  private:
    CommandFn run_;
};
}  // namespace

Result<Attr> ControlFile::attr() const {
    auto text = state_();
    if (!text) return text.error();
    return Attr{S_IFREG | 0664, text->size(), mtime_()};
}

Result<std::unique_ptr<Handle>> ControlFile::open(int flags) {
    std::string state;
    if (wants_read(flags)) {
        auto text = state_();
        if (!text) return text.error();
        state = std::move(*text);
    }
    return std::unique_ptr<Handle>(std::make_unique<ControlHandle>(std::move(state), run_));
}

}  // namespace swarmfs::fs
