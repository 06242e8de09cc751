#include "fs/node.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>

#include <charconv>

namespace swarmfs::fs {

unsigned Handle::poll(uint64_t) { return POLLIN | POLLOUT; }

mode_t Node::type() const { return is_dir() ? S_IFDIR : S_IFREG; }

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
Result<DirNode::Created> DirNode::create_open(const std::string& name, mode_t mode, int flags) {
    auto file = create(name, mode);
    if (!file) return file.error();
    auto h = (*file)->open(flags);
    if (!h) return h.error();
    return Created{std::move(*file), std::move(*h)};
}
Status DirNode::rename(const std::string&, const std::string&, unsigned) {
    return make_error(EACCES, "files cannot be renamed here");
}
Status DirNode::rename_into(const std::string&, DirNode&, const std::string&, unsigned) {
    return make_error(EXDEV, "files cannot be moved between these folders");
}
Status DirNode::symlink(const std::string&, const std::string&) {
    return make_error(EPERM, "symbolic links cannot be made here");
}
Status DirNode::link(const std::string&, Node&) {
    return make_error(EPERM, "hard links cannot be made here");
}

bool wants_write(int flags) { return (flags & O_ACCMODE) != O_RDONLY; }
bool wants_read(int flags) { return (flags & O_ACCMODE) != O_WRONLY; }

std::optional<int64_t> parse_conv_id(const std::string& name) {
    int64_t id = 0;
    auto [p, ec] = std::from_chars(name.data(), name.data() + name.size(), id);
    if (ec != std::errc() || p != name.data() + name.size() || id <= 0 ||
        std::to_string(id) != name)
        return std::nullopt;
    return id;
}

}  // namespace swarmfs::fs
