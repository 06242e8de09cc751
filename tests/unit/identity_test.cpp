// Who may use the mount: the inode table's notion of which views/NAME an
// inode lies in, and the adapter's check, exercised through a real FUSE mount
// of a small tree served in-process (with allow_other, as the swarm's mount
// will be) by children that setresuid() to agent uids.
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "fs/fuse_adapter.h"
#include "fs/inode_table.h"
#include "fs/passthrough_dir.h"
#include "tests/unit/test_util.h"

namespace swarmfs::fs {
namespace {

using test::TempDir;

void disk_write(const std::string& path, const std::string& data) {
    std::ofstream(path, std::ios::binary) << data;
}

// A store laid out like the swarm's namespace: views/a, views/b, and files
// outside every view.
void make_tree(const std::string& store) {
    for (const char* d : {"", "/views", "/views/a", "/views/a/sub", "/views/b", "/agents"})
        ASSERT_EQ(mkdir((store + d).c_str(), 0755), 0) << d;
    disk_write(store + "/views/a/f", "a's file\n");
    disk_write(store + "/views/a/sub/g", "deeper\n");
    disk_write(store + "/views/b/f", "b's file\n");
    disk_write(store + "/agents/ctl", "owner only\n");
}

// ------------------------------------------------------------ InodeTable

TEST(InodeTableViews, InodesBelongToTheViewTheyLieIn) {
    TempDir tmp;
    const std::string store = tmp.file("store");
    ASSERT_NO_FATAL_FAILURE(make_tree(store));
    auto root = PassthroughDir::open(store);
    ASSERT_TRUE(root);
    InodeTable t(*root);
    EXPECT_EQ(t.views(), 0u);
    EXPECT_EQ(t.view_of(FUSE_ROOT_ID), std::nullopt);

    fuse_ino_t agents = t.reserve(FUSE_ROOT_ID, "agents");
    fuse_ino_t views = t.reserve(FUSE_ROOT_ID, "views");
    EXPECT_EQ(t.views(), views);
    fuse_ino_t a = t.reserve(views, "a"), b = t.reserve(views, "b");
    fuse_ino_t af = t.reserve(a, "f"), asub = t.reserve(a, "sub");
    fuse_ino_t asubg = t.reserve(asub, "g");
    EXPECT_EQ(t.view_of(views), std::nullopt) << "views itself is nobody's";
    EXPECT_EQ(t.view_of(agents), std::nullopt);
    EXPECT_EQ(t.view_of(t.reserve(agents, "ctl")), std::nullopt);
    EXPECT_EQ(t.view_of(a), "a") << "views/NAME is inside its own view";
    EXPECT_EQ(t.view_of(af), "a");
    EXPECT_EQ(t.view_of(asubg), "a");
    EXPECT_EQ(t.view_of(b), "b");
    EXPECT_EQ(t.view_of(12345), std::nullopt) << "an unknown number is in no view";

    // A rename moves the number (and what lies below it) with the file.
    ASSERT_EQ(rename((store + "/views/a/sub").c_str(), (store + "/views/b/sub").c_str()), 0);
    t.moved(a, "sub", b, "sub", false);
    EXPECT_EQ(t.reserve(b, "sub"), asub);
    EXPECT_EQ(t.view_of(asubg), "b");
    ASSERT_TRUE(t.node(asubg)) << "still resolves, under its new path";
    EXPECT_NE(t.reserve(a, "sub"), asub) << "the old name is a new inode";

    // Replaced and removed numbers resolve to nothing; the name gets a new one.
    fuse_ino_t bf = t.reserve(b, "f");
    t.moved(a, "f", b, "f", false);
    EXPECT_EQ(t.reserve(b, "f"), af);
    EXPECT_FALSE(t.node(bf));
    t.removed(b, "f");
    EXPECT_FALSE(t.node(af));
    EXPECT_NE(t.reserve(b, "f"), af);

    // An exchange swaps them.
    fuse_ino_t x = t.reserve(a, "x"), y = t.reserve(b, "y");
    t.moved(a, "x", b, "y", true);
    EXPECT_EQ(t.reserve(b, "y"), x);
    EXPECT_EQ(t.reserve(a, "x"), y);
}

// ------------------------------------------------------------ through a mount

// A FUSE session serving `root` on `mnt` from threads of this process.
class InProcessMount {
  public:
    InProcessMount(FuseAdapter& adapter, const std::string& mnt) : mnt_(mnt) {
        std::vector<std::string> args = {"identity_test", "-o",
                                         "allow_other,fsname=swarmfs-test,subtype=swarmfs"};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        fuse_args fargs = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
        se_ = fuse_session_new(&fargs, &FuseAdapter::ops(), sizeof(fuse_lowlevel_ops), &adapter);
        fuse_opt_free_args(&fargs);
        if (!se_) return;
        if (fuse_session_mount(se_, mnt.c_str()) != 0) {
            fuse_session_destroy(se_);
            se_ = nullptr;
            return;
        }
        loop_ = std::thread([this] {
            fuse_loop_config cfg{};
            cfg.clone_fd = 0;
            cfg.max_idle_threads = 4;
            fuse_session_loop_mt(se_, &cfg);
        });
    }
    ~InProcessMount() {
        if (!se_) return;
        // Unmounting ends the connection (nothing uses it any more: every
        // child has been reaped), which ends the loop's blocked reads with
        // ENODEV. The kernel's unmount first, then the loop's end, then
        // libfuse's unmount: that one closes /dev/fuse, which must not
        // happen while a loop thread still reads it.
        fuse_session_exit(se_);
        umount2(mnt_.c_str(), MNT_DETACH);
        loop_.join();
        fuse_session_unmount(se_);
        fuse_session_destroy(se_);
    }
    bool ok() const { return se_ != nullptr; }

  private:
    std::string mnt_;
    fuse_session* se_ = nullptr;
    std::thread loop_;
};

constexpr uid_t kAgentA = 900001, kAgentB = 900002, kStranger = 900003;

// Runs `fn` in a child that has become `uid` (and gid); returns what fn
// returned (0 or an errno), or -1 if the child could not report.
int as_uid(uid_t uid, const std::function<int()>& fn) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        int r = 1000;
        if (setgroups(0, nullptr) == 0 && setresgid(uid, uid, uid) == 0 &&
            setresuid(uid, uid, uid) == 0)
            r = fn();
        if (write(p[1], &r, sizeof r) != sizeof r) _exit(1);
        _exit(0);
    }
    close(p[1]);
    int r = -1;
    if (pid < 0 || read(p[0], &r, sizeof r) != sizeof r) r = -1;
    close(p[0]);
    if (pid > 0) waitpid(pid, nullptr, 0);
    return r;
}

int stat_errno(const std::string& path) {
    struct stat st {};
    return stat(path.c_str(), &st) == 0 ? 0 : errno;
}
int open_errno(const std::string& path, int flags) {
    int fd = open(path.c_str(), flags | O_CLOEXEC, 0644);
    if (fd < 0) return errno;
    close(fd);
    return 0;
}
int read_errno(const std::string& path, const std::string& expect) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf);
    int e = n < 0 ? errno : 0;
    close(fd);
    if (e) return e;
    return std::string(buf, static_cast<size_t>(n)) == expect ? 0 : EILSEQ;
}
int list_errno(const std::string& path) {
    DIR* d = opendir(path.c_str());
    if (!d) return errno;
    closedir(d);
    return 0;
}

class Identity : public ::testing::Test {
  protected:
    void SetUp() override {
        if (access("/dev/fuse", R_OK | W_OK) != 0 || geteuid() != 0)
            GTEST_SKIP() << "needs root and /dev/fuse";
        // The agents' uids must reach the mount point.
        ASSERT_EQ(chmod(tmp.path.c_str(), 0755), 0);
        store = tmp.file("store");
        mnt = tmp.file("mnt");
        ASSERT_NO_FATAL_FAILURE(make_tree(store));
        ASSERT_EQ(mkdir(mnt.c_str(), 0755), 0);
        auto root = PassthroughDir::open(store);
        ASSERT_TRUE(root);
        adapter = std::make_unique<FuseAdapter>(*root, [](uid_t uid) -> std::optional<std::string> {
            if (uid == kAgentA) return "a";
            if (uid == kAgentB) return "b";
            return std::nullopt;
        });
        mount = std::make_unique<InProcessMount>(*adapter, mnt);
        ASSERT_TRUE(mount->ok()) << "could not mount " << mnt;
    }
    void TearDown() override {
        if (!bind.empty()) umount2(bind.c_str(), MNT_DETACH);
        mount.reset();
        adapter.reset();
    }
    std::string m(const std::string& rel) const { return mnt + "/" + rel; }

    TempDir tmp;
    std::string store, mnt, bind;
    std::unique_ptr<FuseAdapter> adapter;
    std::unique_ptr<InProcessMount> mount;
};

TEST_F(Identity, AnAgentWorksInsideItsView) {
    const std::string f = m("views/a/f"), g = m("views/a/sub/g"), made = m("views/a/new");
    const std::string moved = m("views/a/sub/moved");
    EXPECT_EQ(as_uid(kAgentA, [&] { return stat_errno(f); }), 0);
    EXPECT_EQ(as_uid(kAgentA, [&] { return read_errno(f, "a's file\n"); }), 0);
    EXPECT_EQ(as_uid(kAgentA, [&] { return read_errno(g, "deeper\n"); }), 0);
    EXPECT_EQ(as_uid(kAgentA, [&] { return list_errno(m("views/a")); }), 0);
    EXPECT_EQ(as_uid(kAgentA, [&] { return open_errno(made, O_WRONLY | O_CREAT); }), 0);
    EXPECT_EQ(as_uid(kAgentA, [&] { return rename(made.c_str(), moved.c_str()) ? errno : 0; }), 0);
    EXPECT_EQ(access((store + "/views/a/sub/moved").c_str(), F_OK), 0);
    // On the way down: the mount point, views and views/a can be stat'ed.
    EXPECT_EQ(as_uid(kAgentA, [&] { return stat_errno(mnt); }), 0);
    EXPECT_EQ(as_uid(kAgentA, [&] { return stat_errno(m("views")); }), 0);
}

TEST_F(Identity, AnAgentIsRefusedEverythingOutsideItsView) {
    for (const char* rel : {"views/b/f", "views/b", "agents/ctl", "agents"}) {
        SCOPED_TRACE(rel);
        EXPECT_EQ(as_uid(kAgentA, [&] { return stat_errno(m(rel)); }), EACCES);
    }
    EXPECT_EQ(as_uid(kAgentA, [&] { return open_errno(m("agents/ctl"), O_RDONLY); }), EACCES);
    EXPECT_EQ(as_uid(kAgentA, [&] { return list_errno(mnt); }), EACCES) << "no listing of the root";
    EXPECT_EQ(as_uid(kAgentA, [&] { return list_errno(m("views")); }), EACCES)
        << "no listing of the other views";
    EXPECT_EQ(as_uid(kAgentA, [&] { return mkdir(m("x").c_str(), 0755) ? errno : 0; }), EACCES);
    const std::string from = m("views/a/f"), to = m("views/b/stolen");
    EXPECT_EQ(as_uid(kAgentA, [&] { return rename(from.c_str(), to.c_str()) ? errno : 0; }),
              EACCES);
    EXPECT_EQ(access((store + "/views/a/f").c_str(), F_OK), 0);
    EXPECT_NE(access((store + "/views/b/stolen").c_str(), F_OK), 0);
    // And b sees its own view, not a's.
    EXPECT_EQ(as_uid(kAgentB, [&] { return read_errno(m("views/b/f"), "b's file\n"); }), 0);
    EXPECT_EQ(as_uid(kAgentB, [&] { return stat_errno(m("views/a/f")); }), EACCES);
}

TEST_F(Identity, WhateverPathAnAgentUsesItStaysConfined) {
    // The sandbox binds views/a somewhere: through that window b still gets
    // nothing, and a gets its own files.
    bind = tmp.file("window");
    ASSERT_EQ(mkdir(bind.c_str(), 0755), 0);
    ASSERT_EQ(::mount(m("views/a").c_str(), bind.c_str(), nullptr, MS_BIND, nullptr), 0)
        << strerror(errno);
    EXPECT_EQ(as_uid(kAgentA, [&] { return read_errno(bind + "/f", "a's file\n"); }), 0);
    EXPECT_EQ(as_uid(kAgentB, [&] { return stat_errno(bind + "/f"); }), EACCES);
    EXPECT_EQ(as_uid(kAgentB, [&] { return list_errno(bind); }), EACCES);
}

TEST_F(Identity, OtherUidsAreRefusedAndTheOwnerIsNot) {
    EXPECT_EQ(as_uid(kStranger, [&] { return stat_errno(m("views/a/f")); }), EACCES);
    EXPECT_EQ(as_uid(kStranger, [&] { return stat_errno(mnt); }), EACCES);
    EXPECT_EQ(as_uid(kStranger, [&] { return list_errno(mnt); }), EACCES);
    // Root (this process, also the server's uid) may do anything.
    EXPECT_EQ(read_errno(m("agents/ctl"), "owner only\n"), 0);
    EXPECT_EQ(read_errno(m("views/b/f"), "b's file\n"), 0);
    EXPECT_EQ(list_errno(mnt), 0);
}

}  // namespace
}  // namespace swarmfs::fs
