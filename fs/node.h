#pragma once
// The file tree as the FUSE adapter sees it: directories and files with
// open handles. File kinds (fs/*_file.h) and the swarm's folders
// (fs/swarm_tree.h) implement these; nothing here touches libfuse, so a
// handle never blocks: a read that must wait says so and the adapter parks
// the request until the handle's waker fires.
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vault/result.h"

namespace swarmfs::fs {

struct Attr {
    mode_t mode = 0;  // type and permission bits
    uint64_t size = 0;
    double mtime = 0;
};

struct ReadResult {
    int err = 0;        // errno, or 0
    bool wait = false;  // at the end of a live stream: try again on wake
    std::string data;   // empty with err == 0 and !wait: EOF
    static ReadResult error(int e) { return {e, false, {}}; }
    static ReadResult waiting() { return {0, true, {}}; }
    static ReadResult bytes(std::string d) { return {0, false, std::move(d)}; }
};

class Handle {
  public:
    virtual ~Handle() = default;
    virtual ReadResult read(size_t size, uint64_t offset) {
        (void)size, (void)offset;
        return ReadResult::error(EBADF);
    }
    virtual Result<size_t> write(std::string_view data, uint64_t offset) {
        (void)data, (void)offset;
        return make_error(EBADF, "not open for writing");
    }
    // close(): where queued messages and edited documents are committed.
    virtual Status flush() { return {}; }
    virtual Status truncate(uint64_t size) {
        (void)size;
        return make_error(EACCES, "cannot truncate");
    }
    // The last close of the open file; errors have nowhere to go.
    virtual void release() {}
    // POLLIN/POLLOUT bits for a reader that has consumed up to `pos`.
    virtual unsigned poll(uint64_t pos);
    // Streams call wake() whenever a parked read might now complete.
    virtual void set_waker(std::function<void()> wake) { (void)wake; }
    virtual bool direct_io() const { return true; }
    virtual bool nonseekable() const { return false; }
};

class Node {
  public:
    virtual ~Node() = default;
    virtual Result<Attr> attr() const = 0;
    virtual bool is_dir() const { return false; }
};

class FileNode : public Node {
  public:
    virtual Result<std::unique_ptr<Handle>> open(int flags) = 0;
    // truncate(2) without an open file.
    virtual Status truncate(uint64_t size) {
        (void)size;
        return make_error(EACCES, "cannot truncate");
    }
    // Whole-content access, for renames between scratch and protocol files.
    virtual Result<std::string> contents() const { return make_error(EACCES, "not readable"); }
    virtual Status replace(std::string data) {
        (void)data;
        return make_error(EACCES, "not replaceable");
    }
};

class DirNode : public Node {
  public:
    bool is_dir() const override { return true; }
    Result<Attr> attr() const override;
    virtual double mtime() const;
    virtual std::vector<std::string> list() const = 0;
    virtual std::shared_ptr<Node> lookup(const std::string& name) = 0;  // nullptr: ENOENT
    virtual Status mkdir(const std::string& name);
    virtual Status rmdir(const std::string& name);
    virtual Result<std::shared_ptr<FileNode>> create(const std::string& name, mode_t mode);
    virtual Status unlink(const std::string& name);
    // Rename within this directory (the adapter refuses others with EXDEV).
    virtual Status rename(const std::string& from, const std::string& to, unsigned flags);
};

bool wants_write(int flags);
bool wants_read(int flags);

}  // namespace swarmfs::fs
