// tests/fake_openai (the loopback OpenAI chat-completions server) as a child
// process of a unit test. The binary comes from FAKE_OPENAI_PATH (a compile
// definition) or the FAKE_OPENAI environment variable; ok() is false without it.
#pragma once
#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

extern char** environ;

namespace swarmfs::test {

using json = nlohmann::json;

inline std::string fake_openai_path() {
    if (const char* e = getenv("FAKE_OPENAI"); e && *e) return e;
#ifdef FAKE_OPENAI_PATH
    return FAKE_OPENAI_PATH;
#else
    return "";
#endif
}

// The server as a child process; it exits when our end of its stdin closes.
class FakeOpenAI {
  public:
    explicit FakeOpenAI(std::vector<std::string> args = {}) {
        std::string path = fake_openai_path();
        if (path.empty() || access(path.c_str(), X_OK) != 0) return;
        int in[2], out[2];
        if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        std::vector<std::string> argv = {path, "--exit-on-stdin-eof"};
        argv.insert(argv.end(), args.begin(), args.end());
        std::vector<char*> cargv;
        for (auto& a : argv) cargv.push_back(a.data());
        cargv.push_back(nullptr);
        int rc = posix_spawn(&pid_, path.c_str(), &fa, nullptr, cargv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        close(in[0]);
        close(out[1]);
        stdin_ = in[1];
        if (rc != 0) {
            pid_ = -1;
            close(out[0]);
            return;
        }
        std::string line;
        char c;
        pollfd p{out[0], POLLIN, 0};
        while (poll(&p, 1, 5000) > 0 && read(out[0], &c, 1) == 1 && c != '\n') line.push_back(c);
        close(out[0]);
        if (line.rfind("listening ", 0) == 0) base_ = "http://" + line.substr(10);
    }
    ~FakeOpenAI() {
        if (stdin_ >= 0) close(stdin_);
        if (pid_ > 0) {
            for (int i = 0; i < 200; ++i) {
                if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
                usleep(10000);
            }
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }
    bool ok() const { return !base_.empty(); }
    std::string base_url() const { return base_ + "/v1"; }

    // A blocking request to the control endpoints (/_script, /_requests).
    std::string call(const std::string& method, const std::string& path,
                     const std::string& body = "") {
        CURL* e = curl_easy_init();
        std::string out;
        std::string url = base_ + path;
        curl_easy_setopt(e, CURLOPT_URL, url.c_str());
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method.c_str());
        if (!body.empty()) curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.c_str());
        curl_easy_setopt(
            e, CURLOPT_WRITEFUNCTION, +[](char* d, size_t s, size_t n, void* o) {
                static_cast<std::string*>(o)->append(d, s * n);
                return s * n;
            });
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &out);
        curl_easy_perform(e);
        curl_easy_cleanup(e);
        return out;
    }
    void script(const json& steps) { call("POST", "/_script", steps.dump()); }
    std::vector<json> requests() {
        std::vector<json> r;
        std::string all = call("GET", "/_requests");
        size_t pos = 0;
        while (pos < all.size()) {
            size_t e = all.find('\n', pos);
            if (e == std::string::npos) e = all.size();
            json j = json::parse(all.substr(pos, e - pos), nullptr, false);
            if (!j.is_discarded()) r.push_back(j);
            pos = e + 1;
        }
        return r;
    }

  private:
    pid_t pid_ = -1;
    int stdin_ = -1;
    std::string base_;
};

#define NEED_FAKE_OPENAI(s)                                                     \
    if (!(s).ok())                                                              \
    GTEST_SKIP() << "fake_openai not available (set FAKE_OPENAI or build with " \
                    "FAKE_OPENAI_PATH)"

}  // namespace swarmfs::test
