// fake_openai: a loopback HTTP server that speaks the OpenAI
// chat-completions protocol, for swarmfs tests. See README.md.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>
#include <thread>

#include "server.h"

namespace {

constexpr int kMaxConnections = 256;

void usage(const char* argv0) {
    std::fprintf(stderr,
                 "usage: %s [--port N] [--host 127.0.0.1] [--latency-ms N] [--log FILE]\n"
                 "          [--require-key KEY] [--exit-on-stdin-eof] [--lenient]\n",
                 argv0);
}

bool parse_int(const char* s, int& out) {
    char* end;
    errno = 0;
    long v = std::strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0 || v > 1000000000) return false;
    out = static_cast<int>(v);
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    fake_openai::Options opt;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) {
                usage(argv[0]);
                std::exit(2);
            }
            return argv[++i];
        };
        bool ok = true;
        if (a == "--port") {
            ok = parse_int(value(), opt.port) && opt.port <= 65535;
        } else if (a == "--host") {
            opt.host = value();
        } else if (a == "--latency-ms") {
            ok = parse_int(value(), opt.latency_ms);
        } else if (a == "--log") {
            opt.log_path = value();
        } else if (a == "--require-key") {
            opt.require_key = value();
        } else if (a == "--exit-on-stdin-eof") {
            opt.exit_on_stdin_eof = true;
        } else if (a == "--lenient") {
            opt.lenient = true;
        } else if (a == "--help" || a == "-h") {
            usage(argv[0]);
            return 0;
        } else {
            ok = false;
        }
        if (!ok) {
            std::fprintf(stderr, "fake_openai: bad argument: %s\n", a.c_str());
            usage(argv[0]);
            return 2;
        }
    }

    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(opt.port));
    if (inet_pton(AF_INET, opt.host.c_str(), &addr.sin_addr) != 1 ||
        (ntohl(addr.sin_addr.s_addr) >> 24) != 127) {
        std::fprintf(stderr, "fake_openai: --host must be a 127.x.x.x address\n");
        return 2;
    }

    // Signals arrive on a signalfd; every thread inherits the blocked mask.
    // A shell starts background jobs with SIGINT ignored: undo that.
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    pthread_sigmask(SIG_BLOCK, &mask, nullptr);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (sfd < 0) {
        std::perror("fake_openai: signalfd");
        return 1;
    }

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (lfd < 0 || bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(lfd, 512) != 0) {
        std::fprintf(stderr, "fake_openai: cannot listen on %s:%d: %s\n", opt.host.c_str(),
                     opt.port, std::strerror(errno));
        return 1;
    }
    socklen_t len = sizeof addr;
    getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);

    static fake_openai::Server server(opt);
    static std::atomic<int> active{0};

    std::printf("listening %s:%d\n", opt.host.c_str(), ntohs(addr.sin_port));
    std::fflush(stdout);

    pollfd fds[3] = {{lfd, POLLIN, 0}, {sfd, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    nfds_t nfds = opt.exit_on_stdin_eof ? 3 : 2;
    for (;;) {
        int r = poll(fds, nfds, -1);
        if (r < 0) {
            if (errno == EINTR) continue;
            std::perror("fake_openai: poll");
            return 1;
        }
        if (fds[1].revents) break;  // SIGTERM or SIGINT
        if (nfds == 3 && fds[2].revents) {
            char buf[4096];
            ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
            if (n <= 0 && !(n < 0 && (errno == EINTR || errno == EAGAIN))) break;
        }
        if (fds[0].revents & POLLIN) {
            int cfd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
            if (cfd < 0) continue;
            if (active.load() >= kMaxConnections) {
                fake_openai::Server::refuse(cfd);
                continue;
            }
            ++active;
            try {
                std::thread([cfd] {
                    server.serve(cfd);
                    --active;
                }).detach();
            } catch (const std::system_error&) {
                --active;
                fake_openai::Server::refuse(cfd);
            }
        }
    }
    // Connection threads may be mid-response; leave without running
    // destructors under them.
    server.flush_log();
    std::fflush(stdout);
    _exit(0);
}
