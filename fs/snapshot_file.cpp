#include "fs/snapshot_file.h"

#include <sys/stat.h>

namespace swarmfs::fs {

ReadResult StringHandle::read(size_t size, uint64_t offset) {
    if (offset >= text_.size()) return ReadResult::bytes({});
    return ReadResult::bytes(text_.substr(offset, size));
}

Result<Attr> SnapshotFile::attr() const {
    auto text = peek_();
    if (!text) return text.error();
    return Attr{S_IFREG | 0444, text->size(), mtime_()};
}

Result<std::unique_ptr<Handle>> SnapshotFile::open(int flags) {
    if (wants_write(flags)) return make_error(EACCES, "read-only file");
    auto text = content_();
    if (!text) return text.error();
    return std::unique_ptr<Handle>(std::make_unique<StringHandle>(std::move(*text)));
}

}  // namespace swarmfs::fs
