// fake_openai: routes, the script queue and the request record.
#pragma once

#include <deque>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "http.h"
#include "model.h"

namespace fake_openai {

struct Options {
    std::string host = "127.0.0.1";
    int port = 0;
    int latency_ms = 0;
    std::string log_path;
    std::string require_key;
    bool exit_on_stdin_eof = false;
    bool lenient = false;
};

class Server {
  public:
    explicit Server(Options options);

    // Serves one accepted connection until it closes; takes ownership of fd.
    void serve(int fd);
    // Answers an over-limit connection with 503 and closes it.
    static void refuse(int fd);
    void flush_log();

  private:
    // Returns whether the connection stays open.
    bool handle(Conn& conn, const Request& req);
    bool chat(Conn& conn, const Request& req, size_t record);
    bool script(Conn& conn, const Request& req);
    bool requests(Conn& conn, const Request& req);

    bool send_json(Conn& conn, const Request& req, int status, const json& body,
                   const Headers& extra = {});
    bool send_error(Conn& conn, const Request& req, int status, const std::string& message,
                    const std::string& type, const json& code, const Headers& extra = {});

    // Takes the first step that applies to a request whose last user message
    // is `user`; null if none.
    json take_step(const std::string& user);

    size_t record(const Request& req);
    void set_outcome(size_t index, int status, const json& step);
    void log_line(const Request& req, int status, const std::string& note);

    Options options_;

    std::mutex script_mu_;
    std::deque<json> steps_;

    std::mutex requests_mu_;
    std::vector<nlohmann::ordered_json> requests_;
    size_t request_count_ = 0;

    std::mutex log_mu_;
    std::ofstream log_;
};

}  // namespace fake_openai
