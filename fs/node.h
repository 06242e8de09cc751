#pragma once
// The file tree as the FUSE adapter sees it: directories and files with
// open handles. File kinds (fs/*_file.h) and the swarm's folders
// (fs/swarm_tree.h) implement these; nothing here touches libfuse, so a
// handle never blocks: a read that must wait says so and the adapter parks
// the request until the handle's waker fires.
#include <sys/types.h>
#include <time.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vault/result.h"

namespace swarmfs::fs {

struct Attr {
    mode_t mode = 0;  // type and permission bits
    uint64_t size = 0;
    double mtime = 0;
    // A real file's times, to the nanosecond (cp -p, make and rsync compare
    // them); unset for synthetic files, where mtime stands for all three.
    struct Times {
        timespec atime, mtime, ctime;
    };
    std::optional<Times> times = std::nullopt;
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
    // fsync(2)/fdatasync(2). Synthetic files commit what flush() commits;
    // real files make their data durable.
    virtual Status fsync(bool datasync) {
        (void)datasync;
        return flush();
    }
    // The last close of the open file; errors have nowhere to go.
    virtual void release() {}
    // POLLIN/POLLOUT bits for a reader that has consumed up to `pos`.
    virtual unsigned poll(uint64_t pos);
    // Streams call wake() whenever a parked read might now complete.
    virtual void set_waker(std::function<void()> wake) { (void)wake; }
    // Synthetic files bypass the page cache: their size is not their
    // content's length (streams) and their content changes under the reader.
    // Real files use it, as on any disk file system (mmap, exec, readahead).
    virtual bool direct_io() const { return true; }
    virtual bool nonseekable() const { return false; }
};

class Node {
  public:
    virtual ~Node() = default;
    virtual Result<Attr> attr() const = 0;
    virtual bool is_dir() const { return false; }
    // The S_IFMT bits, for directory listings (without computing attr()).
    virtual mode_t type() const;
    // chmod(2). Protocol files keep their fixed modes but accept it: editors
    // chmod after saving and must not fail.
    virtual Status set_mode(mode_t mode) {
        (void)mode;
        return {};
    }
    // utimensat(2): times[0] is atime, times[1] mtime, each may be UTIME_NOW
    // or UTIME_OMIT. Accepted and ignored by default: the swarm keeps time.
    virtual Status set_times(const timespec times[2]) {
        (void)times;
        return {};
    }
    // readlink(2), for nodes whose type() is S_IFLNK.
    virtual Result<std::string> readlink() const {
        return make_error(EINVAL, "not a symbolic link");
    }
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
    // mkdir(2) with the caller's mode; synthetic folders have no mode to keep.
    virtual Status make_dir(const std::string& name, mode_t mode) {
        (void)mode;
        return mkdir(name);
    }
    virtual Status rmdir(const std::string& name);
    virtual Result<std::shared_ptr<FileNode>> create(const std::string& name, mode_t mode);
    // open(2) with O_CREAT: create and open in one step, so that O_EXCL holds
    // and the handle is on the very file created. The default is create()
    // then open().
    struct Created {
        std::shared_ptr<FileNode> file;
        std::unique_ptr<Handle> handle;
    };
    virtual Result<Created> create_open(const std::string& name, mode_t mode, int flags);
    virtual Status unlink(const std::string& name);
    // Rename within this directory.
    virtual Status rename(const std::string& from, const std::string& to, unsigned flags);
    // Rename from this directory into another one (`to` is never this one):
    // EXDEV unless both belong to one store, so mv falls back to copying.
    virtual Status rename_into(const std::string& from, DirNode& to, const std::string& to_name,
                               unsigned flags);
    // True where names are real directory entries: a rename moves the file
    // (and its inode number) and an unlink ends it. Synthetic folders say
    // no: renaming config to config~ leaves a config in place.
    virtual bool renames_move_files() const { return false; }
    // symlink(2) and link(2): refused (EPERM) unless a folder says otherwise.
    virtual Status symlink(const std::string& name, const std::string& target);
    virtual Status link(const std::string& name, Node& target);
};

bool wants_write(int flags);
bool wants_read(int flags);
// A conversation folder's name: a positive id in its one canonical
// spelling ("7", never "07" or "+7"), so one conversation has one path.
std::optional<int64_t> parse_conv_id(const std::string& name);

}  // namespace swarmfs::fs
