#pragma once
// Thin RAII over the SQLite C API: a connection and prepared statements.
#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "vault/result.h"

namespace swarmfs::sqlite {

struct DbCloser {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};

class Statement {
  public:
    Statement() = default;
    explicit Statement(sqlite3_stmt* s) : stmt_(s) {}
    void bind(int i, int64_t v) { sqlite3_bind_int64(stmt_.get(), i, v); }
    void bind(int i, double v) { sqlite3_bind_double(stmt_.get(), i, v); }
    void bind(int i, std::string_view v) {
        sqlite3_bind_text(stmt_.get(), i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    }
    // SQLITE_ROW, SQLITE_DONE or an error code.
    int step() { return sqlite3_step(stmt_.get()); }
    void reset() {
        sqlite3_reset(stmt_.get());
        sqlite3_clear_bindings(stmt_.get());
    }
    int64_t int64(int col) const { return sqlite3_column_int64(stmt_.get(), col); }
    double real(int col) const { return sqlite3_column_double(stmt_.get(), col); }
    std::string text(int col) const {
        auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_.get(), col));
        return p ? std::string(p, sqlite3_column_bytes(stmt_.get(), col)) : std::string();
    }

  private:
    std::unique_ptr<sqlite3_stmt, StmtFinalizer> stmt_;
};

class Database {
  public:
    static Result<Database> open(const std::string& path);
    Status exec(const char* sql);
    Result<Statement> prepare(const char* sql);
    std::string last_error() const { return sqlite3_errmsg(db_.get()); }
    sqlite3* raw() const { return db_.get(); }

  private:
    std::unique_ptr<sqlite3, DbCloser> db_;
};

}  // namespace swarmfs::sqlite
