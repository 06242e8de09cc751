// Editing config and instructions the way editors and tools do it: in place,
// O_TRUNC, ftruncate, scratch files and rename-over (vim, sed -i).
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "tests/support/mount_fixture.h"

namespace swarmfs::it {
namespace {

class Editors : public MountedSwarm {
  protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(MountedSwarm::SetUp());
        if (IsSkipped()) return;
        ASSERT_NO_FATAL_FAILURE(make_agent("ed", R"({"exec": ["cat"]})"));
    }
    nlohmann::json config() {
        auto j = nlohmann::json::parse(slurp(p("agents/ed/config")), nullptr, false);
        EXPECT_FALSE(j.is_discarded()) << slurp(p("agents/ed/config"));
        return j;
    }
    // After an edit switching cat -> rev, a message comes back reversed.
    void expect_rev_runs() {
        EXPECT_EQ(config()["exec"], nlohmann::json::array({"rev"})) << slurp(p("agents/ed/config"));
        const std::string before = cat_stream("agents/ed/output");
        ASSERT_EQ(send("ed", "abc\n"), 0);
        EXPECT_EQ(cat_stream("agents/ed/output"), before + "cba\n");
    }
    std::string cd() const { return "cd " + shq(p("agents/ed")) + " && "; }
    static std::string vim() {
        for (const char* v : {"vim", "vim.basic", "vim.tiny"})
            if (sh(std::string("command -v ") + v).status == 0) return v;
        return {};
    }
};

TEST_F(Editors, VimEditsConfig) {
    const std::string v = vim();
    if (v.empty()) GTEST_SKIP() << "vim is not installed (Debian package vim or vim-tiny)";
    auto r = sh(cd() + v + " -es -u NONE -i NONE -c '%s/\"cat\"/\"rev\"/' -c 'wq' config", 20);
    ASSERT_FALSE(r.timed_out) << "vim hung: " << r.out << r.err;
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    ASSERT_NO_FATAL_FAILURE(expect_rev_runs());
    // vim's swap file is gone again and no stray files break the listing.
    auto names = list_dir(p("agents/ed"));
    ASSERT_TRUE(names);
    for (const auto& n : *names) EXPECT_NE(n, ".config.swp");
}

TEST_F(Editors, VimWithBackupRenameEditsConfig) {
    const std::string v = vim();
    if (v.empty()) GTEST_SKIP() << "vim is not installed (Debian package vim or vim-tiny)";
    // backupcopy=no: vim renames config to config~ and writes a new config.
    auto r = sh(cd() + v +
                    " -es -u NONE -i NONE -c 'set nocompatible backup backupcopy=no backupskip=' "
                    "-c '%s/\"cat\"/\"rev\"/' -c 'wq' config",
                20);
    ASSERT_FALSE(r.timed_out) << "vim hung: " << r.out << r.err;
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    ASSERT_NO_FATAL_FAILURE(expect_rev_runs());
    // The backup holds the old definition.
    auto backup = read_file(p("agents/ed/config~"));
    ASSERT_TRUE(backup) << "vim's backup config~ is missing";
    EXPECT_NE(backup->find("\"cat\""), std::string::npos) << *backup;
}

TEST_F(Editors, VimEditsInstructions) {
    const std::string v = vim();
    if (v.empty()) GTEST_SKIP() << "vim is not installed (Debian package vim or vim-tiny)";
    ASSERT_EQ(write_file(p("agents/ed/instructions"), "Be terse.\n"), 0);
    auto r = sh(cd() + v + " -es -u NONE -i NONE -c '%s/terse/kind/' -c 'wq' instructions", 20);
    ASSERT_FALSE(r.timed_out);
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_EQ(slurp(p("agents/ed/instructions")), "Be kind.\n");
    EXPECT_NE(config().value("instructions", "").find("Be kind."), std::string::npos);
}

TEST_F(Editors, SedInPlaceRenamesOverConfig) {
    auto r = sh(cd() + "sed -i 's/\"cat\"/\"rev\"/' config", 20);
    ASSERT_FALSE(r.timed_out);
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    ASSERT_NO_FATAL_FAILURE(expect_rev_runs());
    // sed's temp file was renamed away: only the protocol files are left.
    auto names = list_dir(p("agents/ed"));
    ASSERT_TRUE(names);
    EXPECT_EQ(*names, (std::vector<std::string>{"caps", "config", "ctl", "err", "inbox",
                                                "instructions", "output", "status"}));
}

TEST_F(Editors, SedInPlaceWithBadResultIsRefused) {
    const auto before = slurp(p("agents/ed/config"));
    auto r = sh(cd() + "sed -i 's/}/,/' config", 20);
    ASSERT_FALSE(r.timed_out);
    EXPECT_NE(r.status, 0) << "sed -i producing invalid JSON must fail (rename gives EINVAL)";
    EXPECT_EQ(slurp(p("agents/ed/config")), before);
    EXPECT_NE(slurp(p("agents/ed/err")).find("config"), std::string::npos);
    ASSERT_EQ(send("ed", "still\n"), 0);
    EXPECT_EQ(cat_stream("agents/ed/output"), "still\n");
}

TEST_F(Editors, TruncateAndWrite) {
    // O_TRUNC then write (what `>` does).
    auto r = sh(cd() + R"(echo '{"exec": ["tr", "a-z", "A-Z"]}' > config)");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(config()["exec"], nlohmann::json::array({"tr", "a-z", "A-Z"}));

    // ftruncate then write on one open file, the way vim writes in place.
    int fd = open(p("agents/ed/config").c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << strerror(errno);
    EXPECT_EQ(ftruncate(fd, 0), 0) << strerror(errno);
    const std::string cfg = R"({"exec": ["rev"]})";
    EXPECT_EQ(write(fd, cfg.data(), cfg.size()), static_cast<ssize_t>(cfg.size()));
    EXPECT_EQ(fsync(fd), 0) << strerror(errno);
    EXPECT_EQ(close(fd), 0) << strerror(errno);
    ASSERT_NO_FATAL_FAILURE(expect_rev_runs());
}

TEST_F(Editors, TruncatePathThenWrite) {
    // `truncate -s 0 config` on its own would install an empty (invalid)
    // config: the server may refuse it (EINVAL, config unchanged) or accept
    // the truncation pending the next write; either way the agent never runs
    // without a definition and the following write installs the new config.
    const auto before = slurp(p("agents/ed/config"));
    if (truncate(p("agents/ed/config").c_str(), 0) != 0) {
        EXPECT_EQ(errno, EINVAL) << strerror(errno);
        EXPECT_EQ(slurp(p("agents/ed/config")), before);
    }
    EXPECT_EQ(config()["exec"], nlohmann::json::array({"cat"}));
    ASSERT_EQ(write_file(p("agents/ed/config"), R"({"exec": ["rev"]})"), 0)
        << slurp(p("agents/ed/err"));
    ASSERT_NO_FATAL_FAILURE(expect_rev_runs());
}

TEST_F(Editors, ScratchFilesWorkAndDoNotBreakTheAgent) {
    const std::string swp = p("agents/ed/.config.swp");
    const std::string tilde = p("agents/ed/config~");
    ASSERT_EQ(write_file(swp, "swap bytes\0\1\2", O_WRONLY | O_CREAT | O_EXCL), 0)
        << strerror(errno);
    ASSERT_EQ(write_file(tilde, "not json at all"), 0);
    EXPECT_EQ(write_file(p("agents/ed/4913"), ""), 0);
    EXPECT_EQ(unlink(p("agents/ed/4913").c_str()), 0) << strerror(errno);

    EXPECT_EQ(slurp(swp), "swap bytes");
    EXPECT_EQ(slurp(tilde), "not json at all");
    struct stat sb {};
    ASSERT_EQ(stat(tilde.c_str(), &sb), 0);
    EXPECT_TRUE(S_ISREG(sb.st_mode));
    EXPECT_EQ(sb.st_size, 15);
    EXPECT_EQ(chmod(tilde.c_str(), 0600), 0) << strerror(errno);
    auto names = list_dir(p("agents/ed"));
    ASSERT_TRUE(names);
    EXPECT_TRUE(std::find(names->begin(), names->end(), ".config.swp") != names->end());
    EXPECT_TRUE(std::find(names->begin(), names->end(), "config~") != names->end());
    EXPECT_EQ(write_file(swp, "more", O_WRONLY | O_CREAT | O_EXCL), EEXIST);

    // The agent is unaffected.
    EXPECT_EQ(config()["exec"], nlohmann::json::array({"cat"}));
    ASSERT_EQ(send("ed", "hi\n"), 0);
    EXPECT_EQ(cat_stream("agents/ed/output"), "hi\n");
    EXPECT_EQ(slurp(p("agents/ed/err")), "");

    // Renaming a scratch file over config installs it.
    ASSERT_EQ(write_file(tilde, R"({"exec": ["rev"]})"), 0);
    EXPECT_EQ(rename(tilde.c_str(), p("agents/ed/config").c_str()), 0) << strerror(errno);
    ASSERT_NO_FATAL_FAILURE(expect_rev_runs());
    EXPECT_FALSE(read_file(tilde)) << "renamed scratch file still there";

    // A bad one is refused with EINVAL and changes nothing.
    ASSERT_EQ(write_file(tilde, "{broken"), 0);
    EXPECT_EQ(rename(tilde.c_str(), p("agents/ed/config").c_str()), -1);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(config()["exec"], nlohmann::json::array({"rev"}));

    // Renaming config to a scratch name copies it and leaves config in place.
    EXPECT_EQ(rename(p("agents/ed/config").c_str(), p("agents/ed/config.bak").c_str()), 0)
        << strerror(errno);
    EXPECT_EQ(slurp(p("agents/ed/config.bak")), slurp(p("agents/ed/config")));
    EXPECT_EQ(config()["exec"], nlohmann::json::array({"rev"}));

    EXPECT_EQ(unlink(swp.c_str()), 0) << strerror(errno);
    EXPECT_EQ(unlink(tilde.c_str()), 0) << strerror(errno);
    EXPECT_EQ(unlink(p("agents/ed/config.bak").c_str()), 0) << strerror(errno);
    names = list_dir(p("agents/ed"));
    ASSERT_TRUE(names);
    EXPECT_EQ(names->size(), 8u);
    // Protocol files cannot be removed.
    EXPECT_EQ(unlink(p("agents/ed/config").c_str()), -1);
    EXPECT_TRUE(read_file(p("agents/ed/config")));
}

TEST_F(Editors, InstructionsAndConfigAreTheSameField) {
    ASSERT_EQ(write_file(p("agents/ed/instructions"), "Be terse.\n"), 0);
    EXPECT_EQ(slurp(p("agents/ed/instructions")), "Be terse.\n");
    auto cfg = config();
    ASSERT_TRUE(cfg.contains("instructions")) << cfg.dump();
    EXPECT_NE(cfg["instructions"].get<std::string>().find("Be terse."), std::string::npos);
    EXPECT_EQ(cfg["exec"], nlohmann::json::array({"cat"})) << "exec must survive";

    // Editing config changes instructions; the agent sees them.
    ASSERT_EQ(
        write_file(p("agents/ed/config"),
                   R"({"exec": ["sh", "-c", "cat >/dev/null; printf %s \"$SWARMFS_INSTRUCTIONS\""],
                             "instructions": "Speak softly."})"),
        0)
        << slurp(p("agents/ed/err"));
    EXPECT_EQ(slurp(p("agents/ed/instructions")).substr(0, 13), "Speak softly.");
    ASSERT_EQ(send("ed", "x\n"), 0);
    EXPECT_EQ(cat_stream("agents/ed/output"), "Speak softly.");
}

}  // namespace
}  // namespace swarmfs::it
