#pragma once
// output, out, log: a ByteStream read by many. A read past the end waits
// while the stream is live; the adapter parks it and the stream's listener
// wakes it. `seekable` streams report their length in stat.
#include "agents/byte_stream.h"
#include "fs/node.h"

namespace swarmfs::fs {

using StreamFn = std::function<std::shared_ptr<ByteStream>()>;

class StreamFile : public FileNode {
  public:
    StreamFile(StreamFn stream, bool seekable) : stream_(std::move(stream)), seekable_(seekable) {}
    Result<Attr> attr() const override;
    Result<std::unique_ptr<Handle>> open(int flags) override;
    Result<std::string> contents() const override;

  private:
    StreamFn stream_;
    bool seekable_;
};

}  // namespace swarmfs::fs
