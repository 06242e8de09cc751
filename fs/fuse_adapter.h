#pragma once
// The libfuse low-level adapter: FUSE requests in, Node/Handle calls out.
// It owns the one FUSE-specific mechanism the file kinds need: parking a
// read that must wait, and answering it later (data, EOF, EINTR on
// interrupt), without holding a worker thread.
#include <fuse_lowlevel.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <unordered_map>

#include "fs/inode_table.h"
#include "fs/node.h"

namespace swarmfs::fs {

class FuseAdapter {
  public:
    explicit FuseAdapter(std::shared_ptr<DirNode> root);
    ~FuseAdapter();
    static const fuse_lowlevel_ops& ops();

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
    void release(fuse_req_t req, fuse_file_info* fi);
    void poll(fuse_req_t req, fuse_file_info* fi, fuse_pollhandle* ph);
    void mkdir(fuse_req_t req, fuse_ino_t parent, const char* name);
    void rmdir(fuse_req_t req, fuse_ino_t parent, const char* name);
    void unlink(fuse_req_t req, fuse_ino_t parent, const char* name);
    void rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
                const char* newname, unsigned flags);
    void interrupted(uint64_t id);

  private:
    bool fill_attr(fuse_ino_t ino, const Node& node, struct stat& st, int& err);
    void reply_entry(fuse_req_t req, fuse_ino_t parent, const std::string& name);
    void wake(const std::shared_ptr<OpenFile>& of);
    void answer(fuse_req_t req, const ReadResult& r);

    InodeTable inodes_;
    uid_t uid_;
    gid_t gid_;
    double mounted_;

    std::mutex parked_mu_;  // the registry; never held while an OpenFile's lock is taken first
    std::unordered_map<uint64_t, std::weak_ptr<OpenFile>> parked_;
    std::atomic<uint64_t> next_park_{1};

    std::mutex open_mu_;
    std::set<std::shared_ptr<OpenFile>> open_;  // so nothing leaks if the kernel never releases
};

}  // namespace swarmfs::fs
