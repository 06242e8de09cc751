#include "fs/passthrough_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "agents/unique_fd.h"

namespace swarmfs::fs {

// What a caller may set: permissions and the sticky bit. Set-uid and
// set-gid never reach the disk: the files belong to the server's user
// (root), and a copy that keeps modes would make them live on the host.
constexpr mode_t kModeBits = 01777;

namespace {

constexpr uint64_t kResolve =
    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
// The open(2) flags a caller's open passes on to the real file. O_DIRECT is
// the kernel's business (it bypasses the page cache above us); O_CREAT and
// O_EXCL go through create_open.
constexpr int kOpenFlags = O_ACCMODE | O_APPEND | O_TRUNC | O_SYNC | O_DSYNC;
// A folder rename walks what it moves to check the policy; past this many
// entries it answers EXDEV and mv copies file by file instead.
constexpr size_t kMaxRenameWalk = 100000;

// openat2 beneath dirfd, retrying EAGAIN (a concurrent rename made the
// kernel unsure the walk stayed beneath) and EINTR. -1 with errno.
int openat2_beneath(int dirfd, const char* path, uint64_t flags, mode_t mode = 0) {
    open_how how{};
    how.flags = flags | O_CLOEXEC;
    how.mode = (flags & O_CREAT) ? mode : 0;  // openat2 refuses a mode without O_CREAT
    how.resolve = kResolve;
    for (int i = 0; i < 32; ++i) {
        long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
        if (fd >= 0) return static_cast<int>(fd);
        if (errno != EAGAIN && errno != EINTR) return -1;
    }
    return -1;
}

bool valid_name(const std::string& name) {
    return !name.empty() && name != "." && name != ".." &&
           name.find_first_of(std::string_view("/\0", 2)) == std::string::npos &&
           name.size() <= NAME_MAX;
}

// EINVAL for ".", ".." and names with "/" (never resolved, only refused);
// ENAMETOOLONG as a disk would say it.
Status check_name(const std::string& name) {
    if (name.size() > NAME_MAX) return make_error(ENAMETOOLONG, "name too long: " + name);
    if (valid_name(name)) return {};
    return make_error(EINVAL, "not a valid name: " + name);
}

std::string join(const std::string& dir, const std::string& name) {
    return dir == "/" ? "/" + name : dir + "/" + name;
}

double seconds(const timespec& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

// A path to the file an O_PATH fd holds, for the calls that have no form
// taking such an fd (chmod, utimensat).
std::string proc_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

// How one viewer sees a path: not at all, as a read-only folder leading to
// visible paths (a passage), read-only, or read-write.
enum class Sight { hidden, passage, r, rw };

}  // namespace

struct PassthroughStore : std::enable_shared_from_this<PassthroughStore> {
    UniqueFd root;
    PassthroughPolicy policy;
    std::string label;

    Sight sight(const std::string& path) const {
        if (!policy.mode) return Sight::rw;
        switch (policy.mode(path)) {
            case Mode::rw:
                return Sight::rw;
            case Mode::r:
                return Sight::r;
            case Mode::none:
                break;
        }
        // The top folder is the view itself: it exists even when empty.
        if (path == "/") return Sight::passage;
        if (policy.visible_children && !policy.visible_children(path).empty())
            return Sight::passage;
        return Sight::hidden;
    }

    std::vector<std::string> shown_children(const std::string& dir) const {
        if (!policy.visible_children) return {};
        return policy.visible_children(dir);
    }

    Error refuse(Error e) const { return policy.refused ? policy.refused(std::move(e)) : e; }

    // "vault/kb/a.md": how messages name a path.
    std::string show(const std::string& path) const { return path == "/" ? label : label + path; }

    Error sys_error(const std::string& path, int err) const {
        return make_error(err, show(path) + ": " + strerror(err));
    }

    // Refuses unless the viewer may change `path`: ENOENT where it does not
    // exist for the viewer, EACCES where it is read-only.
    Status need_rw(const std::string& path) const {
        switch (sight(path)) {
            case Sight::rw:
                return {};
            case Sight::hidden:
                return refuse(not_unveiled(path));
            case Sight::passage:
            case Sight::r:
                break;
        }
        return refuse(make_error(EACCES, show(path) + ": read-only here"));
    }

    Result<UniqueFd> open(const std::string& path, uint64_t flags) const {
        const char* rel = path == "/" ? "." : path.c_str() + 1;
        int fd = openat2_beneath(root.get(), rel, flags);
        if (fd < 0) return sys_error(path, errno);
        return UniqueFd(fd);
    }

    // lstat, beneath the root.
    Result<struct stat> stat(const std::string& path) const {
        auto fd = open(path, O_PATH | O_NOFOLLOW);
        if (!fd) return fd.error();
        struct stat st {};
        if (fstat(fd->get(), &st) != 0) return sys_error(path, errno);
        return st;
    }

    // An O_PATH fd on a regular file or folder (never a symlink), for chmod
    // and utimensat through /proc/self/fd.
    Result<UniqueFd> open_inode(const std::string& path) const {
        auto fd = open(path, O_PATH | O_NOFOLLOW);
        if (!fd) return fd.error();
        struct stat st {};
        if (fstat(fd->get(), &st) != 0) return sys_error(path, errno);
        if (S_ISLNK(st.st_mode)) return not_followed(path);
        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) return not_regular(path);
        return std::move(*fd);
    }

    Error not_unveiled(const std::string& path) const {
        return make_error(ENOENT, show(path) + ": not unveiled here");
    }
    Error not_followed(const std::string& path) const {
        return make_error(ELOOP, show(path) + ": symbolic links are not followed here");
    }
    Error not_regular(const std::string& path) const {
        return make_error(EPERM, show(path) + ": not a regular file");
    }

    // The real file, opened as the caller asked; only regular files.
    Result<std::unique_ptr<Handle>> open_file(const std::string& path, int flags) const;

    Status chmod(const std::string& path, mode_t mode) const {
        auto fd = open_inode(path);
        if (!fd) return fd.error();
        if (::chmod(proc_path(fd->get()).c_str(), mode & kModeBits) != 0)
            return sys_error(path, errno);
        return {};
    }

    Status utimens(const std::string& path, const timespec times[2]) const {
        auto fd = open_inode(path);
        if (!fd) return fd.error();
        if (utimensat(AT_FDCWD, proc_path(fd->get()).c_str(), times, 0) != 0)
            return sys_error(path, errno);
        return {};
    }

    // Calls fn with every path below `path` (a folder; nothing for a file),
    // relative to it ("/x", "/x/y"). EXDEV past kMaxRenameWalk entries.
    Status walk(const std::string& path, const std::function<Status(const std::string&)>& fn,
                size_t& budget, const std::string& rel = "") const;
};

namespace {

// The attributes a viewer sees: real ones, without write bits where it may
// not write, and special files as unusable regular files.
Attr shown_attr(const struct stat& st, Sight sight) {
    Attr a;
    mode_t perm = st.st_mode & kModeBits;
    if (sight != Sight::rw) perm &= ~static_cast<mode_t>(0222);
    a.size = static_cast<uint64_t>(st.st_size);
    a.mtime = seconds(st.st_mtim);
    a.times = Attr::Times{st.st_atim, st.st_mtim, st.st_ctim};
    if (S_ISDIR(st.st_mode)) {
        a.mode = S_IFDIR | perm;
        if (sight == Sight::passage) {
            // A folder the viewer only passes through: when its hidden
            // content last changed is none of its business.
            a.size = 0;
            a.mtime = 0;
            a.times.reset();
        }
    } else if (S_ISREG(st.st_mode)) {
        a.mode = S_IFREG | perm;
    } else if (S_ISLNK(st.st_mode)) {
        a.mode = S_IFLNK | 0777;
    } else {
        a.mode = S_IFREG;
        a.size = 0;
    }
    return a;
}

// An open real file. Under a policy, every read and write asks it again, so
// a pledge that narrows a path takes effect on files already open (for
// writes fully; reads the page cache already holds are served without us).
class PassthroughHandle : public Handle {
  public:
    PassthroughHandle(UniqueFd fd, std::shared_ptr<const PassthroughStore> store, std::string path)
        : fd_(std::move(fd)), store_(std::move(store)), path_(std::move(path)) {}

    ReadResult read(size_t size, uint64_t offset) override {
        if (store_->policy.mode && store_->sight(path_) == Sight::hidden)
            return ReadResult::error(store_->refuse(store_->not_unveiled(path_)).code);
        std::string buf(size, '\0');
        size_t got = 0;
        while (got < size) {
            ssize_t n =
                pread(fd_.get(), buf.data() + got, size - got, static_cast<off_t>(offset + got));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                if (got > 0) break;
                return ReadResult::error(errno);
            }
            if (n == 0) break;
            got += static_cast<size_t>(n);
        }
        buf.resize(got);
        return ReadResult::bytes(std::move(buf));
    }

    Result<size_t> write(std::string_view data, uint64_t offset) override {
        if (store_->policy.mode)
            if (auto s = store_->need_rw(path_); !s) return s.error();
        // With O_APPEND the real file appends whatever the offset (pwrite(2)
        // on Linux): concurrent `>>` writers never overwrite each other.
        size_t done = 0;
        while (done < data.size()) {
            ssize_t n = pwrite(fd_.get(), data.data() + done, data.size() - done,
                               static_cast<off_t>(offset + done));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                if (done > 0) break;
                return make_error(errno, std::string("write: ") + strerror(errno));
            }
            done += static_cast<size_t>(n);
        }
        return done;
    }

    Status truncate(uint64_t size) override {
        if (store_->policy.mode)
            if (auto s = store_->need_rw(path_); !s) return s;
        if (ftruncate(fd_.get(), static_cast<off_t>(size)) != 0)
            return make_error(errno, std::string("truncate: ") + strerror(errno));
        return {};
    }

    Status fsync(bool datasync) override {
        int rc = datasync ? fdatasync(fd_.get()) : ::fsync(fd_.get());
        if (rc != 0) return make_error(errno, std::string("fsync: ") + strerror(errno));
        return {};
    }

    bool direct_io() const override { return false; }

  private:
    UniqueFd fd_;
    std::shared_ptr<const PassthroughStore> store_;
    std::string path_;
};

// A regular file, or a special file shown as an unusable one.
class PassthroughFile : public FileNode {
  public:
    PassthroughFile(std::shared_ptr<const PassthroughStore> store, std::string path)
        : store_(std::move(store)), path_(std::move(path)) {}

    Result<Attr> attr() const override {
        auto st = store_->stat(path_);
        if (!st) return st.error();
        return shown_attr(*st, store_->sight(path_));
    }

    Result<std::unique_ptr<Handle>> open(int flags) override {
        if (wants_write(flags) || (flags & O_TRUNC)) {
            if (auto s = store_->need_rw(path_); !s) return s.error();
        } else if (store_->sight(path_) == Sight::hidden) {
            return store_->refuse(store_->not_unveiled(path_));
        }
        return store_->open_file(path_, flags);
    }

    Status truncate(uint64_t size) override {
        if (auto s = store_->need_rw(path_); !s) return s;
        auto h = store_->open_file(path_, O_WRONLY);
        if (!h) return h.error();
        return (*h)->truncate(size);
    }

    Status set_mode(mode_t mode) override {
        if (auto s = store_->need_rw(path_); !s) return s;
        return store_->chmod(path_, mode);
    }

    Status set_times(const timespec times[2]) override {
        if (auto s = store_->need_rw(path_); !s) return s;
        return store_->utimens(path_, times);
    }

  private:
    std::shared_ptr<const PassthroughStore> store_;
    std::string path_;
};

// A symbolic link planted on disk: listed, never followed.
class PassthroughLink : public Node {
  public:
    PassthroughLink(std::shared_ptr<const PassthroughStore> store, std::string path)
        : store_(std::move(store)), path_(std::move(path)) {}

    Result<Attr> attr() const override {
        auto st = store_->stat(path_);
        if (!st) return st.error();
        return shown_attr(*st, store_->sight(path_));
    }
    mode_t type() const override { return S_IFLNK; }
    Result<std::string> readlink() const override { return store_->not_followed(path_); }
    Status set_mode(mode_t) override { return store_->not_followed(path_); }
    Status set_times(const timespec*) override { return store_->not_followed(path_); }

  private:
    std::shared_ptr<const PassthroughStore> store_;
    std::string path_;
};

}  // namespace

Result<std::unique_ptr<Handle>> PassthroughStore::open_file(const std::string& path,
                                                            int flags) const {
    // Look before opening, so a fifo never blocks a server thread and a
    // device is never opened; O_NONBLOCK and the second look cover a swap
    // between the two.
    auto st = stat(path);
    if (!st) return st.error();
    if (S_ISLNK(st->st_mode)) return not_followed(path);
    if (S_ISDIR(st->st_mode)) return make_error(EISDIR, show(path) + ": is a folder");
    if (!S_ISREG(st->st_mode)) return not_regular(path);
    auto fd = open(
        path, static_cast<uint64_t>((flags & kOpenFlags) | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK));
    if (!fd) return fd.error();
    struct stat real {};
    if (fstat(fd->get(), &real) != 0) return sys_error(path, errno);
    if (!S_ISREG(real.st_mode)) return not_regular(path);
    int fl = fcntl(fd->get(), F_GETFL);
    if (fl >= 0) fcntl(fd->get(), F_SETFL, fl & ~O_NONBLOCK);
    return std::unique_ptr<Handle>(
        std::make_unique<PassthroughHandle>(std::move(*fd), shared_from_this(), path));
}

Status PassthroughStore::walk(const std::string& path,
                              const std::function<Status(const std::string&)>& fn, size_t& budget,
                              const std::string& rel) const {
    auto fd = open(path + rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (!fd) {
        // A file (or a link) has nothing below it.
        if (fd.error().code == ENOTDIR || fd.error().code == ELOOP) return {};
        return fd.error();
    }
    DIR* d = fdopendir(fd->get());
    if (!d) return sys_error(path + rel, errno);
    fd->release();
    std::vector<std::pair<std::string, bool>> children;
    while (dirent* e = readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        bool dir = e->d_type == DT_DIR;
        if (e->d_type == DT_UNKNOWN) {
            struct stat st {};
            dir =
                fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
        }
        children.emplace_back(std::move(name), dir);
    }
    closedir(d);
    for (auto& [name, dir] : children) {
        if (budget == 0) return make_error(EXDEV, show(path) + ": too large to move in one step");
        --budget;
        std::string child = rel + "/" + name;
        if (auto s = fn(child); !s) return s;
        if (dir)
            if (auto s = walk(path, fn, budget, child); !s) return s;
    }
    return {};
}

// ------------------------------------------------------------ PassthroughDir

Result<std::shared_ptr<PassthroughDir>> PassthroughDir::open(const std::string& root,
                                                             PassthroughPolicy policy,
                                                             std::string label) {
    int fd = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return make_error(errno, label + " folder " + root + ": " + strerror(errno));
    auto store = std::make_shared<PassthroughStore>();
    store->root.reset(fd);
    store->policy = std::move(policy);
    store->label = std::move(label);
    return std::make_shared<PassthroughDir>(std::move(store), "/");
}

PassthroughDir::PassthroughDir(std::shared_ptr<const PassthroughStore> store, std::string path)
    : store_(std::move(store)), path_(std::move(path)) {}

Result<Attr> PassthroughDir::attr() const {
    auto st = store_->stat(path_);
    if (!st) return st.error();
    return shown_attr(*st, store_->sight(path_));
}

std::vector<std::string> PassthroughDir::list() const {
    std::vector<std::string> names;
    auto sight = store_->sight(path_);
    if (sight == Sight::hidden) return names;
    if (sight == Sight::passage) {
        for (auto& name : store_->shown_children(path_)) {
            if (!valid_name(name)) continue;
            std::string p = join(path_, name);
            auto st = store_->stat(p);
            auto s = store_->sight(p);
            if (!st || s == Sight::hidden || (s == Sight::passage && !S_ISDIR(st->st_mode)))
                continue;
            names.push_back(name);
        }
    } else {
        auto fd = store_->open(path_, O_RDONLY | O_DIRECTORY);
        if (!fd) return names;
        DIR* d = fdopendir(fd->get());
        if (!d) return names;
        fd->release();
        while (dirent* e = readdir(d)) {
            std::string name = e->d_name;
            if (name == "." || name == "..") continue;
            auto s = store_->sight(join(path_, name));
            if (s == Sight::hidden) continue;
            if (s == Sight::passage) {
                struct stat st {};
                if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
                    !S_ISDIR(st.st_mode))
                    continue;
            }
            names.push_back(std::move(name));
        }
        closedir(d);
    }
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    return names;
}

std::shared_ptr<Node> PassthroughDir::lookup(const std::string& name) {
    if (!valid_name(name)) return nullptr;
    std::string p = join(path_, name);
    auto sight = store_->sight(p);
    auto hidden = [&] {
        (void)store_->refuse(store_->not_unveiled(p));
        return nullptr;
    };
    if (sight == Sight::hidden) return hidden();
    auto st = store_->stat(p);
    if (!st) return nullptr;
    if (S_ISDIR(st->st_mode)) return std::make_shared<PassthroughDir>(store_, p);
    if (sight == Sight::passage) return hidden();
    if (S_ISLNK(st->st_mode)) return std::make_shared<PassthroughLink>(store_, p);
    return std::make_shared<PassthroughFile>(store_, p);
}

Status PassthroughDir::make_dir(const std::string& name, mode_t mode) {
    if (auto s = check_name(name); !s) return s.error();
    std::string p = join(path_, name);
    if (auto s = store_->need_rw(p); !s) return s;
    auto dir = store_->open(path_, O_PATH | O_DIRECTORY);
    if (!dir) return dir.error();
    if (mkdirat(dir->get(), name.c_str(), mode & kModeBits) != 0)
        return store_->sys_error(p, errno);
    // The caller's umask is applied already; the server's must not be too.
    return store_->chmod(p, mode);
}

Status PassthroughDir::remove(const std::string& name, int flags) {
    if (auto s = check_name(name); !s) return s.error();
    std::string p = join(path_, name);
    if (auto s = store_->need_rw(p); !s) return s;
    auto dir = store_->open(path_, O_PATH | O_DIRECTORY);
    if (!dir) return dir.error();
    if (unlinkat(dir->get(), name.c_str(), flags) != 0) return store_->sys_error(p, errno);
    return {};
}

Status PassthroughDir::rmdir(const std::string& name) { return remove(name, AT_REMOVEDIR); }

Status PassthroughDir::unlink(const std::string& name) { return remove(name, 0); }

Result<std::shared_ptr<FileNode>> PassthroughDir::create(const std::string& name, mode_t mode) {
    auto c = create_open(name, mode, O_RDONLY);
    if (!c) return c.error();
    return std::move(c->file);
}

Result<DirNode::Created> PassthroughDir::create_open(const std::string& name, mode_t mode,
                                                     int flags) {
    if (auto s = check_name(name); !s) return s.error();
    std::string p = join(path_, name);
    if (auto s = store_->need_rw(p); !s) return s.error();
    auto dir = store_->open(path_, O_PATH | O_DIRECTORY);
    if (!dir) return dir.error();
    auto file = std::make_shared<PassthroughFile>(store_, p);
    // O_EXCL first: only a file made here gets the caller's mode.
    uint64_t how = static_cast<uint64_t>((flags & kOpenFlags & ~O_TRUNC) | O_CREAT | O_EXCL |
                                         O_NOFOLLOW | O_NOCTTY);
    int fd = openat2_beneath(dir->get(), name.c_str(), how, mode & kModeBits);
    if (fd >= 0) {
        UniqueFd owned(fd);
        if (fchmod(fd, mode & kModeBits) != 0) return store_->sys_error(p, errno);
        return Created{std::move(file),
                       std::make_unique<PassthroughHandle>(std::move(owned), store_, p)};
    }
    if (errno != EEXIST || (flags & O_EXCL)) return store_->sys_error(p, errno);
    auto h = file->open(flags);
    if (!h) return h.error();
    return Created{std::move(file), std::move(*h)};
}

Status PassthroughDir::rename(const std::string& from, const std::string& to, unsigned flags) {
    return rename_into(from, *this, to, flags);
}

Status PassthroughDir::rename_into(const std::string& from, DirNode& to, const std::string& to_name,
                                   unsigned flags) {
    auto* dst = dynamic_cast<PassthroughDir*>(&to);
    if (!dst || dst->store_ != store_)
        return make_error(EXDEV, "files cannot be moved between these folders");
    if ((flags & ~static_cast<unsigned>(RENAME_NOREPLACE | RENAME_EXCHANGE)) ||
        flags == (RENAME_NOREPLACE | RENAME_EXCHANGE))
        return make_error(EINVAL, "unsupported rename flags");
    if (auto s = check_name(from); !s) return s;
    if (auto s = check_name(to_name); !s) return s;
    const std::string p = join(path_, from), q = join(dst->path_, to_name);
    if (auto s = store_->need_rw(p); !s) return s;
    if (auto s = store_->need_rw(q); !s) return s;
    if (store_->policy.mode) {
        // Moving a folder moves everything below it: each of those paths is
        // written at both ends, and a read-only file inside an rw folder must
        // not leave its place (nor become writable under the new name).
        size_t budget = kMaxRenameWalk;
        auto both = [&](const std::string& a, const std::string& b) {
            return store_->walk(
                a,
                [&](const std::string& rel) -> Status {
                    if (auto s = store_->need_rw(a + rel); !s) return s;
                    return store_->need_rw(b + rel);
                },
                budget);
        };
        if (auto s = both(p, q); !s) return s;
        if (flags & RENAME_EXCHANGE)
            if (auto s = both(q, p); !s) return s;
    }
    auto sdir = store_->open(path_, O_PATH | O_DIRECTORY);
    if (!sdir) return sdir.error();
    auto ddir = store_->open(dst->path_, O_PATH | O_DIRECTORY);
    if (!ddir) return ddir.error();
    if (renameat2(sdir->get(), from.c_str(), ddir->get(), to_name.c_str(), flags) != 0)
        return store_->sys_error(errno == EEXIST || errno == ENOTEMPTY ? q : p, errno);
    return {};
}

Status PassthroughDir::symlink(const std::string& name, const std::string&) {
    return store_->refuse(make_error(EPERM, store_->show(join(path_, name)) +
                                                ": symbolic links cannot be made here (one "
                                                "could point outside an agent's subtree)"));
}

Status PassthroughDir::link(const std::string& name, Node&) {
    return store_->refuse(make_error(EPERM, store_->show(join(path_, name)) +
                                                ": hard links cannot be made here (one file "
                                                "would have two paths, so two modes)"));
}

Status PassthroughDir::set_mode(mode_t mode) {
    if (auto s = store_->need_rw(path_); !s) return s;
    return store_->chmod(path_, mode);
}

Status PassthroughDir::set_times(const timespec times[2]) {
    if (auto s = store_->need_rw(path_); !s) return s;
    return store_->utimens(path_, times);
}

}  // namespace swarmfs::fs
