#pragma once
// The libfuse low-level adapter: FUSE requests in, Node/Handle calls out.
// It owns the one FUSE-specific mechanism the file kinds need: parking a
// read that must wait, and answering it later (data, EOF, EINTR on
// interrupt), without holding a worker thread.
//
// It also decides who may make requests at all. The mount is made with
// allow_other so that agents' uids reach it, which switches off the kernel's
// "only the mounter" check; this replaces it: the server's own uid and root
// may do anything, an agent's uid (see Identify) only within MNT/views/NAME,
// and every other uid gets EACCES.
#include <fuse_lowlevel.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

#include "fs/inode_table.h"
#include "fs/node.h"

namespace swarmfs::fs {

class FuseAdapter {
  public:
    // The agent NAME a uid runs for, or nullopt for anyone else. Called for
    // every request from a uid other than root and the server's, from many
    // threads at once.
    using Identify = std::function<std::optional<std::string>(uid_t uid)>;

    explicit FuseAdapter(std::shared_ptr<DirNode> root, Identify identify = nullptr);
    ~FuseAdapter();
    static const fuse_lowlevel_ops& ops();

    // Before the session loop starts (it is read without a lock).
    void set_identify(Identify identify) { identify_ = std::move(identify); }
    // Told of every request refused to an agent's uid (for its err and the
    // swarm's log); without it they go to the server's log only.
    using Refused = std::function<void(const std::string& agent, const std::string& what)>;
    void set_refused(Refused refused) { refused_ = std::move(refused); }
    // What statfs(2) (df) reports: the disk the swarm's state lives on.
    // Without it: zero blocks, 255-byte names.
    void set_statfs_path(std::string path) { statfs_path_ = std::move(path); }
    void statfs(fuse_req_t req);

    // Answers every parked read with EINTR; call once the session loop ends.
    void abort_parked();

    struct OpenFile;
    struct Parked {
        uint64_t id;
        fuse_req_t req;
        size_t size;
        off_t off;
    };

    // request handlers (public for the C callbacks in fuse_adapter.cpp)
    void lookup(fuse_req_t req, fuse_ino_t parent, const char* name);
    void getattr(fuse_req_t req, fuse_ino_t ino);
    void setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi);
    void opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
    void readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
    void releasedir(fuse_req_t req, fuse_file_info* fi);
    void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
    void create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                fuse_file_info* fi);
    void read(fuse_req_t req, size_t size, off_t off, fuse_file_info* fi);
    void write(fuse_req_t req, const char* buf, size_t size, off_t off, fuse_file_info* fi);
    void flush(fuse_req_t req, fuse_file_info* fi);
    void fsync(fuse_req_t req, int datasync, fuse_file_info* fi);
    void release(fuse_req_t req, fuse_file_info* fi);
    void poll(fuse_req_t req, fuse_file_info* fi, fuse_pollhandle* ph);
    void mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode);
    void rmdir(fuse_req_t req, fuse_ino_t parent, const char* name);
    void unlink(fuse_req_t req, fuse_ino_t parent, const char* name);
    void rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
                const char* newname, unsigned flags);
    void readlink(fuse_req_t req, fuse_ino_t ino);
    void symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name);
    void link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname);
    void interrupted(uint64_t id);

  private:
    // 0 if the caller may make a request on these inodes, else EACCES.
    int confine(fuse_req_t req, std::initializer_list<fuse_ino_t> inos);
    // The same for a lookup of parent/name and a getattr of ino, which an
    // agent may also make on the way down to its view: MNT, MNT/views and
    // MNT/views/NAME.
    int confine_lookup(fuse_req_t req, fuse_ino_t parent, const std::string& name);
    int confine_getattr(fuse_req_t req, fuse_ino_t ino);
    // For a uid that is neither root nor the server's: the agent's name, or
    // nullopt (then EACCES whatever the request).
    std::optional<std::string> agent_of(fuse_req_t req, bool& unrestricted);
    void reply_attr(fuse_req_t req, fuse_ino_t ino);
    bool fill_attr(fuse_ino_t ino, const Node& node, struct stat& st, int& err);
    void reply_entry(fuse_req_t req, fuse_ino_t parent, const std::string& name);
    void wake(const std::shared_ptr<OpenFile>& of);
    void answer(fuse_req_t req, const ReadResult& r);

    InodeTable inodes_;
    Identify identify_;
    Refused refused_;
    std::string statfs_path_;
    void refuse(const std::string& agent, const std::string& what);
    uid_t uid_;
    gid_t gid_;
    double mounted_;

    std::mutex parked_mu_;  // the registry; never held while an OpenFile's lock is taken first
    struct ParkEntry {
        std::weak_ptr<OpenFile> file;
        // The request is in file's parked list only once its interrupt
        // function is registered: until then nobody else may answer (and
        // free) it. An interrupt that comes first is noted here.
        bool published = false;
        bool interrupted = false;
    };
    std::unordered_map<uint64_t, ParkEntry> parked_;
    std::atomic<uint64_t> next_park_{1};

    std::mutex dirs_mu_;
    std::unordered_map<uint64_t, std::shared_ptr<void>> dirs_;  // open listings by fh
    std::mutex open_mu_;
    std::set<std::shared_ptr<OpenFile>> open_;  // so nothing leaks if the kernel never releases
};

}  // namespace swarmfs::fs
