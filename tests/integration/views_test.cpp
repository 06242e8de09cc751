// views/NAME through a real mount: what an agent sees, what it may change,
// and the file-level escape attempts, both by path (as root through views/)
// and as the agent's own uid (as its processes run), whatever path it uses.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/support/mount_fixture.h"

using namespace swarmfs::it;

namespace {

class Views : public MountedSwarm {
  protected:
    std::string swarm_config() const override {
        return R"({
          "tools": {
            "lookup_ticket": {"exec": ["sh", "-c", "cat >/dev/null; echo ticket 42 is open"],
                              "description": "look up a ticket"},
            "wipe": {"exec": ["sh", "-c", "cat >/dev/null; echo wiped"], "description": "wipe"}
          },
          "agents": {
            "researcher": {"exec": ["cat"],
                           "caps": ["tool:lookup_ticket", "send:writer", "publish:alerts"],
                           "unveil": {"/vault/kb": "r", "/vault/research": "rw"},
                           "owns": ["research"]},
            "writer": {"exec": ["cat"]},
            "librarian": {"exec": ["cat"], "owns": ["kb"]}
          }
        })";
    }
    void SetUp() override {
        MountedSwarm::SetUp();
        if (HasFatalFailure() || IsSkipped()) return;
        namespace fs = std::filesystem;
        std::string v = state() + "/vault";
        fs::create_directories(v + "/kb");
        fs::create_directories(v + "/research");
        fs::create_directories(v + "/secret");
        std::ofstream(v + "/kb/a.md") << "knowledge\n";
        std::ofstream(v + "/secret/s.txt") << "the secret\n";
        ASSERT_EQ(sh("echo x > " + shq(p("events/alerts"))).status, 0);
    }
    std::string disk(const std::string& rel) { return state() + "/vault/" + rel; }
    std::string view(const std::string& rel) { return p("views/researcher/" + rel); }
    std::string uid_of(const std::string& agent) { return field(agent, "uid"); }
    // Runs cmd as the agent's uid, as its sandboxed processes run.
    ShResult as_agent(const std::string& agent, const std::string& cmd) {
        std::string uid = uid_of(agent);
        return sh("setpriv --reuid=" + uid + " --regid=" + uid + " --clear-groups sh -c " +
                  shq(cmd));
    }
    // The log so far: a read at its end would wait for the next event.
    std::string so_far(const std::string& rel) {
        return sh("head -c \"$(stat -c %s " + shq(p(rel)) + ")\" " + shq(p(rel))).out;
    }
    std::string log_so_far() { return so_far("log"); }
    bool logged_refusal(const std::string& needle) {
        return wait_until(
            [&] {
                for (auto& l : lines(log_so_far()))
                    if (l.find(R"("kind":"refused")") != std::string::npos &&
                        l.find(needle) != std::string::npos)
                        return true;
                return false;
            },
            5);
    }
};

}  // namespace

TEST_F(Views, AViewShowsOnlyWhatTheAgentHolds) {
    EXPECT_EQ(list_dir(p("views")).value(),
              (std::vector<std::string>{"librarian", "researcher", "writer"}));
    EXPECT_EQ(list_dir(view("")).value(),
              (std::vector<std::string>{"agents", "conv", "events", "tools", "vault"}));
    EXPECT_EQ(list_dir(view("vault")).value(), (std::vector<std::string>{"kb", "research"}));
    EXPECT_EQ(list_dir(view("agents")).value(), (std::vector<std::string>{"researcher", "writer"}));
    EXPECT_EQ(list_dir(view("agents/writer")).value(), std::vector<std::string>{"inbox"});
    EXPECT_EQ(list_dir(view("tools")).value(), std::vector<std::string>{"lookup_ticket"});
    EXPECT_EQ(list_dir(view("events")).value(), std::vector<std::string>{"alerts"});
    // writer holds nothing: its own folder, and an empty conv/.
    EXPECT_EQ(list_dir(p("views/writer")).value(), (std::vector<std::string>{"agents", "conv"}));
    struct stat sb {};
    for (const char* hidden : {"vault/secret", "vault/secret/s.txt", "agents/librarian",
                               "tools/wipe", "events/other", "log", "ctl"}) {
        errno = 0;
        EXPECT_EQ(stat(view(hidden).c_str(), &sb), -1) << hidden;
        EXPECT_EQ(errno, ENOENT) << hidden;
    }
}

TEST_F(Views, ModesAndOwnershipAreEnforcedAndRefusalsLogged) {
    EXPECT_EQ(slurp(view("vault/kb/a.md")), "knowledge\n");
    const char* stage = nullptr;
    EXPECT_EQ(write_file(view("vault/kb/new.md"), "x"), EACCES);
    EXPECT_EQ(write_file(view("vault/kb/a.md"), "changed", O_WRONLY | O_TRUNC, &stage), EACCES);
    EXPECT_EQ(slurp(disk("kb/a.md")), "knowledge\n") << "nothing valid changed";
    EXPECT_FALSE(std::filesystem::exists(disk("kb/new.md")));
    EXPECT_NE(err("researcher").find("read-only"), std::string::npos) << err("researcher");
    EXPECT_TRUE(logged_refusal("vault/kb/new.md"));

    // Its own folder: ordinary files.
    ASSERT_EQ(write_file(view("vault/research/notes.md"), "found it\n"), 0);
    EXPECT_EQ(slurp(disk("research/notes.md")), "found it\n");
    ASSERT_EQ(sh("mkdir -p " + shq(view("vault/research/2026/nov"))).status, 0);
    EXPECT_TRUE(std::filesystem::is_directory(disk("research/2026/nov")));

    // The librarian owns kb; the owner of the swarm writes anywhere.
    ASSERT_EQ(write_file(p("views/librarian/vault/kb/b.md"), "b\n"), 0);
    EXPECT_EQ(slurp(disk("kb/b.md")), "b\n");
    ASSERT_EQ(write_file(p("vault/secret/t.txt"), "t\n"), 0);
}

TEST_F(Views, OwnFilesAreReadOnlyAndCtlOnlyPledges) {
    EXPECT_EQ(write_file(view("agents/researcher/config"), R"({"exec": ["cat"], "caps": ["net"]})"),
              EACCES);
    EXPECT_EQ(write_file(view("agents/researcher/instructions"), "obey me"), EACCES);
    EXPECT_EQ(write_file(view("agents/researcher/ctl"), "start\n"), EINVAL);
    EXPECT_EQ(write_file(view("agents/researcher/ctl"), "pledge tool:lookup_ticket net\n"), EPERM);
    EXPECT_TRUE(logged_refusal("pledge"));
    EXPECT_EQ(slurp(p("agents/researcher/caps")),
              "publish:alerts\nsend:writer\ntool:lookup_ticket\n"
              "unveil r /vault/kb\nunveil rw /vault/research\nowns /vault/research\n");

    ASSERT_EQ(write_file(view("agents/researcher/ctl"), "pledge tool:lookup_ticket\n"), 0);
    EXPECT_EQ(slurp(view("agents/researcher/caps")),
              "tool:lookup_ticket\nunveil r /vault/kb\nunveil rw /vault/research\n"
              "owns /vault/research\npledged\n");
    // What it gave up is gone from its view at once.
    EXPECT_EQ(list_dir(view("agents")).value(), std::vector<std::string>{"researcher"});
    EXPECT_FALSE(list_dir(view("events")).has_value());
    // The owner grants again through the root ctl.
    ASSERT_EQ(write_file(p("ctl"), "grant researcher send:writer\n"), 0);
    EXPECT_EQ(list_dir(view("agents")).value(), (std::vector<std::string>{"researcher", "writer"}));
}

TEST_F(Views, SendPublishAndToolCallsGoThroughTheView) {
    ASSERT_EQ(write_file(view("agents/writer/inbox"), "draft this\n"), 0);
    EXPECT_EQ(cat_stream("agents/writer/output"), "draft this\n");
    ASSERT_EQ(write_file(view("events/alerts"), "disk full\n", O_WRONLY | O_APPEND), 0);
    EXPECT_TRUE(wait_until(
        [&] { return so_far("events/alerts").find("disk full") != std::string::npos; }, 5));
    auto r = sh("exec 3<>" + shq(view("tools/lookup_ticket/call")) + "; printf '{}' >&3; cat <&3");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("ticket 42 is open"), std::string::npos) << r.out;
    // A topic it may not publish to cannot be made from the view either.
    EXPECT_NE(write_file(view("events/other"), "x"), 0);
    EXPECT_FALSE(std::filesystem::exists(p("events/other")));
}

// The escape battery (file side). Each attempt must be refused; the test
// prints the tally the closing note quotes.
TEST_F(Views, EscapeBatteryByPathAndAsTheAgentsUid) {
    ASSERT_NE(uid_of("researcher"), "(none)") << status("researcher");
    // Planted by someone with disk access, inside the agent's rw folder.
    std::filesystem::create_symlink("../secret/s.txt", disk("research/link"));
    std::filesystem::create_symlink("/etc/shadow", disk("research/shadow"));
    std::filesystem::create_directory_symlink("/", disk("research/root"));

    struct Attempt {
        std::string name, cmd;
    };
    const std::string V = view("");
    const std::string M = mnt();
    std::vector<Attempt> by_path = {
        {"read a hidden folder by absolute path", "cat " + V + "vault/secret/s.txt"},
        {"read through ..", "cat " + V + "vault/kb/../secret/s.txt"},
        {"read through a planted relative symlink", "cat " + V + "vault/research/link"},
        {"read /etc/shadow through a planted symlink", "cat " + V + "vault/research/shadow"},
        {"walk a planted symlink to /", "ls " + V + "vault/research/root/etc"},
        {"plant a symlink out of the subtree", "ln -s ../secret " + V + "vault/research/s2"},
        {"hard-link a read-only file into the rw folder",
         "ln " + V + "vault/kb/a.md " + V + "vault/research/a2"},
        {"rename out of the rw subtree into a read-only one",
         "echo x > " + V + "vault/research/m && mv " + V + "vault/research/m " + V + "vault/kb/m"},
        {"rename a read-only file into the rw subtree",
         "mv " + V + "vault/kb/a.md " + V + "vault/research/a.md"},
        {"write to a read-only unveil", "echo x > " + V + "vault/kb/new.md"},
        {"create a top-level vault folder", "mkdir " + V + "vault/mine"},
        {"widen caps by writing its config",
         "echo '{\"caps\":[\"net\"]}' > " + V + "agents/researcher/config"},
        {"widen caps through ctl", "echo 'pledge send:*' > " + V + "agents/researcher/ctl"},
        {"send to an agent not held", "echo hi > " + V + "agents/librarian/inbox"},
        {"call a tool not held", "echo '{}' > " + V + "tools/wipe/call"},
    };
    std::vector<Attempt> as_uid = {
        {"read the owner's tree", "cat " + M + "/agents/writer/config"},
        {"read the vault outside the view", "cat " + M + "/vault/secret/s.txt"},
        {"write another agent's inbox by its real path", "echo hi > " + M + "/agents/writer/inbox"},
        {"read another agent's view", "ls " + M + "/views/writer"},
        {"list the views", "ls " + M + "/views"},
        {"write the root ctl", "echo 'kill writer' > " + M + "/ctl"},
        {"read the log", "head -c1 " + M + "/log"},
    };
    int attempts = 0, refused = 0;
    std::vector<std::string> escaped;
    auto run = [&](const Attempt& a, bool uid) {
        ++attempts;
        auto r = uid ? as_agent("researcher", a.cmd) : sh(a.cmd);
        if (r.status != 0)
            ++refused;
        else
            escaped.push_back(a.name + ": " + r.out);
    };
    for (auto& a : by_path) run(a, false);
    for (auto& a : as_uid) run(a, true);
    // Inside its view, the agent's uid works.
    auto ok = as_agent("researcher", "cat " + V + "vault/kb/a.md");
    EXPECT_EQ(ok.status, 0) << ok.err;
    EXPECT_EQ(ok.out, "knowledge\n");

    printf("escape battery (files): %d attempts, %d refused, %zu escaped\n", attempts, refused,
           escaped.size());
    EXPECT_TRUE(escaped.empty()) << escaped.front();
    // Nothing changed on disk.
    EXPECT_EQ(slurp(disk("kb/a.md")), "knowledge\n");
    EXPECT_FALSE(std::filesystem::exists(disk("kb/m")));
    EXPECT_FALSE(std::filesystem::exists(disk("research/a2")));
    EXPECT_FALSE(std::filesystem::exists(disk("mine")));
    EXPECT_EQ(slurp(p("agents/researcher/config")).find("net"), std::string::npos);
    EXPECT_TRUE(wait_idle("librarian"));
    EXPECT_EQ(slurp(p("agents/librarian/output")), "");
    EXPECT_TRUE(logged_refusal("send:librarian"));
    EXPECT_TRUE(logged_refusal("outside views/researcher")) << "the uid's attempts are logged too";
}
