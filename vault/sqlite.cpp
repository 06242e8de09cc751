#include "vault/sqlite.h"

namespace swarmfs::sqlite {

Result<Database> Database::open(const std::string& path) {
    sqlite3* raw = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &raw,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                             nullptr);
    Database db;
    db.db_.reset(raw);
    if (rc != SQLITE_OK) {
        return make_error(
            EIO, "cannot open " + path + ": " + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
    }
    sqlite3_busy_timeout(raw, 5000);
    return db;
}

Status Database::exec(const char* sql) {
    char* msg = nullptr;
    if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, &msg) != SQLITE_OK) {
        std::string m = msg ? msg : "unknown error";
        sqlite3_free(msg);
        return make_error(EIO, "sqlite: " + m);
    }
    return {};
}

Result<Statement> Database::prepare(const char* sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) !=
        SQLITE_OK) {
        return make_error(EIO, "sqlite prepare: " + last_error());
    }
    return Statement(s);
}

}  // namespace swarmfs::sqlite
