#include "fs/node.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>

namespace swarmfs::fs {

unsigned Handle::poll(uint64_t) { return POLLIN | POLLOUT; }

double DirNode::mtime() const { return 0; }

Result<Attr> DirNode::attr() const { return Attr{S_IFDIR | 0755, 0, mtime()}; }

Status DirNode::mkdir(const std::string&) {
    return make_error(EACCES, "folders cannot be made here");
}
Status DirNode::rmdir(const std::string&) {
    return make_error(EACCES, "folders cannot be removed here");
}
Result<std::shared_ptr<FileNode>> DirNode::create(const std::string&, mode_t) {
    return make_error(EACCES, "files cannot be created here");
}
Status DirNode::unlink(const std::string&) {
    return make_error(EACCES, "files cannot be removed here");
}
Status DirNode::rename(const std::string&, const std::string&, unsigned) {
    return make_error(EACCES, "files cannot be renamed here");
}

bool wants_write(int flags) { return (flags & O_ACCMODE) != O_RDONLY; }
bool wants_read(int flags) { return (flags & O_ACCMODE) != O_WRONLY; }

}  // namespace swarmfs::fs
