#include "agents/byte_stream.h"

#include <gtest/gtest.h>

using namespace swarmfs;

TEST(ByteStream, ReadAtEndWaitsWhileLiveAndEndsWhenNot) {
    ByteStream s;
    EXPECT_EQ(s.read(0, 10).state, ByteStream::State::Eof);
    s.set_live(true);
    EXPECT_EQ(s.read(0, 10).state, ByteStream::State::Wait);
    s.append("hello");
    auto c = s.read(0, 3);
    EXPECT_EQ(c.state, ByteStream::State::Data);
    EXPECT_EQ(c.data, "hel");
    EXPECT_EQ(s.read(3, 10).data, "lo");
    EXPECT_EQ(s.read(5, 10).state, ByteStream::State::Wait);
    s.set_live(false);
    EXPECT_EQ(s.read(5, 10).state, ByteStream::State::Eof);
    EXPECT_EQ(s.size(), 5u);
}

TEST(ByteStream, ListenersHearAppendsAndStateChangesUntilRemoved) {
    ByteStream s(true);
    int heard = 0;
    auto id = s.listen([&] { ++heard; });
    s.append("a");
    s.set_live(false);
    s.set_live(false);  // no change, no call
    EXPECT_EQ(heard, 2);
    s.unlisten(id);
    s.append("b");
    EXPECT_EQ(heard, 2);
}
