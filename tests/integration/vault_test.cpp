// MNT/vault: a real folder (STATE/vault) served through the mount, used with
// ordinary tools. Every check compares what the mount shows with what is on
// disk, both ways.
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "tests/support/mount_fixture.h"

namespace swarmfs::it {
namespace {

class Vault : public MountedSwarm {
  protected:
    // Through the mount, and on disk.
    std::string v(const std::string& rel) const { return p("vault/" + rel); }
    std::string d(const std::string& rel) const { return state() + "/vault/" + rel; }
    // Runs a shell command in MNT/vault; ADD_FAILUREs unless it exits 0.
    std::string in_vault(const std::string& cmd, double timeout = 30) {
        auto r = sh("cd " + shq(p("vault")) + " && " + cmd, timeout);
        EXPECT_FALSE(r.timed_out) << cmd;
        EXPECT_EQ(r.status, 0) << cmd << "\n" << r.out << r.err;
        return r.out;
    }
    static off_t size_of(const std::string& path) {
        struct stat st {};
        return stat(path.c_str(), &st) == 0 ? st.st_size : -1;
    }
};

TEST_F(Vault, IsAFolderAtTheRoot) {
    auto names = list_dir(mnt());
    ASSERT_TRUE(names);
    EXPECT_NE(std::find(names->begin(), names->end(), "vault"), names->end());
    struct stat st {};
    ASSERT_EQ(stat(p("vault").c_str(), &st), 0) << strerror(errno);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    auto empty = list_dir(p("vault"));
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->empty());
}

// df on the mount says how much room the swarm's disk has.
TEST_F(Vault, DfReportsTheStateFoldersDisk) {
    struct statvfs m {
    }, d{};
    ASSERT_EQ(statvfs(mnt().c_str(), &m), 0) << strerror(errno);
    ASSERT_EQ(statvfs(state().c_str(), &d), 0) << strerror(errno);
    EXPECT_EQ(m.f_frsize, d.f_frsize);
    EXPECT_EQ(m.f_blocks, d.f_blocks);
    EXPECT_GT(m.f_blocks, 0u);
    EXPECT_EQ(m.f_namemax, 255u);
    auto r = sh("df -P " + shq(mnt()) + " | tail -1");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("swarmfs"), std::string::npos) << r.out;
}

TEST_F(Vault, EchoCatAndAppend) {
    in_vault("echo hello > a.txt && echo more >> a.txt");
    EXPECT_EQ(in_vault("cat a.txt"), "hello\nmore\n");
    EXPECT_EQ(slurp(d("a.txt")), "hello\nmore\n");
    EXPECT_EQ(size_of(v("a.txt")), 11);
    EXPECT_EQ(size_of(d("a.txt")), 11);
    // `>` truncates what was longer.
    in_vault("echo x > a.txt");
    EXPECT_EQ(slurp(d("a.txt")), "x\n");
    EXPECT_EQ(size_of(v("a.txt")), 2);
    // O_EXCL is honoured.
    errno = 0;
    EXPECT_EQ(write_file(v("a.txt"), "no", O_WRONLY | O_CREAT | O_EXCL), EEXIST);
    EXPECT_EQ(slurp(d("a.txt")), "x\n");
}

TEST_F(Vault, CopyTreesMakeAndRemoveFolders) {
    const std::string src = dir() + "/src";
    auto r =
        sh("mkdir -p " + shq(src + "/x") + " " + shq(src + "/y/z") + " && echo one > " +
           shq(src + "/x/1.txt") + " && head -c 100000 /dev/urandom > " + shq(src + "/y/z/2.bin"));
    ASSERT_EQ(r.status, 0) << r.err;
    in_vault("mkdir -p p/q/r && cp -r " + shq(src) + " p/q/r/");
    EXPECT_EQ(sh("diff -r " + shq(src) + " " + shq(v("p/q/r/src"))).status, 0) << "through mount";
    EXPECT_EQ(sh("diff -r " + shq(src) + " " + shq(d("p/q/r/src"))).status, 0) << "on disk";
    // cp -r out of the vault, too.
    auto out = sh("cp -r " + shq(v("p")) + " " + shq(dir() + "/out") + " && diff -r " + shq(src) +
                  " " + shq(dir() + "/out/q/r/src"));
    EXPECT_EQ(out.status, 0) << out.out << out.err;
    in_vault("rm -r p");
    EXPECT_FALSE(list_dir(d("p")));
    EXPECT_TRUE(list_dir(p("vault"))->empty());
}

TEST_F(Vault, MvAcrossFolders) {
    in_vault("mkdir in out && echo f > in/f && mkdir in/sub && echo g > in/sub/g");
    in_vault("mv in/f out/f");
    EXPECT_EQ(slurp(d("out/f")), "f\n");
    EXPECT_FALSE(read_file(d("in/f")));
    in_vault("mv in/sub out/");
    EXPECT_EQ(slurp(d("out/sub/g")), "g\n");
    EXPECT_EQ(slurp(v("out/sub/g")), "g\n");
    // An open file keeps working across a rename (it keeps its inode).
    int fd = open(v("out/f").c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0) << strerror(errno);
    in_vault("mv out/f in/renamed");
    struct stat st {};
    EXPECT_EQ(fstat(fd, &st), 0) << strerror(errno);
    EXPECT_EQ(st.st_size, 2);
    EXPECT_EQ(pwrite(fd, "F", 1, 0), 1);
    close(fd);
    EXPECT_EQ(slurp(d("in/renamed")), "F\n");
    // mv -n does not replace; RENAME_EXCHANGE swaps.
    in_vault("echo other > out/other && mv -n in/renamed out/other");
    EXPECT_EQ(slurp(d("out/other")), "other\n");
    ASSERT_EQ(renameat2(AT_FDCWD, v("in/renamed").c_str(), AT_FDCWD, v("out/other").c_str(),
                        RENAME_EXCHANGE),
              0)
        << strerror(errno);
    EXPECT_EQ(slurp(d("out/other")), "F\n");
    EXPECT_EQ(slurp(d("in/renamed")), "other\n");
    // Out of the vault is another file system: mv copies.
    in_vault("mv out/other " + shq(dir() + "/escaped"));
    EXPECT_EQ(slurp(dir() + "/escaped"), "F\n");
    EXPECT_FALSE(read_file(d("out/other")));
}

TEST_F(Vault, TruncateTouchChmodAndStat) {
    in_vault("echo abc > t && truncate -s 1000 t");
    EXPECT_EQ(size_of(v("t")), 1000);
    EXPECT_EQ(size_of(d("t")), 1000);
    in_vault("truncate -s 2 t");
    EXPECT_EQ(slurp(v("t")), "ab");
    EXPECT_EQ(slurp(d("t")), "ab");

    in_vault("touch new");
    EXPECT_EQ(size_of(d("new")), 0);
    in_vault("touch -d '2001-02-03 04:05:06 UTC' t");
    struct stat mst {
    }, dst{};
    ASSERT_EQ(stat(v("t").c_str(), &mst), 0);
    ASSERT_EQ(stat(d("t").c_str(), &dst), 0);
    EXPECT_EQ(mst.st_mtime, 981173106);
    EXPECT_EQ(dst.st_mtime, 981173106);
    const time_t before = time(nullptr);
    in_vault("touch t");
    ASSERT_EQ(stat(d("t").c_str(), &dst), 0);
    EXPECT_GE(dst.st_mtime, before);
    ASSERT_EQ(stat(v("t").c_str(), &mst), 0);
    EXPECT_EQ(mst.st_mtim.tv_sec, dst.st_mtim.tv_sec);
    EXPECT_EQ(mst.st_mtim.tv_nsec, dst.st_mtim.tv_nsec);

    in_vault("chmod 640 t && mkdir -m 700 priv");
    ASSERT_EQ(stat(d("t").c_str(), &dst), 0);
    EXPECT_EQ(dst.st_mode & 07777, 0640u);
    ASSERT_EQ(stat(v("t").c_str(), &mst), 0);
    EXPECT_EQ(mst.st_mode & 07777, 0640u);
    ASSERT_EQ(stat(d("priv").c_str(), &dst), 0);
    EXPECT_EQ(dst.st_mode & 07777, 0700u);
    // cp -p keeps times and mode.
    in_vault("cp -p t t2");
    ASSERT_EQ(stat(d("t2").c_str(), &dst), 0);
    EXPECT_EQ(dst.st_mode & 07777, 0640u);
    EXPECT_EQ(dst.st_mtim.tv_sec, mst.st_mtim.tv_sec);
}

TEST_F(Vault, ChangesMadeOnDiskShowInTheMount) {
    ASSERT_EQ(write_file(d("disk.txt"), "v1"), 0);
    auto names = list_dir(p("vault"));
    ASSERT_TRUE(names);
    EXPECT_EQ(*names, std::vector<std::string>{"disk.txt"});
    EXPECT_EQ(slurp(v("disk.txt")), "v1");
    ASSERT_EQ(write_file(d("disk.txt"), "version2"), 0);
    EXPECT_EQ(slurp(v("disk.txt")), "version2");
    EXPECT_EQ(size_of(v("disk.txt")), 8);
    // Same size, other bytes: no stale page may survive.
    ASSERT_EQ(write_file(d("disk.txt"), "VERSION3"), 0);
    EXPECT_EQ(slurp(v("disk.txt")), "VERSION3");
    ASSERT_EQ(write_file(d("disk.txt"), "v4"), 0);
    EXPECT_EQ(slurp(v("disk.txt")), "v4");
    ASSERT_EQ(unlink(d("disk.txt").c_str()), 0);
    struct stat st {};
    EXPECT_NE(stat(v("disk.txt").c_str(), &st), 0);
    EXPECT_EQ(errno, ENOENT);
}

TEST_F(Vault, TailFollowsAppends) {
    ASSERT_EQ(write_file(v("log"), "first\n"), 0);
    Proc tail("tail -n +1 -f " + shq(v("log")));
    ASSERT_TRUE(tail.wait_for("first\n", 10)) << tail.out();
    ASSERT_EQ(write_file(v("log"), "through the mount\n", O_WRONLY | O_APPEND), 0);
    EXPECT_TRUE(tail.wait_for("through the mount\n", 10)) << tail.out();
    ASSERT_EQ(write_file(d("log"), "on disk\n", O_WRONLY | O_APPEND), 0);
    EXPECT_TRUE(tail.wait_for("on disk\n", 10)) << tail.out();
    EXPECT_EQ(tail.out(), "first\nthrough the mount\non disk\n");
}

TEST_F(Vault, VimSavesAFile) {
    std::string vim;
    for (const char* name : {"vim", "vim.basic", "vim.tiny"})
        if (sh(std::string("command -v ") + name).status == 0) {
            vim = name;
            break;
        }
    if (vim.empty()) GTEST_SKIP() << "vim is not installed (Debian package vim or vim-tiny)";
    ASSERT_EQ(write_file(v("notes.txt"), "Be terse.\n"), 0);
    in_vault(vim + " -es -u NONE -i NONE -c '%s/terse/kind/' -c 'wq' notes.txt");
    EXPECT_EQ(slurp(d("notes.txt")), "Be kind.\n");
    // With a backup made by renaming (the file is replaced by a new one).
    in_vault(vim +
             " -es -u NONE -i NONE -c 'set nocompatible backup backupcopy=no backupskip=' "
             "-c '%s/kind/brief/' -c 'wq' notes.txt");
    EXPECT_EQ(slurp(d("notes.txt")), "Be brief.\n");
    EXPECT_EQ(slurp(d("notes.txt~")), "Be kind.\n");
    auto names = list_dir(p("vault"));
    ASSERT_TRUE(names);
    EXPECT_EQ(*names, (std::vector<std::string>{"notes.txt", "notes.txt~"})) << "no swap files";
}

TEST_F(Vault, LargeFileIsByteIdenticalBothWays) {
    const std::string big = dir() + "/big", big2 = dir() + "/big2";
    ASSERT_EQ(sh("head -c 8388608 /dev/urandom > " + shq(big)).status, 0);
    ASSERT_EQ(sh("head -c 8388608 /dev/urandom > " + shq(big2)).status, 0);
    in_vault("cp " + shq(big) + " big");
    EXPECT_EQ(sh("cmp " + shq(big) + " " + shq(d("big"))).status, 0) << "on disk";
    EXPECT_EQ(sh("cmp " + shq(big) + " " + shq(v("big"))).status, 0) << "read back";
    EXPECT_EQ(size_of(v("big")), 8388608);
    ASSERT_EQ(sh("cp " + shq(big2) + " " + shq(d("big2"))).status, 0);
    ASSERT_EQ(sh("cp " + shq(v("big2")) + " " + shq(dir() + "/back")).status, 0);
    EXPECT_EQ(sh("cmp " + shq(big2) + " " + shq(dir() + "/back")).status, 0) << "copied out";
}

TEST_F(Vault, FsyncReachesTheDiskAndSurvivesKill9) {
    int fd = open(v("durable").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << strerror(errno);
    const std::string data = "written, synced, closed\n";
    ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    EXPECT_EQ(fsync(fd), 0) << strerror(errno);
    EXPECT_EQ(fdatasync(fd), 0) << strerror(errno);
    EXPECT_EQ(close(fd), 0) << strerror(errno);
    kill9();
    EXPECT_EQ(slurp(d("durable")), data);
    ASSERT_NO_FATAL_FAILURE(restart());
    EXPECT_EQ(slurp(v("durable")), data);
}

TEST_F(Vault, PlantedSymlinksAreNotFollowed) {
    ASSERT_EQ(symlink("/etc/passwd", d("pw").c_str()), 0);
    ASSERT_EQ(symlink("..", d("up").c_str()), 0);
    ASSERT_EQ(symlink("/etc", d("etc").c_str()), 0);
    int err = 0;
    EXPECT_FALSE(read_file(v("pw"), &err)) << "read /etc/passwd through the vault";
    EXPECT_EQ(err, ELOOP);
    auto cat = sh("cat " + shq(v("pw")));
    EXPECT_NE(cat.status, 0);
    EXPECT_EQ(cat.out, "");
    struct stat st {};
    EXPECT_NE(stat(v("etc/passwd").c_str(), &st), 0);
    EXPECT_EQ(errno, ELOOP);
    EXPECT_FALSE(list_dir(v("up/")));
    EXPECT_FALSE(list_dir(v("etc/")));
    EXPECT_NE(write_file(v("pw"), "x"), 0);
    // Shown as links, so ls explains the names, and rm removes them.
    ASSERT_EQ(lstat(v("pw").c_str(), &st), 0);
    EXPECT_TRUE(S_ISLNK(st.st_mode));
    EXPECT_EQ(unlink(v("pw").c_str()), 0) << strerror(errno);
    EXPECT_NE(lstat(d("pw").c_str(), &st), 0);
    EXPECT_EQ(lstat("/etc/passwd", &st), 0) << "the target is untouched";
}

TEST_F(Vault, SymlinkAndLinkAreRefused) {
    ASSERT_EQ(write_file(v("f"), "x"), 0);
    EXPECT_NE(symlink("/etc/passwd", v("ln").c_str()), 0);
    EXPECT_EQ(errno, EPERM);
    EXPECT_NE(link(v("f").c_str(), v("hard").c_str()), 0);
    EXPECT_EQ(errno, EPERM);
    auto r = sh("ln -s f " + shq(v("ln2")));
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("not permitted"), std::string::npos) << r.err;
    auto names = list_dir(p("vault"));
    ASSERT_TRUE(names);
    EXPECT_EQ(*names, std::vector<std::string>{"f"});
}

}  // namespace
}  // namespace swarmfs::it
