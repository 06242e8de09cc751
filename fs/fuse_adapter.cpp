#include "fs/fuse_adapter.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <stdio.h>  // RENAME_EXCHANGE
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "fs/scratch_file.h"

namespace swarmfs::fs {

struct FuseAdapter::OpenFile : std::enable_shared_from_this<OpenFile> {
    std::unique_ptr<Handle> handle;
    std::mutex mu;  // parked and ph
    std::vector<Parked> parked;
    fuse_pollhandle* ph = nullptr;
    uint64_t pos = 0;  // how far this reader has read, for poll
};

struct DirHandle {
    std::vector<std::pair<std::string, struct stat>> entries;
};

namespace {

FuseAdapter* self(fuse_req_t req) { return static_cast<FuseAdapter*>(fuse_req_userdata(req)); }

FuseAdapter::OpenFile* file_of(fuse_file_info* fi) {
    return reinterpret_cast<FuseAdapter::OpenFile*>(fi->fh);
}

timespec to_timespec(double t) {
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(t);
    ts.tv_nsec = static_cast<long>((t - std::floor(t)) * 1e9);
    return ts;
}

// Nothing is cached in the kernel: sizes of streams and the set of agents
// change under the reader, and a stale dentry would show an archived agent.
constexpr double kTimeout = 0.0;

void interrupt_cb(fuse_req_t req, void* data) {
    self(req)->interrupted(reinterpret_cast<uint64_t>(data));
}

}  // namespace

FuseAdapter::FuseAdapter(std::shared_ptr<DirNode> root, Identify identify)
    : inodes_(std::move(root)),
      identify_(std::move(identify)),
      uid_(getuid()),
      gid_(getgid()),
      mounted_(static_cast<double>(time(nullptr))) {}

FuseAdapter::~FuseAdapter() {
    std::lock_guard lk(open_mu_);
    for (auto& of : open_) {
        std::lock_guard fl(of->mu);
        if (of->ph) fuse_pollhandle_destroy(of->ph);
        of->ph = nullptr;
    }
    open_.clear();
}

// ------------------------------------------------------------ who may ask

std::optional<std::string> FuseAdapter::agent_of(fuse_req_t req, bool& unrestricted) {
    const fuse_ctx* ctx = fuse_req_ctx(req);
    unrestricted = ctx->uid == 0 || ctx->uid == uid_;
    if (unrestricted) return std::nullopt;
    auto name = identify_ ? identify_(ctx->uid) : std::nullopt;
    if (!name)
        spdlog::warn("refused a request from uid {}: not the owner and not an agent", ctx->uid);
    return name;
}

void FuseAdapter::refuse(const std::string& agent, const std::string& what) {
    if (refused_)
        refused_(agent, what);
    else
        spdlog::warn("refused {} from agent {}", what, agent);
}

int FuseAdapter::confine(fuse_req_t req, std::initializer_list<fuse_ino_t> inos) {
    bool unrestricted = false;
    auto agent = agent_of(req, unrestricted);
    if (unrestricted) return 0;
    if (!agent) return EACCES;
    for (fuse_ino_t ino : inos) {
        if (inodes_.view_of(ino) != *agent) {
            refuse(*agent, "a request outside views/" + *agent);
            return EACCES;
        }
    }
    return 0;
}

int FuseAdapter::confine_lookup(fuse_req_t req, fuse_ino_t parent, const std::string& name) {
    bool unrestricted = false;
    auto agent = agent_of(req, unrestricted);
    if (unrestricted) return 0;
    if (!agent) return EACCES;
    if (parent == FUSE_ROOT_ID && name == InodeTable::kViews) return 0;
    fuse_ino_t views = inodes_.views();
    if (views != 0 && parent == views && name == *agent) return 0;
    if (inodes_.view_of(parent) == *agent) return 0;
    refuse(*agent, "a lookup of " + name + " outside views/" + *agent);
    return EACCES;
}

int FuseAdapter::confine_getattr(fuse_req_t req, fuse_ino_t ino) {
    bool unrestricted = false;
    auto agent = agent_of(req, unrestricted);
    if (unrestricted) return 0;
    if (!agent) return EACCES;
    if (ino == FUSE_ROOT_ID || ino == inodes_.views() || inodes_.view_of(ino) == *agent) return 0;
    refuse(*agent, "a stat outside views/" + *agent);
    return EACCES;
}

// ------------------------------------------------------------ requests

bool FuseAdapter::fill_attr(fuse_ino_t ino, const Node& node, struct stat& st, int& err) {
    auto a = node.attr();
    if (!a) {
        err = a.error().code;
        return false;
    }
    memset(&st, 0, sizeof st);
    st.st_ino = ino;
    st.st_mode = a->mode;
    st.st_nlink = node.is_dir() ? 2 : 1;
    st.st_uid = uid_;
    st.st_gid = gid_;
    st.st_size = static_cast<off_t>(a->size);
    st.st_blksize = 4096;
    st.st_blocks = static_cast<blkcnt_t>((a->size + 511) / 512);
    if (a->times) {
        st.st_atim = a->times->atime;
        st.st_mtim = a->times->mtime;
        st.st_ctim = a->times->ctime;
    } else {
        // Objects that never changed carry the time the swarm was mounted.
        st.st_mtim = st.st_ctim = st.st_atim = to_timespec(a->mtime > 0 ? a->mtime : mounted_);
    }
    return true;
}

void FuseAdapter::reply_entry(fuse_req_t req, fuse_ino_t parent, const std::string& name) {
    auto dir = inodes_.dir(parent);
    if (!dir) return (void)fuse_reply_err(req, ENOENT);
    auto node = dir->lookup(name);
    if (!node) return (void)fuse_reply_err(req, ENOENT);
    fuse_entry_param e{};
    e.ino = inodes_.reserve(parent, name);
    int err = 0;
    if (!fill_attr(e.ino, *node, e.attr, err)) return (void)fuse_reply_err(req, err);
    e.attr_timeout = kTimeout;
    e.entry_timeout = kTimeout;
    fuse_reply_entry(req, &e);
}

void FuseAdapter::lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    if (int e = confine_lookup(req, parent, name)) return (void)fuse_reply_err(req, e);
    reply_entry(req, parent, name);
}

void FuseAdapter::getattr(fuse_req_t req, fuse_ino_t ino) {
    if (int e = confine_getattr(req, ino)) return (void)fuse_reply_err(req, e);
    reply_attr(req, ino);
}

void FuseAdapter::reply_attr(fuse_req_t req, fuse_ino_t ino) {
    auto node = inodes_.node(ino);
    if (!node) return (void)fuse_reply_err(req, ENOENT);
    struct stat st;
    int err = 0;
    if (!fill_attr(ino, *node, st, err)) return (void)fuse_reply_err(req, err);
    fuse_reply_attr(req, &st, kTimeout);
}

void FuseAdapter::setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
                          fuse_file_info* fi) {
    if (int e = confine(req, {ino})) return (void)fuse_reply_err(req, e);
    auto node = inodes_.node(ino);
    if (!node) return (void)fuse_reply_err(req, ENOENT);
    if (to_set & FUSE_SET_ATTR_SIZE) {
        if (node->is_dir()) return (void)fuse_reply_err(req, EISDIR);
        auto* file = dynamic_cast<FileNode*>(node.get());
        if (!fi && !file) return (void)fuse_reply_err(req, EINVAL);
        auto size = static_cast<uint64_t>(attr->st_size);
        Status s = fi ? file_of(fi)->handle->truncate(size) : file->truncate(size);
        if (!s) return (void)fuse_reply_err(req, s.error().code);
    }
    if (to_set & FUSE_SET_ATTR_MODE) {
        // Scratch files keep their mode (editors copy it); real files change
        // theirs; protocol files accept it and keep their fixed modes.
        if (auto* sf = dynamic_cast<ScratchFile*>(node.get())) {
            sf->chmod(attr->st_mode);
        } else if (auto s = node->set_mode(attr->st_mode & 07777); !s) {
            return (void)fuse_reply_err(req, s.error().code);
        }
    }
    // Times last, so that `cp -p` and `touch -r` win over the mtime a
    // truncate above has just set.
    if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
        timespec times[2];
        times[0] = !(to_set & FUSE_SET_ATTR_ATIME)      ? timespec{0, UTIME_OMIT}
                   : (to_set & FUSE_SET_ATTR_ATIME_NOW) ? timespec{0, UTIME_NOW}
                                                        : attr->st_atim;
        times[1] = !(to_set & FUSE_SET_ATTR_MTIME)      ? timespec{0, UTIME_OMIT}
                   : (to_set & FUSE_SET_ATTR_MTIME_NOW) ? timespec{0, UTIME_NOW}
                                                        : attr->st_mtim;
        if (auto s = node->set_times(times); !s) return (void)fuse_reply_err(req, s.error().code);
    }
    // uid/gid: accepted and ignored; the swarm decides those.
    reply_attr(req, ino);
}

void FuseAdapter::opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    if (int e = confine(req, {ino})) return (void)fuse_reply_err(req, e);
    auto dir = inodes_.dir(ino);
    if (!dir) return (void)fuse_reply_err(req, inodes_.node(ino) ? ENOTDIR : ENOENT);
    // A listing is a snapshot taken at opendir, like the snapshot files.
    auto h = std::make_unique<DirHandle>();
    struct stat st {};
    st.st_mode = S_IFDIR;
    st.st_ino = ino;
    h->entries.push_back({".", st});
    h->entries.push_back({"..", st});
    for (auto& name : dir->list()) {
        struct stat e {};
        e.st_ino = inodes_.reserve(ino, name);
        e.st_mode = S_IFREG;
        if (auto child = dir->lookup(name)) e.st_mode = child->type();
        h->entries.push_back({name, e});
    }
    fi->fh = reinterpret_cast<uint64_t>(h.get());
    {
        // Owned here, so listings still open when the session ends (the
        // kernel never sent releasedir) go with the adapter.
        std::lock_guard dl(dirs_mu_);
        dirs_[fi->fh] = std::shared_ptr<DirHandle>(std::move(h));
    }
    fuse_reply_open(req, fi);
}

void FuseAdapter::readdir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
    auto* h = reinterpret_cast<DirHandle*>(fi->fh);
    std::vector<char> buf(size);
    size_t used = 0;
    for (size_t i = static_cast<size_t>(off); i < h->entries.size(); ++i) {
        auto& [name, st] = h->entries[i];
        size_t n = fuse_add_direntry(req, buf.data() + used, size - used, name.c_str(), &st,
                                     static_cast<off_t>(i + 1));
        if (n > size - used) break;
        used += n;
    }
    fuse_reply_buf(req, buf.data(), used);
}

void FuseAdapter::releasedir(fuse_req_t req, fuse_file_info* fi) {
    std::lock_guard dl(dirs_mu_);
    dirs_.erase(fi->fh);
    fuse_reply_err(req, 0);
}

void FuseAdapter::open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    if (int e = confine(req, {ino})) return (void)fuse_reply_err(req, e);
    auto node = inodes_.node(ino);
    if (!node) return (void)fuse_reply_err(req, ENOENT);
    if (node->is_dir()) return (void)fuse_reply_err(req, EISDIR);
    auto* file = dynamic_cast<FileNode*>(node.get());
    if (!file) return (void)fuse_reply_err(req, node->type() == S_IFLNK ? ELOOP : EACCES);
    auto h = file->open(fi->flags);
    if (!h) return (void)fuse_reply_err(req, h.error().code);
    auto of = std::make_shared<OpenFile>();
    of->handle = std::move(*h);
    fi->direct_io = of->handle->direct_io();
    fi->nonseekable = of->handle->nonseekable();
    std::weak_ptr<OpenFile> weak = of;
    of->handle->set_waker([this, weak] {
        if (auto p = weak.lock()) wake(p);
    });
    fi->fh = reinterpret_cast<uint64_t>(of.get());
    {
        std::lock_guard lk(open_mu_);
        open_.insert(of);
    }
    if (fuse_reply_open(req, fi) == -ENOENT) {
        // The opener was interrupted and is gone: no release will follow.
        std::lock_guard lk(open_mu_);
        open_.erase(of);
    }
}

void FuseAdapter::create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                         fuse_file_info* fi) {
    if (int e = confine(req, {parent})) return (void)fuse_reply_err(req, e);
    auto dir = inodes_.dir(parent);
    if (!dir) return (void)fuse_reply_err(req, ENOENT);
    auto created = dir->create_open(name, mode, fi->flags);
    if (!created) return (void)fuse_reply_err(req, created.error().code);
    fuse_entry_param e{};
    e.ino = inodes_.reserve(parent, name);
    int err = 0;
    if (!fill_attr(e.ino, *created->file, e.attr, err)) return (void)fuse_reply_err(req, err);
    e.attr_timeout = kTimeout;
    e.entry_timeout = kTimeout;
    auto of = std::make_shared<OpenFile>();
    of->handle = std::move(created->handle);
    fi->direct_io = of->handle->direct_io();
    fi->fh = reinterpret_cast<uint64_t>(of.get());
    {
        std::lock_guard lk(open_mu_);
        open_.insert(of);
    }
    if (fuse_reply_create(req, &e, fi) == -ENOENT) {
        std::lock_guard lk(open_mu_);
        open_.erase(of);
    }
}

void FuseAdapter::answer(fuse_req_t req, const ReadResult& r) {
    if (r.err)
        fuse_reply_err(req, r.err);
    else
        fuse_reply_buf(req, r.data.data(), r.data.size());
}

void FuseAdapter::read(fuse_req_t req, size_t size, off_t off, fuse_file_info* fi) {
    auto of = file_of(fi)->shared_from_this();
    auto r = of->handle->read(size, static_cast<uint64_t>(off));
    if (!r.wait) {
        {
            std::lock_guard lk(of->mu);
            of->pos = static_cast<uint64_t>(off) + r.data.size();
        }
        return answer(req, r);
    }
    if (fi->flags & O_NONBLOCK) return (void)fuse_reply_err(req, EAGAIN);
    // Park: the request is answered later by wake() or interrupted(); this
    // worker thread goes back to serving other requests.
    uint64_t id = next_park_++;
    {
        std::lock_guard lk(parked_mu_);
        parked_[id] = ParkEntry{of};
    }
    // Before the request is published: once wake() can see it, another
    // thread may answer it, and libfuse frees an answered request. (May call
    // interrupt_cb at once if the reader was already interrupted.)
    fuse_req_interrupt_func(req, interrupt_cb, reinterpret_cast<void*>(id));
    {
        std::unique_lock lk(parked_mu_);
        auto it = parked_.find(id);
        if (it->second.interrupted) {
            parked_.erase(it);
            lk.unlock();
            return (void)fuse_reply_err(req, EINTR);
        }
        it->second.published = true;
        std::lock_guard fl(of->mu);
        of->parked.push_back(Parked{id, req, size, off});
    }
    // Data may have arrived between the read above and parking.
    wake(of);
}

void FuseAdapter::wake(const std::shared_ptr<OpenFile>& of) {
    std::vector<std::pair<Parked, ReadResult>> done;
    fuse_pollhandle* ph = nullptr;
    {
        std::lock_guard lk(of->mu);
        for (auto it = of->parked.begin(); it != of->parked.end();) {
            auto r = of->handle->read(it->size, static_cast<uint64_t>(it->off));
            if (r.wait) {
                ++it;
                continue;
            }
            of->pos = static_cast<uint64_t>(it->off) + r.data.size();
            done.emplace_back(*it, std::move(r));
            it = of->parked.erase(it);
        }
        ph = std::exchange(of->ph, nullptr);
    }
    if (!done.empty()) {
        std::lock_guard lk(parked_mu_);
        for (auto& [p, r] : done) parked_.erase(p.id);
    }
    for (auto& [p, r] : done) answer(p.req, r);
    if (ph) {
        fuse_lowlevel_notify_poll(ph);
        fuse_pollhandle_destroy(ph);
    }
}

void FuseAdapter::interrupted(uint64_t id) {
    std::shared_ptr<OpenFile> of;
    {
        std::lock_guard lk(parked_mu_);
        auto it = parked_.find(id);
        if (it == parked_.end()) return;  // already answered
        if (!it->second.published) {
            it->second.interrupted = true;  // read() answers it
            return;
        }
        of = it->second.file.lock();
        parked_.erase(it);
    }
    if (!of) return;
    fuse_req_t req = nullptr;
    {
        std::lock_guard lk(of->mu);
        for (auto it = of->parked.begin(); it != of->parked.end(); ++it) {
            if (it->id == id) {
                req = it->req;
                of->parked.erase(it);
                break;
            }
        }
    }
    if (req) fuse_reply_err(req, EINTR);
}

void FuseAdapter::abort_parked() {
    std::vector<std::shared_ptr<OpenFile>> files;
    {
        std::lock_guard lk(open_mu_);
        files.assign(open_.begin(), open_.end());
    }
    for (auto& of : files) {
        std::vector<Parked> parked;
        {
            std::lock_guard lk(of->mu);
            parked.swap(of->parked);
        }
        {
            std::lock_guard lk(parked_mu_);
            for (auto& p : parked) parked_.erase(p.id);
        }
        for (auto& p : parked) fuse_reply_err(p.req, EINTR);
    }
}

void FuseAdapter::write(fuse_req_t req, const char* buf, size_t size, off_t off,
                        fuse_file_info* fi) {
    auto r = file_of(fi)->handle->write(std::string_view(buf, size), static_cast<uint64_t>(off));
    if (!r) return (void)fuse_reply_err(req, r.error().code);
    fuse_reply_write(req, *r);
}

void FuseAdapter::flush(fuse_req_t req, fuse_file_info* fi) {
    auto s = file_of(fi)->handle->flush();
    fuse_reply_err(req, s ? 0 : s.error().code);
}

void FuseAdapter::fsync(fuse_req_t req, int datasync, fuse_file_info* fi) {
    auto s = file_of(fi)->handle->fsync(datasync != 0);
    fuse_reply_err(req, s ? 0 : s.error().code);
}

void FuseAdapter::release(fuse_req_t req, fuse_file_info* fi) {
    auto of = file_of(fi)->shared_from_this();
    of->handle->release();
    {
        std::lock_guard lk(of->mu);
        if (of->ph) fuse_pollhandle_destroy(of->ph);
        of->ph = nullptr;
    }
    {
        std::lock_guard lk(open_mu_);
        open_.erase(of);
    }
    fuse_reply_err(req, 0);
}

void FuseAdapter::poll(fuse_req_t req, fuse_file_info* fi, fuse_pollhandle* ph) {
    auto of = file_of(fi)->shared_from_this();
    unsigned revents;
    {
        std::lock_guard lk(of->mu);
        if (ph) {
            if (of->ph) fuse_pollhandle_destroy(of->ph);
            of->ph = ph;
        }
        revents = of->handle->poll(of->pos);
    }
    fuse_reply_poll(req, revents);
}

void FuseAdapter::mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
    if (int e = confine(req, {parent})) return (void)fuse_reply_err(req, e);
    auto dir = inodes_.dir(parent);
    if (!dir) return (void)fuse_reply_err(req, ENOENT);
    if (auto s = dir->make_dir(name, mode); !s) return (void)fuse_reply_err(req, s.error().code);
    reply_entry(req, parent, name);
}

void FuseAdapter::rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
    if (int e = confine(req, {parent})) return (void)fuse_reply_err(req, e);
    auto dir = inodes_.dir(parent);
    if (!dir) return (void)fuse_reply_err(req, ENOENT);
    auto s = dir->rmdir(name);
    if (s && dir->renames_move_files()) inodes_.removed(parent, name);
    fuse_reply_err(req, s ? 0 : s.error().code);
}

void FuseAdapter::unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
    if (int e = confine(req, {parent})) return (void)fuse_reply_err(req, e);
    auto dir = inodes_.dir(parent);
    if (!dir) return (void)fuse_reply_err(req, ENOENT);
    auto s = dir->unlink(name);
    if (s && dir->renames_move_files()) inodes_.removed(parent, name);
    fuse_reply_err(req, s ? 0 : s.error().code);
}

void FuseAdapter::rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
                         const char* newname, unsigned flags) {
    if (int e = confine(req, {parent, newparent})) return (void)fuse_reply_err(req, e);
    auto dir = inodes_.dir(parent);
    if (!dir) return (void)fuse_reply_err(req, ENOENT);
    Status s;
    if (parent == newparent) {
        s = dir->rename(name, newname, flags);
    } else {
        auto to = inodes_.dir(newparent);
        if (!to) return (void)fuse_reply_err(req, ENOENT);
        s = dir->rename_into(name, *to, newname, flags);
    }
    if (s && dir->renames_move_files())
        inodes_.moved(parent, name, newparent, newname, flags & RENAME_EXCHANGE);
    fuse_reply_err(req, s ? 0 : s.error().code);
}

void FuseAdapter::readlink(fuse_req_t req, fuse_ino_t ino) {
    if (int e = confine(req, {ino})) return (void)fuse_reply_err(req, e);
    auto node = inodes_.node(ino);
    if (!node) return (void)fuse_reply_err(req, ENOENT);
    auto target = node->readlink();
    if (!target) return (void)fuse_reply_err(req, target.error().code);
    fuse_reply_readlink(req, target->c_str());
}

void FuseAdapter::symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
    if (int e = confine(req, {parent})) return (void)fuse_reply_err(req, e);
    auto dir = inodes_.dir(parent);
    if (!dir) return (void)fuse_reply_err(req, ENOENT);
    if (auto s = dir->symlink(name, target); !s) return (void)fuse_reply_err(req, s.error().code);
    reply_entry(req, parent, name);
}

void FuseAdapter::link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
    if (int e = confine(req, {ino, newparent})) return (void)fuse_reply_err(req, e);
    auto node = inodes_.node(ino);
    auto dir = inodes_.dir(newparent);
    if (!node || !dir) return (void)fuse_reply_err(req, ENOENT);
    if (auto s = dir->link(newname, *node); !s) return (void)fuse_reply_err(req, s.error().code);
    reply_entry(req, newparent, newname);
}

// ------------------------------------------------------------ C callbacks

namespace {
void op_init(void*, fuse_conn_info* conn) {
    // O_TRUNC arrives with open, so `echo x > config` is one open..close.
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    // Real files are page-cached: the kernel drops a file's pages when a
    // getattr shows its size or mtime changed (a write made on disk), and
    // writes go straight through to us (no writeback cache), so what is on
    // disk is what was acknowledged.
    if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA) conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
    conn->want &= ~static_cast<unsigned>(FUSE_CAP_WRITEBACK_CACHE);
}
// No exception may cross into libfuse's C code: one that escapes a request
// is logged and answered with EIO, and the mount goes on.
template <class F>
void guard(fuse_req_t r, F&& f) noexcept {
    try {
        f();
    } catch (const std::exception& e) {
        spdlog::error("internal error in a file system request: {}", e.what());
        fuse_reply_err(r, EIO);
    } catch (...) {
        spdlog::error("internal error in a file system request");
        fuse_reply_err(r, EIO);
    }
}
void op_lookup(fuse_req_t r, fuse_ino_t p, const char* n) {
    guard(r, [&] { self(r)->lookup(r, p, n); });
}
void op_statfs(fuse_req_t r, fuse_ino_t) {
    guard(r, [&] { self(r)->statfs(r); });
}
void op_getattr(fuse_req_t r, fuse_ino_t i, fuse_file_info*) {
    guard(r, [&] { self(r)->getattr(r, i); });
}
void op_setattr(fuse_req_t r, fuse_ino_t i, struct stat* a, int s, fuse_file_info* fi) {
    guard(r, [&] { self(r)->setattr(r, i, a, s, fi); });
}
void op_opendir(fuse_req_t r, fuse_ino_t i, fuse_file_info* fi) {
    guard(r, [&] { self(r)->opendir(r, i, fi); });
}
void op_readdir(fuse_req_t r, fuse_ino_t i, size_t s, off_t o, fuse_file_info* fi) {
    guard(r, [&] { self(r)->readdir(r, i, s, o, fi); });
}
void op_releasedir(fuse_req_t r, fuse_ino_t, fuse_file_info* fi) {
    guard(r, [&] { self(r)->releasedir(r, fi); });
}
void op_open(fuse_req_t r, fuse_ino_t i, fuse_file_info* fi) {
    guard(r, [&] { self(r)->open(r, i, fi); });
}
void op_create(fuse_req_t r, fuse_ino_t p, const char* n, mode_t m, fuse_file_info* fi) {
    guard(r, [&] { self(r)->create(r, p, n, m, fi); });
}
void op_read(fuse_req_t r, fuse_ino_t, size_t s, off_t o, fuse_file_info* fi) {
    guard(r, [&] { self(r)->read(r, s, o, fi); });
}
void op_write(fuse_req_t r, fuse_ino_t, const char* b, size_t s, off_t o, fuse_file_info* fi) {
    guard(r, [&] { self(r)->write(r, b, s, o, fi); });
}
void op_flush(fuse_req_t r, fuse_ino_t, fuse_file_info* fi) {
    guard(r, [&] { self(r)->flush(r, fi); });
}
void op_fsync(fuse_req_t r, fuse_ino_t, int datasync, fuse_file_info* fi) {
    guard(r, [&] { self(r)->fsync(r, datasync, fi); });
}
void op_release(fuse_req_t r, fuse_ino_t, fuse_file_info* fi) {
    guard(r, [&] { self(r)->release(r, fi); });
}
void op_poll(fuse_req_t r, fuse_ino_t, fuse_file_info* fi, fuse_pollhandle* ph) {
    guard(r, [&] { self(r)->poll(r, fi, ph); });
}
void op_mkdir(fuse_req_t r, fuse_ino_t p, const char* n, mode_t m) {
    guard(r, [&] { self(r)->mkdir(r, p, n, m); });
}
void op_rmdir(fuse_req_t r, fuse_ino_t p, const char* n) {
    guard(r, [&] { self(r)->rmdir(r, p, n); });
}
void op_unlink(fuse_req_t r, fuse_ino_t p, const char* n) {
    guard(r, [&] { self(r)->unlink(r, p, n); });
}
void op_rename(fuse_req_t r, fuse_ino_t p, const char* n, fuse_ino_t np, const char* nn,
               unsigned f) {
    guard(r, [&] { self(r)->rename(r, p, n, np, nn, f); });
}
void op_readlink(fuse_req_t r, fuse_ino_t i) {
    guard(r, [&] { self(r)->readlink(r, i); });
}
void op_symlink(fuse_req_t r, const char* target, fuse_ino_t p, const char* n) {
    guard(r, [&] { self(r)->symlink(r, target, p, n); });
}
void op_link(fuse_req_t r, fuse_ino_t i, fuse_ino_t np, const char* nn) {
    guard(r, [&] { self(r)->link(r, i, np, nn); });
}
void op_forget(fuse_req_t r, fuse_ino_t, uint64_t) { fuse_reply_none(r); }
void op_forget_multi(fuse_req_t r, size_t, fuse_forget_data*) { fuse_reply_none(r); }
}  // namespace

void FuseAdapter::statfs(fuse_req_t req) {
    struct statvfs st {};
    // Any agent may ask: sizes of the disk say nothing a view hides.
    if (statfs_path_.empty() || statvfs(statfs_path_.c_str(), &st) != 0) {
        st = {};
        st.f_bsize = st.f_frsize = 4096;
    }
    st.f_namemax = 255;
    fuse_reply_statfs(req, &st);
}

const fuse_lowlevel_ops& FuseAdapter::ops() {
    static const fuse_lowlevel_ops ops = [] {
        fuse_lowlevel_ops o{};
        o.init = op_init;
        o.lookup = op_lookup;
        o.forget = op_forget;
        o.forget_multi = op_forget_multi;
        o.getattr = op_getattr;
        o.setattr = op_setattr;
        o.opendir = op_opendir;
        o.readdir = op_readdir;
        o.releasedir = op_releasedir;
        o.open = op_open;
        o.create = op_create;
        o.read = op_read;
        o.write = op_write;
        o.flush = op_flush;
        o.fsync = op_fsync;
        o.release = op_release;
        o.poll = op_poll;
        o.mkdir = op_mkdir;
        o.rmdir = op_rmdir;
        o.unlink = op_unlink;
        o.rename = op_rename;
        o.readlink = op_readlink;
        o.symlink = op_symlink;
        o.link = op_link;
        o.statfs = op_statfs;
        return o;
    }();
    return ops;
}

}  // namespace swarmfs::fs
