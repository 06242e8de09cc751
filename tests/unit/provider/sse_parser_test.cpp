#include "agents/provider/sse_parser.h"

#include <gtest/gtest.h>

#include <random>

using namespace swarmfs;

namespace {
std::vector<SseEvent> parse_all(const std::vector<std::string_view>& pieces, bool finish = true) {
    SseParser p;
    std::vector<SseEvent> out;
    for (auto s : pieces) EXPECT_TRUE(p.feed(s, out));
    if (finish) p.finish(out);
    return out;
}
std::vector<std::string> datas(const std::vector<SseEvent>& evs) {
    std::vector<std::string> d;
    for (auto& e : evs) d.push_back(e.data);
    return d;
}

// A stream using every framing feature: comments, CRLF, CR, LF, multi-line
// data, event and id fields, a field with no space, a BOM, keep-alives.
const std::string kStream =
    "\xEF\xBB\xBF"
    ": keep-alive comment\r\n"
    "data: {\"a\":1}\r\n\r\n"
    "event: delta\n"
    "id: 7\n"
    "data: line one\n"
    "data:line two\n"
    "data:  two spaces\n"
    "\n"
    ":\n"
    "data: cr only\r\r"
    "retry: 1000\n"
    "data\n"
    "\n"
    "event: no-data-so-dropped\n\n"
    "data: [DONE]\n\n";

std::vector<std::string> expected() {
    return {"{\"a\":1}", "line one\nline two\n two spaces", "cr only", "", "[DONE]"};
}
}  // namespace

TEST(SseParser, FramingRules) {
    auto evs = parse_all({kStream});
    EXPECT_EQ(datas(evs), expected());
    ASSERT_GE(evs.size(), 2u);
    EXPECT_EQ(evs[1].type, "delta");
    EXPECT_EQ(evs[1].id, "7");
    EXPECT_EQ(evs[0].type, "");
}

TEST(SseParser, OneByteAtATime) {
    SseParser p;
    std::vector<SseEvent> out;
    for (char c : kStream) ASSERT_TRUE(p.feed(std::string_view(&c, 1), out));
    p.finish(out);
    EXPECT_EQ(datas(out), expected());
}

TEST(SseParser, SplitAtEveryByteBoundary) {
    for (size_t i = 0; i <= kStream.size(); ++i) {
        for (size_t j = i; j <= kStream.size(); j += 7) {
            std::string_view s(kStream);
            auto evs = parse_all({s.substr(0, i), s.substr(i, j - i), s.substr(j)});
            ASSERT_EQ(datas(evs), expected()) << "split at " << i << " and " << j;
        }
    }
}

TEST(SseParser, RandomSplits) {
    std::mt19937 rng(12345);
    for (int round = 0; round < 500; ++round) {
        SseParser p;
        std::vector<SseEvent> out;
        size_t pos = 0;
        while (pos < kStream.size()) {
            size_t n = std::uniform_int_distribution<size_t>(0, 9)(rng);
            ASSERT_TRUE(p.feed(std::string_view(kStream).substr(pos, n), out));
            pos += n;
        }
        p.finish(out);
        ASSERT_EQ(datas(out), expected()) << "round " << round;
    }
}

TEST(SseParser, EventsCompleteOnlyAtBlankLine) {
    SseParser p;
    std::vector<SseEvent> out;
    p.feed("data: a\n", out);
    EXPECT_TRUE(out.empty());
    p.feed("data: b\n", out);
    EXPECT_TRUE(out.empty());
    p.feed("\n", out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].data, "a\nb");
}

TEST(SseParser, CrLfSplitBetweenChunksIsOneLineEnd) {
    // "\r" at the end of one chunk and "\n" at the start of the next must not
    // count as two line ends (which would end the event early).
    auto evs = parse_all({"data: x\r", "\ndata: y\r\n\r\n"});
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].data, "x\ny");
}

TEST(SseParser, UnterminatedEventAtEndIsDispatchedLeniently) {
    EXPECT_EQ(datas(parse_all({"data: [DONE]\n"})), std::vector<std::string>{"[DONE]"});
    EXPECT_EQ(datas(parse_all({"data: [DONE]"})), std::vector<std::string>{"[DONE]"});
    EXPECT_TRUE(parse_all({"data: x\n"}, /*finish=*/false).empty());
}

TEST(SseParser, BomOnlyAtStartAndPartialBomIsText) {
    EXPECT_EQ(datas(parse_all({"\xEF", "\xBB", "\xBF", "data: a\n\n"})),
              std::vector<std::string>{"a"});
    // A lone BOM byte followed by other text is not a BOM: the line is a
    // field named "\xEFdata", ignored.
    EXPECT_TRUE(parse_all({"\xEF"
                           "data: a\n\n"})
                    .empty());
    EXPECT_EQ(datas(parse_all({"data: \xEF\xBB\xBF"
                               "a\n\n"})),
              std::vector<std::string>{"\xEF\xBB\xBF"
                                       "a"});
}

TEST(SseParser, OverlongLineFailsInsteadOfGrowing) {
    SseParser p;
    std::vector<SseEvent> out;
    std::string big(1 << 20, 'x');
    bool ok = true;
    for (size_t sent = 0; ok && sent <= SseParser::kMaxLine + big.size(); sent += big.size())
        ok = p.feed(big, out);
    EXPECT_FALSE(ok);
    EXPECT_TRUE(p.failed());
    EXPECT_FALSE(p.feed("\n\ndata: x\n\n", out));
    EXPECT_TRUE(out.empty());
}

// llama.cpp's server writes "error: {json}" lines; they must not vanish as
// an unknown field.
TEST(SseParser, LlamaCppErrorLineIsAnErrorEvent) {
    auto evs = parse_all({"data: {\"a\":1}\n\n", "error: {\"code\":500,\"message\":\"boom\"}\n\n"});
    ASSERT_EQ(evs.size(), 2u);
    EXPECT_EQ(evs[0].type, "");
    EXPECT_EQ(evs[1].type, "error");
    EXPECT_EQ(evs[1].data, "{\"code\":500,\"message\":\"boom\"}");
}

TEST(SseParser, NamedErrorEventKeepsItsData) {
    auto evs = parse_all({"event: error\r\ndata: {\"message\":\"context too long\"}\r\n\r\n"});
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].type, "error");
    EXPECT_EQ(evs[0].data, "{\"message\":\"context too long\"}");
}
