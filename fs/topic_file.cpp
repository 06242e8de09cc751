#include "fs/topic_file.h"

#include <fcntl.h>
#include <sys/stat.h>

namespace swarmfs::fs {

Result<Attr> TopicFile::attr() const {
    auto a = follow_->attr();
    if (!a) return a.error();
    a->mode = S_IFREG | 0644;
    return a;
}

Result<std::unique_ptr<Handle>> TopicFile::open(int flags) {
    bool w = wants_write(flags), r = wants_read(flags);
    if (w && r)
        return make_error(EINVAL, "open a topic either to publish (write) or to follow (read)");
    return w ? publish_->open(flags) : follow_->open(flags);
}

}  // namespace swarmfs::fs
