// The passthrough folder driven directly (no FUSE): ordinary file semantics
// over a real directory, safe resolution (no symlink, no "..", no "/" ever
// leads out), and the policy a view puts on it.
#include "fs/passthrough_dir.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <fstream>
#include <mutex>
#include <sstream>

#include "agents/capabilities.h"
#include "tests/unit/test_util.h"

namespace swarmfs::fs {
namespace {

using test::TempDir;

std::string disk_read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void disk_write(const std::string& path, const std::string& data) {
    std::ofstream(path, std::ios::binary) << data;
}

bool disk_exists(const std::string& path) {
    struct stat st {};
    return lstat(path.c_str(), &st) == 0;
}

// Everything a handle reads from offset 0 on.
std::string read_all(Handle& h) {
    std::string out;
    while (true) {
        auto r = h.read(65536, out.size());
        EXPECT_EQ(r.err, 0);
        if (r.err || r.data.empty()) return out;
        out += r.data;
    }
}

class Passthrough : public ::testing::Test {
  protected:
    void SetUp() override {
        store = tmp.file("store");
        ASSERT_EQ(mkdir(store.c_str(), 0755), 0);
    }
    std::string disk(const std::string& rel) const { return store + "/" + rel; }

    std::shared_ptr<PassthroughDir> open_root(PassthroughPolicy policy = {}) {
        auto r = PassthroughDir::open(store, std::move(policy));
        EXPECT_TRUE(r) << r.error().message;
        return r ? *r : nullptr;
    }
    // Walks "a/b" down from root by lookups.
    static std::shared_ptr<Node> walk(const std::shared_ptr<DirNode>& root,
                                      const std::string& rel) {
        std::shared_ptr<Node> cur = root;
        std::stringstream ss(rel);
        std::string part;
        while (std::getline(ss, part, '/')) {
            auto* d = dynamic_cast<DirNode*>(cur.get());
            if (!d) return nullptr;
            cur = d->lookup(part);
            if (!cur) return nullptr;
        }
        return cur;
    }
    static std::shared_ptr<DirNode> dir(const std::shared_ptr<DirNode>& root,
                                        const std::string& rel) {
        return std::dynamic_pointer_cast<DirNode>(walk(root, rel));
    }
    static std::shared_ptr<FileNode> file(const std::shared_ptr<DirNode>& root,
                                          const std::string& rel) {
        return std::dynamic_pointer_cast<FileNode>(walk(root, rel));
    }

    TempDir tmp;
    std::string store;
};

// ------------------------------------------------------------ ordinary files

TEST_F(Passthrough, ListsStatsReadsAndWritesRealFiles) {
    disk_write(disk("a.txt"), "hello\n");
    ASSERT_EQ(chmod(disk("a.txt").c_str(), 0640), 0);
    ASSERT_EQ(mkdir(disk("sub").c_str(), 0750), 0);
    auto root = open_root();
    ASSERT_TRUE(root);
    EXPECT_EQ(root->list(), (std::vector<std::string>{"a.txt", "sub"}));

    auto a = file(root, "a.txt");
    ASSERT_TRUE(a);
    auto attr = a->attr();
    ASSERT_TRUE(attr);
    EXPECT_EQ(attr->mode, S_IFREG | 0640);
    EXPECT_EQ(attr->size, 6u);
    auto sub = dir(root, "sub");
    ASSERT_TRUE(sub);
    EXPECT_EQ(sub->attr()->mode, S_IFDIR | 0750);

    auto h = a->open(O_RDWR);
    ASSERT_TRUE(h) << h.error().message;
    EXPECT_EQ(read_all(**h), "hello\n");
    EXPECT_FALSE((*h)->direct_io()) << "real files go through the page cache";
    ASSERT_TRUE((*h)->write("HE", 0));
    ASSERT_TRUE((*h)->fsync(false));
    EXPECT_EQ(disk_read(disk("a.txt")), "HEllo\n");

    auto c = sub->create_open("new.md", 0600, O_WRONLY | O_CREAT);
    ASSERT_TRUE(c) << c.error().message;
    ASSERT_TRUE(c->handle->write("# new\n", 0));
    EXPECT_EQ(disk_read(disk("sub/new.md")), "# new\n");
    struct stat st {};
    ASSERT_EQ(stat(disk("sub/new.md").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u) << "the caller's mode, not the server's umask";

    ASSERT_TRUE(root->make_dir("made", 0700));
    ASSERT_EQ(stat(disk("made").c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0700u);
    ASSERT_TRUE(root->rmdir("made"));
    EXPECT_FALSE(disk_exists(disk("made")));
    ASSERT_TRUE(sub->unlink("new.md"));
    EXPECT_FALSE(disk_exists(disk("sub/new.md")));
    EXPECT_EQ(root->rmdir("a.txt").error().code, ENOTDIR);
    EXPECT_EQ(root->unlink("nothing").error().code, ENOENT);
}

TEST_F(Passthrough, OpenFlagsAppendTruncateAndExclusiveCreate) {
    disk_write(disk("log"), "one\n");
    auto root = open_root();
    auto log = file(root, "log");
    ASSERT_TRUE(log);
    {
        auto h = log->open(O_WRONLY | O_APPEND);
        ASSERT_TRUE(h);
        // The kernel passes its idea of the end; the real file appends anyway.
        ASSERT_TRUE((*h)->write("two\n", 0));
    }
    EXPECT_EQ(disk_read(disk("log")), "one\ntwo\n");
    {
        auto h = log->open(O_WRONLY | O_TRUNC);
        ASSERT_TRUE(h);
    }
    EXPECT_EQ(disk_read(disk("log")), "");
    disk_write(disk("log"), "abcdef");
    ASSERT_TRUE(log->truncate(3));
    EXPECT_EQ(disk_read(disk("log")), "abc");

    auto excl = root->create_open("log", 0644, O_WRONLY | O_CREAT | O_EXCL);
    ASSERT_FALSE(excl);
    EXPECT_EQ(excl.error().code, EEXIST);
    EXPECT_EQ(disk_read(disk("log")), "abc");
    auto again = root->create_open("log", 0644, O_WRONLY | O_CREAT | O_TRUNC);
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(disk_read(disk("log")), "");
}

TEST_F(Passthrough, RenamesWithinAndAcrossFolders) {
    ASSERT_EQ(mkdir(disk("x").c_str(), 0755), 0);
    ASSERT_EQ(mkdir(disk("y").c_str(), 0755), 0);
    disk_write(disk("x/a"), "A");
    disk_write(disk("x/b"), "B");
    disk_write(disk("y/c"), "C");
    auto root = open_root();
    auto x = dir(root, "x"), y = dir(root, "y");
    ASSERT_TRUE(x && y);

    ASSERT_TRUE(x->rename("a", "a2", 0));
    EXPECT_EQ(disk_read(disk("x/a2")), "A");
    ASSERT_TRUE(x->rename_into("a2", *y, "a", 0));
    EXPECT_EQ(disk_read(disk("y/a")), "A");
    EXPECT_FALSE(disk_exists(disk("x/a2")));

    auto noreplace = x->rename_into("b", *y, "c", RENAME_NOREPLACE);
    ASSERT_FALSE(noreplace);
    EXPECT_EQ(noreplace.error().code, EEXIST);
    ASSERT_TRUE(x->rename_into("b", *y, "c", RENAME_EXCHANGE));
    EXPECT_EQ(disk_read(disk("y/c")), "B");
    EXPECT_EQ(disk_read(disk("x/b")), "C");
    EXPECT_EQ(x->rename("b", "z", RENAME_WHITEOUT).error().code, EINVAL);

    // A whole folder moves, into another folder of the same store.
    ASSERT_TRUE(root->rename_into("x", *y, "x", 0));
    EXPECT_EQ(disk_read(disk("y/x/b")), "C");

    // Between two stores (even over one folder) a rename is EXDEV: mv copies.
    auto other = open_root();
    EXPECT_EQ(dir(root, "y")->rename_into("a", *other, "a", 0).error().code, EXDEV);
}

TEST_F(Passthrough, ModesAndTimesAreReal) {
    disk_write(disk("f"), "x");
    auto root = open_root();
    auto f = file(root, "f");
    ASSERT_TRUE(f->set_mode(0604));
    struct stat st {};
    ASSERT_EQ(stat(disk("f").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0604u);
    timespec times[2] = {{1000000000, 5}, {1234567890, 123456789}};
    ASSERT_TRUE(f->set_times(times));
    ASSERT_EQ(stat(disk("f").c_str(), &st), 0);
    EXPECT_EQ(st.st_mtim.tv_sec, 1234567890);
    EXPECT_EQ(st.st_mtim.tv_nsec, 123456789);
    auto a = f->attr();
    ASSERT_TRUE(a && a->times);
    EXPECT_EQ(a->times->mtime.tv_nsec, 123456789) << "exact to the nanosecond";
}

// ------------------------------------------------------------ safe resolution

TEST_F(Passthrough, PlantedSymlinksAreNeverFollowed) {
    ASSERT_EQ(symlink("/etc/passwd", disk("pw").c_str()), 0);
    ASSERT_EQ(symlink("..", disk("up").c_str()), 0);
    ASSERT_EQ(symlink("/etc", disk("etc").c_str()), 0);
    const std::string passwd_before = disk_read("/etc/passwd");
    auto root = open_root();

    // Shown, as links, so `ls` explains the name and `rm` removes it.
    EXPECT_EQ(root->list(), (std::vector<std::string>{"etc", "pw", "up"}));
    auto pw = root->lookup("pw");
    ASSERT_TRUE(pw);
    EXPECT_EQ(pw->type(), static_cast<mode_t>(S_IFLNK));
    EXPECT_FALSE(std::dynamic_pointer_cast<FileNode>(pw)) << "a link is not an openable file";
    EXPECT_EQ(pw->readlink().error().code, ELOOP);
    EXPECT_FALSE(std::dynamic_pointer_cast<DirNode>(root->lookup("up")));
    EXPECT_FALSE(std::dynamic_pointer_cast<DirNode>(root->lookup("etc")));
    EXPECT_FALSE(walk(root, "etc/passwd"));

    // Creating over a link's name opens nothing through it.
    auto over = root->create_open("pw", 0644, O_WRONLY | O_CREAT | O_TRUNC);
    ASSERT_FALSE(over);
    EXPECT_EQ(over.error().code, ELOOP);
    EXPECT_EQ(disk_read("/etc/passwd"), passwd_before);
    EXPECT_EQ(pw->set_mode(0777).error().code, ELOOP);

    // A folder swapped for a link after it was looked up: nothing below it
    // resolves, nothing is made through it.
    ASSERT_EQ(mkdir(disk("d").c_str(), 0755), 0);
    auto d = dir(root, "d");
    ASSERT_TRUE(d);
    ASSERT_EQ(rmdir(disk("d").c_str()), 0);
    ASSERT_EQ(symlink(tmp.path.c_str(), disk("d").c_str()), 0);
    disk_write(tmp.file("outside"), "secret");
    EXPECT_FALSE(d->lookup("outside"));
    EXPECT_TRUE(d->list().empty());
    EXPECT_FALSE(d->create_open("planted", 0644, O_WRONLY | O_CREAT));
    EXPECT_FALSE(d->make_dir("planted", 0755));
    EXPECT_FALSE(d->unlink("outside"));
    EXPECT_FALSE(disk_exists(tmp.file("planted")));
    EXPECT_TRUE(disk_exists(tmp.file("outside")));

    // The link itself can be removed.
    ASSERT_TRUE(root->unlink("pw"));
    EXPECT_FALSE(disk_exists(disk("pw")));
    EXPECT_EQ(disk_read("/etc/passwd"), passwd_before);
}

TEST_F(Passthrough, DotDotDotAndSlashNamesAreRefused) {
    ASSERT_EQ(mkdir(disk("sub").c_str(), 0755), 0);
    disk_write(tmp.file("outside"), "secret");
    auto root = open_root();
    auto sub = dir(root, "sub");
    for (const char* bad : {"..", ".", "a/b", "../outside", ""}) {
        SCOPED_TRACE(bad);
        EXPECT_FALSE(root->lookup(bad));
        EXPECT_FALSE(sub->lookup(bad));
        EXPECT_EQ(root->make_dir(bad, 0755).error().code, EINVAL);
        EXPECT_EQ(root->create_open(bad, 0644, O_WRONLY | O_CREAT).error().code, EINVAL);
        EXPECT_EQ(sub->unlink(bad).error().code, EINVAL);
        EXPECT_EQ(sub->rmdir(bad).error().code, EINVAL);
        EXPECT_EQ(sub->rename(bad, "x", 0).error().code, EINVAL);
        EXPECT_EQ(sub->rename_into("x", *root, bad, 0).error().code, EINVAL);
    }
    EXPECT_TRUE(disk_exists(tmp.file("outside")));
    EXPECT_TRUE(disk_exists(disk("sub")));
    EXPECT_EQ(root->make_dir(std::string(NAME_MAX + 1, 'x'), 0755).error().code, ENAMETOOLONG);
}

TEST_F(Passthrough, LinksAndSymlinksCannotBeMade) {
    disk_write(disk("f"), "x");
    auto root = open_root();
    auto f = root->lookup("f");
    auto s = root->symlink("ln", "/etc/passwd");
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, EPERM);
    EXPECT_NE(s.error().message.find("symbolic links"), std::string::npos) << s.error().message;
    auto l = root->link("hard", *f);
    ASSERT_FALSE(l);
    EXPECT_EQ(l.error().code, EPERM);
    EXPECT_NE(l.error().message.find("two modes"), std::string::npos) << l.error().message;
    EXPECT_FALSE(disk_exists(disk("ln")));
    EXPECT_FALSE(disk_exists(disk("hard")));
}

TEST_F(Passthrough, SpecialFilesShowButDoNotOpen) {
    ASSERT_EQ(mkfifo(disk("fifo").c_str(), 0666), 0);
    auto root = open_root();
    EXPECT_EQ(root->list(), std::vector<std::string>{"fifo"});
    auto f = file(root, "fifo");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->attr()->mode, static_cast<mode_t>(S_IFREG)) << "no permission bits";
    // Returns at once (a fifo opened for reading would block a server thread).
    auto h = f->open(O_RDONLY);
    ASSERT_FALSE(h);
    EXPECT_EQ(h.error().code, EPERM);
    ASSERT_TRUE(root->unlink("fifo"));
}

// ------------------------------------------------------------ the policy

// A view built the way views/NAME/vault is: an UnveilMap over store paths.
class PolicyTest : public Passthrough {
  protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(Passthrough::SetUp());
        for (const char* d : {"pub", "pub/dir", "ro", "secret", "deep", "deep/inner", "deep/other",
                              "mixed", "mixed/locked"})
            ASSERT_EQ(mkdir(disk(d).c_str(), 0755), 0);
        disk_write(disk("pub/a"), "A");
        disk_write(disk("pub/dir/in"), "in");
        disk_write(disk("ro/b"), "B");
        disk_write(disk("secret/s"), "S");
        disk_write(disk("top.txt"), "T");
        disk_write(disk("deep/inner/x"), "X");
        disk_write(disk("deep/other/y"), "Y");
        disk_write(disk("mixed/locked/k"), "K");
        auto m = UnveilMap::parse(R"({"/pub": "rw", "/ro": "r", "/deep/inner": "rw",
                                      "/ghost": "r", "/mixed": "rw", "/mixed/locked": "r"})");
        ASSERT_TRUE(m) << m.error().message;
        map = *m;
        PassthroughPolicy policy;
        policy.mode = [this](const std::string& p) { return map.mode_for(p); };
        policy.visible_children = [this](const std::string& d) { return map.visible_children(d); };
        policy.refused = [this](Error e) {
            std::lock_guard lk(mu);
            refusals.push_back(e);
            return e;
        };
        root = open_root(std::move(policy));
        ASSERT_TRUE(root);
    }
    std::vector<Error> take_refusals() {
        std::lock_guard lk(mu);
        return std::exchange(refusals, {});
    }
    // Expects exactly one refusal since the last call, with this errno.
    void expect_refused(int code) {
        auto r = take_refusals();
        ASSERT_EQ(r.size(), 1u);
        EXPECT_EQ(r[0].code, code) << r[0].message;
    }

    UnveilMap map;
    std::mutex mu;
    std::vector<Error> refusals;
    std::shared_ptr<PassthroughDir> root;
};

TEST_F(PolicyTest, NonePathsDoNotExistAndAreNotListed) {
    // ghost is unveiled but not on disk: not listed either.
    EXPECT_EQ(root->list(), (std::vector<std::string>{"deep", "mixed", "pub", "ro"}));
    EXPECT_TRUE(take_refusals().empty()) << "listing refuses nothing";
    EXPECT_FALSE(root->lookup("secret"));
    expect_refused(ENOENT);
    EXPECT_FALSE(root->lookup("top.txt"));
    expect_refused(ENOENT);
    // Refused before the disk is asked: a hidden name that does not exist
    // gives the same answer, so refusals do not tell what exists.
    EXPECT_FALSE(root->lookup("nothing-here"));
    expect_refused(ENOENT);
    EXPECT_FALSE(root->lookup("ghost"));
    EXPECT_TRUE(take_refusals().empty()) << "ghost is unveiled, just absent";

    // deep leads to deep/inner only: a read-only listing of that.
    auto deep = dir(root, "deep");
    ASSERT_TRUE(deep);
    EXPECT_EQ(deep->list(), std::vector<std::string>{"inner"});
    EXPECT_EQ(deep->attr()->mode & 0222, 0u);
    EXPECT_FALSE(deep->lookup("other"));
    expect_refused(ENOENT);
    auto x = file(root, "deep/inner/x");
    ASSERT_TRUE(x);
    EXPECT_EQ(read_all(**x->open(O_RDONLY)), "X");
    EXPECT_EQ(root->attr()->mode & 0222, 0u) << "the view's top is a passage";
}

TEST_F(PolicyTest, ReadOnlyPathsRefuseEveryWrite) {
    auto ro = dir(root, "ro");
    auto b = file(root, "ro/b");
    ASSERT_TRUE(ro && b);
    EXPECT_EQ(b->attr()->mode & 0222, 0u) << "no write bits where there is no writing";
    EXPECT_EQ(read_all(**b->open(O_RDONLY)), "B");
    EXPECT_TRUE(take_refusals().empty());

    EXPECT_EQ(b->open(O_WRONLY).error().code, EACCES);
    expect_refused(EACCES);
    EXPECT_EQ(b->open(O_RDONLY | O_TRUNC).error().code, EACCES);
    expect_refused(EACCES);
    EXPECT_EQ(b->truncate(0).error().code, EACCES);
    expect_refused(EACCES);
    EXPECT_EQ(b->set_mode(0666).error().code, EACCES);
    expect_refused(EACCES);
    EXPECT_EQ(ro->create_open("new", 0644, O_WRONLY | O_CREAT).error().code, EACCES);
    expect_refused(EACCES);
    EXPECT_EQ(ro->make_dir("new", 0755).error().code, EACCES);
    expect_refused(EACCES);
    EXPECT_EQ(ro->unlink("b").error().code, EACCES);
    expect_refused(EACCES);
    EXPECT_EQ(root->rmdir("ro").error().code, EACCES);
    expect_refused(EACCES);
    EXPECT_EQ(disk_read(disk("ro/b")), "B");
    EXPECT_FALSE(disk_exists(disk("ro/new")));

    // A passage is read-only too, and new names in it are not unveiled.
    auto deep = dir(root, "deep");
    EXPECT_EQ(deep->create_open("new", 0644, O_WRONLY | O_CREAT).error().code, ENOENT);
    expect_refused(ENOENT);
    EXPECT_EQ(root->rmdir("deep").error().code, EACCES);
    expect_refused(EACCES);

    // rw is rw.
    auto pub = dir(root, "pub");
    ASSERT_TRUE(pub->create_open("new", 0644, O_WRONLY | O_CREAT));
    EXPECT_TRUE(disk_exists(disk("pub/new")));
    EXPECT_TRUE(take_refusals().empty());
}

TEST_F(PolicyTest, RenameOutOfRwIntoRIsRefused) {
    auto pub = dir(root, "pub"), ro = dir(root, "ro");
    auto s = pub->rename_into("a", *ro, "a", 0);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, EACCES);
    expect_refused(EACCES);
    EXPECT_EQ(disk_read(disk("pub/a")), "A") << "the file is unchanged";
    EXPECT_FALSE(disk_exists(disk("ro/a")));
    // Nor the other way, nor over a hidden name.
    EXPECT_EQ(ro->rename_into("b", *pub, "b", 0).error().code, EACCES);
    expect_refused(EACCES);
    EXPECT_EQ(pub->rename_into("a", *root, "secret", RENAME_EXCHANGE).error().code, ENOENT);
    expect_refused(ENOENT);
    EXPECT_EQ(disk_read(disk("secret/s")), "S");
    // Within rw it works, across folders too.
    auto deep_inner = dir(root, "deep/inner");
    ASSERT_TRUE(pub->rename_into("a", *deep_inner, "a", 0));
    EXPECT_EQ(disk_read(disk("deep/inner/a")), "A");
    ASSERT_TRUE(pub->rename_into("dir", *deep_inner, "dir", 0))
        << "a folder whose content is all rw moves";
    EXPECT_EQ(disk_read(disk("deep/inner/dir/in")), "in");
    EXPECT_TRUE(take_refusals().empty());
}

TEST_F(PolicyTest, MovingAFolderChecksEverythingBelowIt) {
    // mixed is rw but mixed/locked is r: renaming mixed would carry locked
    // away (and make it writable under the new name).
    EXPECT_EQ(root->rename("mixed", "pub2", 0).error().code, ENOENT) << "pub2 is not unveiled";
    expect_refused(ENOENT);
    auto pub = dir(root, "pub");
    auto s = root->rename_into("mixed", *pub, "mixed", 0);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, EACCES);
    expect_refused(EACCES);
    EXPECT_EQ(disk_read(disk("mixed/locked/k")), "K");
    EXPECT_FALSE(disk_exists(disk("pub/mixed")));
}

TEST_F(PolicyTest, LinkAndSymlinkRefusalsAreRecorded) {
    auto pub = dir(root, "pub");
    auto a = pub->lookup("a");
    EXPECT_EQ(pub->symlink("ln", "../secret/s").error().code, EPERM);
    expect_refused(EPERM);
    EXPECT_EQ(pub->link("hard", *a).error().code, EPERM);
    expect_refused(EPERM);
}

TEST_F(Passthrough, NarrowingThePolicyReachesOpenFiles) {
    disk_write(disk("f"), "before");
    std::atomic<Mode> mode{Mode::rw};
    PassthroughPolicy policy;
    policy.mode = [&](const std::string&) { return mode.load(); };
    auto root = open_root(std::move(policy));
    auto h = file(root, "f")->open(O_RDWR);
    ASSERT_TRUE(h);
    ASSERT_TRUE((*h)->write("B", 0));
    mode = Mode::r;  // a pledge: the path is read-only from now on
    auto w = (*h)->write("X", 0);
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().code, EACCES);
    EXPECT_EQ((*h)->truncate(0).error().code, EACCES);
    EXPECT_EQ(read_all(**h), "Before");
    mode = Mode::none;  // dropped altogether
    EXPECT_EQ((*h)->read(10, 0).err, ENOENT);
    EXPECT_EQ(disk_read(disk("f")), "Before");
}

TEST_F(PolicyTest, RefusedDecidesTheAnswer) {
    // The hook may rewrite what the caller gets (e.g. add the agent's name).
    PassthroughPolicy policy;
    policy.mode = [](const std::string& p) { return p == "/" ? Mode::r : Mode::none; };
    policy.refused = [](Error e) { return make_error(e.code, "agent x: " + e.message); };
    auto r = open_root(std::move(policy));
    auto s = r->make_dir("pub", 0755);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().message.rfind("agent x: ", 0), 0u) << s.error().message;
    EXPECT_TRUE(r->list().empty()) << "r on the top, nothing below: an empty view";
}

}  // namespace
}  // namespace swarmfs::fs
