// The shape of the tree: listings, stat, and whole-tree walks with find, ls -R,
// stat, grep -r and cp -r (which must all terminate).
#include <sys/stat.h>

#include <set>

#include "tests/support/mount_fixture.h"

namespace swarmfs::it {
namespace {

using Tree = MountedSwarm;

const std::vector<std::string> kAgentFiles = {"caps",  "config",       "ctl",    "err",
                                              "inbox", "instructions", "output", "status"};
const std::vector<std::string> kConvFiles = {"agent", "context", "ctl", "in", "out", "vars"};

TEST_F(Tree, LsRootShowsItsEntries) {
    auto r = sh("ls " + shq(mnt()));
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(lines(r.out),
              (std::vector<std::string>{"agents", "conv", "ctl", "events", "log", "metrics",
                                        "status", "tools", "vault", "views"}));
}

TEST_F(Tree, RootModesAndSizes) {
    struct stat sb {};
    for (const char* d : {"", "agents", "conv"}) {
        ASSERT_EQ(stat(p(d).c_str(), &sb), 0) << d << ": " << strerror(errno);
        EXPECT_TRUE(S_ISDIR(sb.st_mode)) << d;
        EXPECT_TRUE(sb.st_mode & S_IXUSR) << d << " not searchable";
    }
    ASSERT_EQ(stat(p("ctl").c_str(), &sb), 0);
    EXPECT_TRUE(S_ISREG(sb.st_mode));
    EXPECT_TRUE(sb.st_mode & S_IWUSR) << "ctl is not writable";
    EXPECT_TRUE(sb.st_mode & S_IRUSR) << "ctl is not readable";

    ASSERT_EQ(stat(p("status").c_str(), &sb), 0);
    EXPECT_TRUE(S_ISREG(sb.st_mode));
    EXPECT_TRUE(sb.st_mode & S_IRUSR);
    auto status = read_file(p("status"));
    ASSERT_TRUE(status);
    EXPECT_FALSE(status->empty());
    // Size and content are taken at different moments; uptime may grow by a
    // digit, so allow a small difference but not 0 or 4096.
    EXPECT_NEAR(static_cast<double>(sb.st_size), static_cast<double>(status->size()), 2) << *status;
    for (const char* key :
         {"agents", "conversations", "queued", "running", "turns", "failed", "uptime"})
        EXPECT_TRUE(kv(*status, key)) << "status lacks `" << key << "`:\n" << *status;

    ASSERT_EQ(stat(p("log").c_str(), &sb), 0);
    EXPECT_TRUE(S_ISREG(sb.st_mode));
    EXPECT_TRUE(sb.st_mode & S_IRUSR);
    EXPECT_EQ(sb.st_size, 0) << "log is a stream and reports size 0";

    ASSERT_EQ(stat(p("conv/clone").c_str(), &sb), 0);
    EXPECT_TRUE(S_ISREG(sb.st_mode));
}

TEST_F(Tree, AgentFolderListingAndStat) {
    ASSERT_NO_FATAL_FAILURE(make_agent("upper", R"({"exec": ["tr", "a-z", "A-Z"]})"));
    auto names = list_dir(p("agents"));
    ASSERT_TRUE(names);
    EXPECT_EQ(*names, std::vector<std::string>{"upper"});
    auto files = list_dir(p("agents/upper"));
    ASSERT_TRUE(files);
    EXPECT_EQ(*files, kAgentFiles);

    ASSERT_EQ(send("upper", "hello\n"), 0);
    EXPECT_EQ(cat_stream("agents/upper/output"), "HELLO\n");
    ASSERT_TRUE(wait_idle("upper"));

    struct stat sb {};
    ASSERT_EQ(stat(p("agents/upper").c_str(), &sb), 0);
    EXPECT_TRUE(S_ISDIR(sb.st_mode));
    for (const char* f : {"config", "instructions", "status", "output", "err", "ctl"}) {
        std::string path = p(std::string("agents/upper/") + f);
        ASSERT_EQ(stat(path.c_str(), &sb), 0) << f << ": " << strerror(errno);
        EXPECT_TRUE(S_ISREG(sb.st_mode)) << f;
        std::optional<std::string> content =
            std::string(f) == "output" ? cat_stream("agents/upper/output") : read_file(path);
        ASSERT_TRUE(content) << f;
        EXPECT_EQ(static_cast<size_t>(sb.st_size), content->size())
            << f << " size differs from its content:\n"
            << *content;
    }
    ASSERT_EQ(stat(p("agents/upper/output").c_str(), &sb), 0);
    EXPECT_EQ(sb.st_size, 6);
    EXPECT_TRUE(sb.st_mode & S_IRUSR);
    ASSERT_EQ(stat(p("agents/upper/inbox").c_str(), &sb), 0);
    EXPECT_TRUE(S_ISREG(sb.st_mode));
    EXPECT_TRUE(sb.st_mode & S_IWUSR) << "inbox must be writable";
    EXPECT_EQ(sb.st_size, 0) << "inbox reads as an empty file";
    ASSERT_EQ(stat(p("agents/upper/config").c_str(), &sb), 0);
    EXPECT_TRUE((sb.st_mode & S_IRUSR) && (sb.st_mode & S_IWUSR)) << "config is rw";

    // ls -l agrees with stat.
    auto r = sh("ls -l " + shq(p("agents/upper")));
    ASSERT_EQ(r.status, 0) << r.err;
    bool saw_output = false;
    for (const auto& l : lines(r.out)) {
        if (l.size() > 7 && l.compare(l.size() - 7, 7, " output") == 0) {
            saw_output = true;
            EXPECT_EQ(l[0], '-') << l;
            EXPECT_NE(l.find(" 6 "), std::string::npos) << "size of output in ls -l: " << l;
        }
    }
    EXPECT_TRUE(saw_output) << r.out;
}

TEST_F(Tree, ConvCloneMakesAFolder) {
    auto n1 = read_file(p("conv/clone"));
    ASSERT_TRUE(n1);
    ASSERT_FALSE(n1->empty());
    EXPECT_EQ(n1->back(), '\n');
    std::string id1 = n1->substr(0, n1->size() - 1);
    ASSERT_FALSE(id1.empty());
    EXPECT_EQ(id1.find_first_not_of("0123456789"), std::string::npos) << id1;
    auto n2 = read_file(p("conv/clone"));
    ASSERT_TRUE(n2);
    std::string id2 = n2->substr(0, n2->size() - 1);
    EXPECT_NE(id1, id2) << "each open of clone makes a new conversation";

    auto names = list_dir(p("conv"));
    ASSERT_TRUE(names);
    std::set<std::string> s(names->begin(), names->end());
    EXPECT_TRUE(s.count("clone"));
    EXPECT_TRUE(s.count(id1));
    EXPECT_TRUE(s.count(id2));
    auto files = list_dir(p("conv/" + id1));
    ASSERT_TRUE(files);
    EXPECT_EQ(*files, kConvFiles);
    struct stat sb {};
    ASSERT_EQ(stat(p("conv/" + id1).c_str(), &sb), 0);
    EXPECT_TRUE(S_ISDIR(sb.st_mode));
    auto status = read_file(p("status"));
    ASSERT_TRUE(status);
    EXPECT_EQ(kv(*status, "conversations"), std::string("2")) << *status;
    auto ctl = read_file(p("conv/" + id1 + "/ctl"));
    ASSERT_TRUE(ctl);
    EXPECT_EQ(kv(*ctl, "id"), id1) << *ctl;
    EXPECT_EQ(kv(*ctl, "agent"), std::string("-")) << *ctl;
}

// A tree with an agent that has output, a busy agent and a conversation.
class TreeWalk : public MountedSwarm {
  protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(MountedSwarm::SetUp());
        if (IsSkipped()) return;
        ASSERT_NO_FATAL_FAILURE(make_agent("upper", R"({"exec": ["tr", "a-z", "A-Z"]})"));
        ASSERT_NO_FATAL_FAILURE(make_agent("busy", R"({"exec": ["sh", "-c", "cat; sleep 20"]})"));
        ASSERT_EQ(send("upper", "hello\n"), 0);
        EXPECT_EQ(cat_stream("agents/upper/output"), "HELLO\n");
        ASSERT_TRUE(wait_idle("upper"));
        auto n = read_file(p("conv/clone"));
        ASSERT_TRUE(n && !n->empty());
        conv_ = n->substr(0, n->size() - 1);
        ASSERT_EQ(write_file(p("conv/" + conv_ + "/ctl"), "agent upper\n"), 0);
        ASSERT_EQ(send("busy", "working\n"), 0);
    }
    void TearDown() override {
        if (!IsSkipped() && mounted()) write_file(p("agents/busy/ctl"), "stop\n");
        MountedSwarm::TearDown();
    }
    std::string conv_;
};

TEST_F(TreeWalk, FindTerminatesAndListsEverything) {
    auto r = sh("find " + shq(mnt()), 20);
    ASSERT_FALSE(r.timed_out) << "find did not terminate; so far:\n" << r.out;
    EXPECT_EQ(r.status, 0) << r.err;
    std::set<std::string> found;
    for (const auto& l : lines(r.out)) found.insert(l);
    for (const auto& f : kAgentFiles) {
        EXPECT_TRUE(found.count(p("agents/upper/" + f))) << f;
        EXPECT_TRUE(found.count(p("agents/busy/" + f))) << f;
    }
    for (const auto& f : kConvFiles) EXPECT_TRUE(found.count(p("conv/" + conv_ + "/" + f))) << f;
    for (const char* f : {"ctl", "status", "log", "agents", "conv", "conv/clone"})
        EXPECT_TRUE(found.count(p(f))) << f;
}

TEST_F(TreeWalk, LsRecursiveTerminates) {
    auto r = sh("ls -lR " + shq(mnt()), 20);
    ASSERT_FALSE(r.timed_out) << "ls -R did not terminate; so far:\n" << r.out;
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find(p("agents/upper") + ":"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(p("conv/" + conv_) + ":"), std::string::npos) << r.out;
}

TEST_F(TreeWalk, StatOfEveryPathTerminates) {
    auto r = sh("find " + shq(mnt()) + " -exec stat -c '%F %s %n' {} +", 20);
    ASSERT_FALSE(r.timed_out) << "stat walk did not terminate; so far:\n" << r.out;
    EXPECT_EQ(r.status, 0) << r.err;
    auto ls = lines(r.out);
    EXPECT_GE(ls.size(), 5u + 2 * kAgentFiles.size() + kConvFiles.size() + 4);
    for (const auto& l : ls) {
        EXPECT_TRUE(l.rfind("directory ", 0) == 0 || l.rfind("regular ", 0) == 0) << l;
    }
}

TEST_F(TreeWalk, GrepRecursiveOverIdleAgentTerminates) {
    auto r = sh("grep -r HELLO " + shq(p("agents/upper")), 20);
    ASSERT_FALSE(r.timed_out) << "grep -r did not terminate; so far:\n" << r.out;
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find(p("agents/upper/output") + ":HELLO"), std::string::npos) << r.out << r.err;
    r = sh("grep -r tr " + shq(p("agents/upper")), 20);
    ASSERT_FALSE(r.timed_out);
    EXPECT_NE(r.out.find(p("agents/upper/config") + ":"), std::string::npos) << r.out << r.err;
}

TEST_F(TreeWalk, CpRecursiveOfIdleAgentCopiesFiles) {
    std::string dst = dir() + "/copy";
    auto r = sh("cp -r " + shq(p("agents/upper")) + " " + shq(dst), 20);
    ASSERT_FALSE(r.timed_out) << "cp -r did not terminate: " << r.err;
    EXPECT_EQ(r.status, 0) << "cp -r of an idle agent succeeds: " << r.err;
    EXPECT_EQ(slurp(dst + "/output"), "HELLO\n");
    EXPECT_EQ(slurp(dst + "/config"), slurp(p("agents/upper/config")));
    auto status = slurp(dst + "/status");
    EXPECT_EQ(kv(status, "state"), std::string("idle")) << status;
    EXPECT_EQ(kv(status, "turns"), std::string("1")) << status;
}

}  // namespace
}  // namespace swarmfs::it
