#pragma once
// A real folder on disk served through the mount with ordinary file
// semantics: MNT/vault (the owner's, unrestricted) and views/NAME/vault (an
// agent's, restricted by a PassthroughPolicy).
//
// Safe resolution. Every path is resolved beneath one directory fd of the
// store's top folder, opened once, with openat2(2) RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV; operations
// on a child (mkdirat, unlinkat, renameat2, O_CREAT) act on one validated
// name relative to its parent's fd, never on a path. Names ".", ".." and
// names containing "/" are refused (EINVAL). So no spelling and no planted
// symlink reaches outside the folder, and the policy always judges the path
// that is actually touched.
//
// Symbolic links planted on disk are shown but unusable: listed, stat says
// S_IFLNK, but readlink and anything that would follow one fails with ELOOP
// ("Too many levels of symbolic links"). Shown rather than hidden so that
// `ls` explains why a name is taken and `rm` can remove it. symlink(2) and
// link(2) into the store are refused (EPERM): a symlink could point out of an
// agent's subtree, and a hard link would give one file two paths, so two
// modes. Other special files (fifos, sockets, devices) show as regular files
// with no permission bits and cannot be opened: a server thread must never
// block opening a fifo, nor the kernel open a device for the caller.
//
// Real files go through the page cache (Handle::direct_io() is false), with
// the real sizes: mmap and exec work, and since attributes are never cached
// (timeout 0) and the adapter asks the kernel to drop pages whose size or
// mtime changed (FUSE_CAP_AUTO_INVAL_DATA) and every open drops them (no
// keep_cache), a change made on disk shows at the next open, stat or
// `tail -f` poll.
#include <sys/stat.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agents/capabilities.h"
#include "fs/node.h"

namespace swarmfs::fs {

// What one viewer of the store may do; an empty policy allows everything.
// Paths are relative to the store's top folder: "/" for it, "/kb/a.md".
// The functions are called from many FUSE threads at once.
struct PassthroughPolicy {
    // Mode of a path. null: rw everywhere.
    std::function<Mode(const std::string& path)> mode;
    // For a directory whose own mode is none but which leads to visible
    // paths: the child names to show (it is then a read-only directory
    // listing only those of them that exist).
    std::function<std::vector<std::string>(const std::string& dir)> visible_children;
    // Called with every refusal (EACCES for a write to an r path, ENOENT for
    // a none path, EPERM for link/symlink) before it is returned: it records
    // it (err line, log) and returns the error to give the caller.
    std::function<Error(Error)> refused;
};

// The open top folder and the policy, shared by every node of one tree.
struct PassthroughStore;

class PassthroughDir : public DirNode {
  public:
    // Opens `root` (O_PATH|O_DIRECTORY) once for the life of the tree: if the
    // folder is later replaced on disk, this tree keeps serving the old one.
    // `label` prefixes paths in error messages ("vault/kb/a.md: ...").
    static Result<std::shared_ptr<PassthroughDir>> open(const std::string& root,
                                                        PassthroughPolicy policy = {},
                                                        std::string label = "vault");

    PassthroughDir(std::shared_ptr<const PassthroughStore> store, std::string path);

    const std::string& path() const { return path_; }

    Result<Attr> attr() const override;
    std::vector<std::string> list() const override;
    std::shared_ptr<Node> lookup(const std::string& name) override;
    Status mkdir(const std::string& name) override { return make_dir(name, 0777); }
    Status make_dir(const std::string& name, mode_t mode) override;
    Status rmdir(const std::string& name) override;
    Result<std::shared_ptr<FileNode>> create(const std::string& name, mode_t mode) override;
    Result<Created> create_open(const std::string& name, mode_t mode, int flags) override;
    Status unlink(const std::string& name) override;
    // Both accept RENAME_NOREPLACE or RENAME_EXCHANGE (EINVAL for other
    // flags) and need rw on every path they move, below a moved folder too.
    Status rename(const std::string& from, const std::string& to, unsigned flags) override;
    Status rename_into(const std::string& from, DirNode& to, const std::string& to_name,
                       unsigned flags) override;
    bool renames_move_files() const override { return true; }
    Status symlink(const std::string& name, const std::string& target) override;
    Status link(const std::string& name, Node& target) override;
    Status set_mode(mode_t mode) override;
    Status set_times(const timespec times[2]) override;

  private:
    Status remove(const std::string& name, int flags);

    std::shared_ptr<const PassthroughStore> store_;
    std::string path_;  // "/" or "/a/b": lexical, built from validated names
};

}  // namespace swarmfs::fs
