#include "agents/capabilities.h"

#include <gtest/gtest.h>

using namespace swarmfs;
using Kind = Capability::Kind;
using nlohmann::json;

namespace {

CapabilitySet caps(const char* text) {
    auto r = CapabilitySet::parse(text);
    EXPECT_TRUE(r.ok()) << text << ": " << r.error().message;
    return r.ok() ? *r : CapabilitySet{};
}

UnveilMap unveil(const char* text) {
    auto r = UnveilMap::parse(text);
    EXPECT_TRUE(r.ok()) << text << ": " << r.error().message;
    return r.ok() ? *r : UnveilMap{};
}

const char* kExampleCaps =
    R"(["tool:lookup_ticket", "handoff:support", "send:writer", "publish:alerts"])";
const char* kExampleUnveil = R"({"/vault/kb": "r", "/vault/research": "rw"})";

}  // namespace

// ---- capabilities ----------------------------------------------------------

TEST(Capabilities, ConfigExampleAllowsWhatItNamesAndNothingElse) {
    auto c = caps(kExampleCaps);
    EXPECT_TRUE(c.allows(Kind::tool, "lookup_ticket"));
    EXPECT_TRUE(c.allows(Kind::handoff, "support"));
    EXPECT_TRUE(c.allows(Kind::send, "writer"));
    EXPECT_TRUE(c.allows(Kind::publish, "alerts"));

    EXPECT_FALSE(c.allows(Kind::tool, "delete_everything"));
    EXPECT_FALSE(c.allows(Kind::send, "support")) << "a handoff target is not a send target";
    EXPECT_FALSE(c.allows(Kind::handoff, "writer")) << "a send target is not a handoff target";
    EXPECT_FALSE(c.allows(Kind::publish, "other"));
    EXPECT_FALSE(c.allows(Kind::net)) << "no network unless declared";
    EXPECT_FALSE(c.allows(Kind::send, "Writer")) << "names are case-sensitive";
    EXPECT_FALSE(c.allows(Kind::tool, "lookup_ticket ")) << "no trimming on the way in";
}

TEST(Capabilities, DefaultDeny) {
    for (const CapabilitySet& c : {CapabilitySet{}, caps("[]")}) {
        EXPECT_TRUE(c.empty());
        EXPECT_FALSE(c.allows(Kind::net));
        for (Kind k : {Kind::tool, Kind::handoff, Kind::send, Kind::publish}) {
            EXPECT_FALSE(c.allows(k, "x"));
            EXPECT_FALSE(c.allows(k, "*"));
        }
        EXPECT_EQ(c.to_text(), "");
        EXPECT_EQ(c.to_json(), json::array());
    }
}

TEST(Capabilities, NetTakesNoTarget) {
    auto c = caps(R"(["net"])");
    EXPECT_TRUE(c.allows(Kind::net));
    EXPECT_TRUE(c.allows(Kind::net, "anything")) << "the target of net is ignored";
    EXPECT_FALSE(c.allows(Kind::tool, "x"));
    auto bad = CapabilitySet::parse(R"(["net:example.com"])");
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, EINVAL);
    EXPECT_NE(bad.error().message.find("net takes no target"), std::string::npos);
}

TEST(Capabilities, RejectionsNameTheBadEntry) {
    auto r = CapabilitySet::parse(R"(["tool:x", "foo:bar"])");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, EINVAL);
    EXPECT_EQ(
        r.error().message,
        R"(caps: unknown kind "foo" in "foo:bar" (known: tool, handoff, send, publish, net))");

    struct Case {
        const char* text;
        const char* words;
    } cases[] = {
        {R"(["Tool:x"])", R"(unknown kind "Tool")"},
        {R"(["tools:x"])", R"(unknown kind "tools")"},
        {R"([""])", "empty entry"},
        {R"(["tool"])", R"("tool" needs a target: tool:NAME, or tool:* for any)"},
        {R"(["send:"])", R"("send:" needs a target)"},
        {R"(["send:../writer"])", R"(bad target "../writer" in "send:../writer")"},
        {R"(["send:.hidden"])", R"(bad target ".hidden")"},
        {R"(["handoff:a/b"])", "agent names are 1-64"},
        {R"(["publish:x~"])", "topic names are 1-64"},
        {R"(["tool:a.b"])", "tool names are 1-64"},
        {R"(["tool:a:b"])", R"(bad target "a:b")"},
        {R"(["send:**"])", R"(bad target "**")"},
        {R"(["send: writer"])", R"(bad target " writer")"},
        {R"(["send:wri\nter"])", R"(bad target "wri\x0ater")"},
        {R"(["net", 5])", "caps[1] must be a string, got number"},
        {R"({"tool:x": true})", "caps must be a JSON array of strings, got object"},
        {R"("tool:x")", "got string"},
        {R"(["tool:x")", "invalid JSON"},
    };
    for (auto& c : cases) {
        auto res = CapabilitySet::parse(c.text);
        ASSERT_FALSE(res.ok()) << c.text;
        EXPECT_EQ(res.error().code, EINVAL) << c.text;
        EXPECT_NE(res.error().message.find(c.words), std::string::npos)
            << c.text << " gave: " << res.error().message;
    }
}

TEST(Capabilities, EmbeddedNulAndOverlongNamesAreRefused) {
    auto nul = CapabilitySet::from_json(json::array({std::string("send:writer\0x", 13)}));
    ASSERT_FALSE(nul.ok());
    EXPECT_NE(nul.error().message.find(R"("writer\x00x")"), std::string::npos)
        << "the NUL is shown, not cut at: " << nul.error().message;

    std::string name64(64, 'a');
    EXPECT_TRUE(CapabilitySet::from_json(json::array({"send:" + name64})).ok());
    auto too_long = CapabilitySet::from_json(json::array({"send:" + name64 + "a"}));
    ASSERT_FALSE(too_long.ok());
    EXPECT_EQ(too_long.error().code, EINVAL);

    // A huge entry is not echoed whole into the error line.
    auto huge = CapabilitySet::from_json(json::array({"send:" + std::string(100000, 'a')}));
    ASSERT_FALSE(huge.ok());
    EXPECT_LT(huge.error().message.size(), 500u);
}

TEST(Capabilities, McpToolNamesWithDoubleUnderscore) {
    auto c = caps(R"(["tool:every__echo"])");
    EXPECT_TRUE(c.allows(Kind::tool, "every__echo"));
    EXPECT_FALSE(c.allows(Kind::tool, "every__get-sum"));
    EXPECT_FALSE(c.allows(Kind::tool, "every"));
}

TEST(Capabilities, WildcardMeansAnyValidName) {
    auto c = caps(R"(["tool:*", "send:writer"])");
    EXPECT_TRUE(c.allows(Kind::tool, "lookup_ticket"));
    EXPECT_TRUE(c.allows(Kind::tool, "every__echo"));
    EXPECT_TRUE(c.allows(Kind::tool, "*"));
    EXPECT_FALSE(c.allows(Kind::tool, "")) << "a wildcard does not vouch for garbage";
    EXPECT_FALSE(c.allows(Kind::tool, "../x"));
    EXPECT_FALSE(c.allows(Kind::tool, std::string("x\0y", 3)));
    EXPECT_FALSE(c.allows(Kind::tool, std::string(65, 'a')));
    EXPECT_FALSE(c.allows(Kind::send, "reader")) << "tool:* says nothing about send";
    EXPECT_FALSE(c.allows(Kind::send, "*")) << "holding send:writer is not holding send:*";
    EXPECT_FALSE(c.allows(Kind::net));

    auto any = caps(R"(["send:*", "handoff:*", "publish:*"])");
    EXPECT_TRUE(any.allows(Kind::send, "writer"));
    EXPECT_TRUE(any.allows(Kind::handoff, "support"));
    EXPECT_TRUE(any.allows(Kind::publish, "alerts"));
    EXPECT_FALSE(any.allows(Kind::send, ".hidden"));
    EXPECT_FALSE(any.allows(Kind::tool, "x"));
}

TEST(Capabilities, PrintedSortedDeduplicatedAndStable) {
    auto a =
        caps(R"(["tool:b", "send:x", "tool:a", "net", "tool:b", "handoff:h", "publish:p", "net"])");
    auto b = caps(R"(["publish:p", "handoff:h", "net", "tool:a", "send:x", "tool:b"])");
    json expected = {"handoff:h", "net", "publish:p", "send:x", "tool:a", "tool:b"};
    EXPECT_EQ(a.to_json(), expected);
    EXPECT_EQ(b.to_json(), expected) << "order of the config does not matter";
    EXPECT_EQ(a, b);
    EXPECT_EQ(a.to_text(), "handoff:h\nnet\npublish:p\nsend:x\ntool:a\ntool:b\n");

    auto again = CapabilitySet::from_json(a.to_json());
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, a) << "what is printed parses back to the same set";
}

TEST(Capabilities, WildcardSubsumesNamedEntriesOfItsKind) {
    auto c = caps(R"(["tool:x", "tool:*", "send:a", "tool:y"])");
    EXPECT_EQ(c.to_json(), (json{"send:a", "tool:*"}));
    EXPECT_EQ(c, caps(R"(["tool:*", "send:a"])"));
}

TEST(Capabilities, PledgeNarrowsToThePledge) {
    auto held = caps(kExampleCaps);
    auto r = held.narrow(caps(R"(["send:writer", "tool:lookup_ticket"])"));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE(r->allows(Kind::send, "writer"));
    EXPECT_TRUE(r->allows(Kind::tool, "lookup_ticket"));
    EXPECT_FALSE(r->allows(Kind::handoff, "support")) << "dropped by the pledge";
    EXPECT_FALSE(r->allows(Kind::publish, "alerts"));
    EXPECT_EQ(r->to_text(), "send:writer\ntool:lookup_ticket\n");

    auto same = held.narrow(held);
    ASSERT_TRUE(same.ok());
    EXPECT_EQ(*same, held) << "pledging everything held changes nothing";

    auto none = held.narrow(CapabilitySet{});
    ASSERT_TRUE(none.ok());
    EXPECT_TRUE(none->empty());
}

TEST(Capabilities, PledgeNeverWidens) {
    auto held =
        caps(R"(["tool:lookup_ticket", "handoff:support", "send:writer", "publish:alerts"])");
    struct Case {
        const char* pledge;
        const char* message;
    } cases[] = {
        {R"(["tool:rm"])", "pledge would widen: tool:rm is not held"},
        {R"(["handoff:writer"])", "pledge would widen: handoff:writer is not held"},
        {R"(["send:support"])", "pledge would widen: send:support is not held"},
        {R"(["publish:other"])", "pledge would widen: publish:other is not held"},
        {R"(["net"])", "pledge would widen: net is not held"},
        {R"(["tool:*"])", "pledge would widen: tool:* is not held"},
        {R"(["send:*"])", "pledge would widen: send:* is not held"},
        // The first widening entry (in printed order) is named, and the
        // held entries beside it do not rescue the pledge.
        {R"(["send:writer", "send:zed", "handoff:other"])",
         "pledge would widen: handoff:other is not held"},
    };
    for (auto& c : cases) {
        auto r = held.narrow(caps(c.pledge));
        ASSERT_FALSE(r.ok()) << c.pledge;
        EXPECT_EQ(r.error().code, EPERM) << c.pledge;
        EXPECT_EQ(r.error().message, c.message);
    }
}

TEST(Capabilities, PledgeUnderWildcard) {
    auto held = caps(R"(["tool:*", "net"])");
    auto r = held.narrow(caps(R"(["tool:x"])"));
    ASSERT_TRUE(r.ok()) << "holding tool:* allows pledging tool:x";
    EXPECT_TRUE(r->allows(Kind::tool, "x"));
    EXPECT_FALSE(r->allows(Kind::tool, "y"));
    EXPECT_FALSE(r->allows(Kind::net));

    auto keep = held.narrow(caps(R"(["tool:*"])"));
    ASSERT_TRUE(keep.ok());
    EXPECT_TRUE(keep->allows(Kind::tool, "y"));

    auto widen = caps(R"(["tool:x"])").narrow(caps(R"(["tool:*"])"));
    ASSERT_FALSE(widen.ok());
    EXPECT_EQ(widen.error().code, EPERM);
}

TEST(Capabilities, NarrowingIsOneWay) {
    auto held = caps(kExampleCaps);
    auto narrowed = held.narrow(caps(R"(["send:writer"])"));
    ASSERT_TRUE(narrowed.ok());
    auto back = narrowed->narrow(held);
    ASSERT_FALSE(back.ok()) << "a narrowed agent cannot pledge its way back";
    EXPECT_EQ(back.error().code, EPERM);
}

TEST(Capabilities, IntersectKeepsWhatBothAllow) {
    auto held = caps(R"(["tool:*", "send:a", "send:b", "net"])");
    auto grant = caps(R"(["tool:x", "tool:y", "send:*", "publish:p"])");
    EXPECT_EQ(held.intersect(grant).to_json(), json({"send:a", "send:b", "tool:x", "tool:y"}));
    EXPECT_EQ(grant.intersect(held), held.intersect(grant));
    EXPECT_TRUE(held.intersect(CapabilitySet{}).empty());
    EXPECT_EQ(held.intersect(held), held);
}

TEST(Capabilities, SingleCapabilityParseAndPrint) {
    auto c = Capability::parse("handoff:support");
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->kind, Kind::handoff);
    EXPECT_EQ(c->target, "support");
    EXPECT_EQ(c->to_string(), "handoff:support");
    auto n = Capability::parse("net");
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(n->target, "");
    EXPECT_EQ(n->to_string(), "net");
    EXPECT_TRUE(Capability::parse("tool:*")->wildcard());
}

// ---- unveil ----------------------------------------------------------------

TEST(Unveil, ConfigExampleModes) {
    auto u = unveil(kExampleUnveil);
    EXPECT_EQ(u.mode_for("/vault/kb"), Mode::r);
    EXPECT_EQ(u.mode_for("/vault/kb/a.md"), Mode::r);
    EXPECT_EQ(u.mode_for("/vault/kb/deep/er/b.md"), Mode::r);
    EXPECT_EQ(u.mode_for("/vault/research"), Mode::rw);
    EXPECT_EQ(u.mode_for("/vault/research/notes.md"), Mode::rw);
    EXPECT_EQ(u.mode_for("/vault/other.md"), Mode::none);
    EXPECT_EQ(u.mode_for("/vault"), Mode::none) << "an ancestor is visible, not covered";
    EXPECT_EQ(u.mode_for("/"), Mode::none);
    EXPECT_EQ(u.mode_for("/agents/writer/inbox"), Mode::none);
}

TEST(Unveil, DefaultDeny) {
    UnveilMap u;
    EXPECT_TRUE(u.empty());
    EXPECT_EQ(u.mode_for("/vault/kb"), Mode::none);
    EXPECT_EQ(u.mode_for("/"), Mode::none);
    EXPECT_TRUE(u.visible("/")) << "the view itself exists, empty";
    EXPECT_FALSE(u.visible("/vault"));
    EXPECT_TRUE(u.visible_children("/").empty());
    EXPECT_TRUE(unveil("{}").empty());
}

TEST(Unveil, PrefixesAreWholeComponents) {
    auto u = unveil(kExampleUnveil);
    EXPECT_EQ(u.mode_for("/vault/kbx"), Mode::none);
    EXPECT_EQ(u.mode_for("/vault/kbx/a.md"), Mode::none);
    EXPECT_EQ(u.mode_for("/vault/kb.md"), Mode::none);
    EXPECT_EQ(u.mode_for("/vault/kb-old/a"), Mode::none);
    EXPECT_EQ(u.mode_for("/vault/k"), Mode::none);
    EXPECT_EQ(u.mode_for("/vault/researcher"), Mode::none);
}

TEST(Unveil, EscapeAttemptsStayInside) {
    auto u = unveil(kExampleUnveil);
    EXPECT_EQ(u.mode_for("/vault/kb/../research"), Mode::none)
        << "r on kb must not become rw on research via ..";
    EXPECT_EQ(u.mode_for("/vault/kb/../research/x"), Mode::none);
    EXPECT_EQ(u.mode_for("/vault/research/../kb"), Mode::none);
    EXPECT_EQ(u.mode_for("/vault/kb/.."), Mode::none);
    EXPECT_EQ(u.mode_for("/vault/kb/../../etc/passwd"), Mode::none);
    EXPECT_EQ(u.mode_for("/vault/kb/x/../../research"), Mode::none);
    EXPECT_EQ(u.mode_for("/../vault/kb"), Mode::none) << "not even a harmless ..";
    EXPECT_EQ(u.mode_for(std::string("/vault/kb\0x", 11)), Mode::none);
    EXPECT_EQ(u.mode_for(std::string("/vault/research/\0", 17)), Mode::none);
    EXPECT_EQ(u.mode_for("vault/kb"), Mode::none) << "relative paths name nothing";
    EXPECT_EQ(u.mode_for("kb/a.md"), Mode::none);
    EXPECT_EQ(u.mode_for(""), Mode::none);

    // Spellings that only look odd are normalized, not refused.
    EXPECT_EQ(u.mode_for("/vault/kb/./x"), Mode::r);
    EXPECT_EQ(u.mode_for("//vault//kb/"), Mode::r);
    EXPECT_EQ(u.mode_for("/vault/./research/."), Mode::rw);
    EXPECT_EQ(u.mode_for("/vault/kb/..."), Mode::r) << "\"...\" is an ordinary name";
    EXPECT_EQ(u.mode_for("/vault/kb/..x"), Mode::r);
    EXPECT_EQ(u.mode_for("/vault/kb/.hidden"), Mode::r);
}

TEST(Unveil, VeryLongPaths) {
    auto u = unveil(kExampleUnveil);
    // Exactly the longest path a syscall takes, in legal components: covered.
    std::string path = "/vault/kb";
    while (path.size() + 1 + 200 <= UnveilMap::kMaxPath) path += "/" + std::string(200, 'a');
    path += "/" + std::string(UnveilMap::kMaxPath - path.size() - 1, 'b');
    ASSERT_EQ(path.size(), UnveilMap::kMaxPath);
    EXPECT_EQ(u.mode_for(path), Mode::r);
    EXPECT_EQ(u.mode_for(path + "c"), Mode::none) << "one byte past PATH_MAX names nothing";
    EXPECT_EQ(u.mode_for("/vault/kb/" + std::string(1 << 20, 'x')), Mode::none);
    // Slashes count too: padding with them is no way past the limit.
    EXPECT_EQ(u.mode_for(std::string(UnveilMap::kMaxPath, '/') + "vault/kb"), Mode::none);

    EXPECT_EQ(u.mode_for("/vault/kb/" + std::string(NAME_MAX, 'n')), Mode::r);
    EXPECT_EQ(u.mode_for("/vault/kb/" + std::string(NAME_MAX + 1, 'n')), Mode::none);

    auto key_too_long = UnveilMap::from_json({{"/vault/" + std::string(5000, 'a'), "r"}});
    ASSERT_FALSE(key_too_long.ok());
    EXPECT_EQ(key_too_long.error().code, EINVAL);
    EXPECT_NE(key_too_long.error().message.find("longer than 4095"), std::string::npos)
        << key_too_long.error().message;
    EXPECT_LT(key_too_long.error().message.size(), 500u) << "the path is not echoed whole";
    auto comp_too_long = UnveilMap::from_json({{"/vault/" + std::string(NAME_MAX + 1, 'a'), "r"}});
    ASSERT_FALSE(comp_too_long.ok());
    EXPECT_EQ(comp_too_long.error().code, EINVAL);
}

TEST(Unveil, LongestPrefixWins) {
    auto u = unveil(R"({"/vault": "rw", "/vault/secret": "r"})");
    EXPECT_EQ(u.mode_for("/vault/a.md"), Mode::rw);
    EXPECT_EQ(u.mode_for("/vault/secret"), Mode::r);
    EXPECT_EQ(u.mode_for("/vault/secret/plans.md"), Mode::r);
    EXPECT_EQ(u.mode_for("/vault/secretx"), Mode::rw);
    EXPECT_EQ(u.mode_for("/vault/secret/../a.md"), Mode::none);
}

TEST(Unveil, RootCoversEverything) {
    auto u = unveil(R"({"/": "r"})");
    EXPECT_EQ(u.mode_for("/"), Mode::r);
    EXPECT_EQ(u.mode_for("/vault/anything"), Mode::r);
    EXPECT_EQ(u.mode_for("/vault/../x"), Mode::none);
    EXPECT_TRUE(u.visible_children("/").empty()) << "covered: list the real directory";
}

TEST(Unveil, RejectionsSayWhatIsWrong) {
    struct Case {
        const char* text;
        const char* words;
    } cases[] = {
        {R"({"/vault/kb": "w"})", R"(mode of "/vault/kb" must be "r" or "rw", got "w")"},
        {R"({"/vault/kb": ""})", R"(got "")"},
        {R"({"/vault/kb": "R"})", R"(got "R")"},
        {R"({"/vault/kb": "rwx"})", R"(got "rwx")"},
        {R"({"/vault/kb": "none"})", R"(got "none")"},
        {R"({"/vault/kb": 1})", "got number"},
        {R"({"/vault/kb": null})", "got null"},
        {R"({"vault/kb": "r"})", R"("vault/kb" is relative)"},
        {R"({"": "r"})", "empty path"},
        {R"({"/vault/./kb": "r"})", R"(has a "." component)"},
        {R"({"/vault/kb/.": "r"})", R"(has a "." component)"},
        {R"({"/vault/../etc": "r"})", R"(has a ".." component)"},
        {R"({"/vault/kb/..": "r"})", R"(has a ".." component)"},
        {R"({"//vault": "r"})", "empty component"},
        {R"({"/vault//kb": "r"})", "empty component"},
        {R"({"/vault/a\nb": "r"})", "control character"},
        {R"({"/vault/kb": "r", "/vault/kb/": "rw"})", "name the same path"},
        {R"(["/vault/kb"])", "unveil must be a JSON object"},
        {R"("/vault/kb")", "got string"},
        {R"({"/vault/kb": "r")", "invalid JSON"},
    };
    for (auto& c : cases) {
        auto r = UnveilMap::parse(c.text);
        ASSERT_FALSE(r.ok()) << c.text;
        EXPECT_EQ(r.error().code, EINVAL) << c.text;
        EXPECT_NE(r.error().message.find(c.words), std::string::npos)
            << c.text << " gave: " << r.error().message;
    }

    json nul_key = json::object();
    nul_key[std::string("/vault/kb\0x", 11)] = "r";
    auto nul = UnveilMap::from_json(nul_key);
    ASSERT_FALSE(nul.ok());
    EXPECT_EQ(nul.error().code, EINVAL);
    EXPECT_NE(nul.error().message.find(R"("/vault/kb\x00x")"), std::string::npos)
        << nul.error().message;
}

TEST(Unveil, TrailingSlashesAreNormalized) {
    auto u = unveil(R"({"/vault/kb/": "r", "/vault/research///": "rw"})");
    EXPECT_EQ(u.to_json(), (json{{"/vault/kb", "r"}, {"/vault/research", "rw"}}));
    EXPECT_EQ(u, unveil(kExampleUnveil));
    EXPECT_EQ(u.mode_for("/vault/kb/a"), Mode::r);
}

TEST(Unveil, VisibleAncestorsAndCoveredPaths) {
    auto u = unveil(kExampleUnveil);
    EXPECT_TRUE(u.visible("/"));
    EXPECT_TRUE(u.visible("/vault"));
    EXPECT_TRUE(u.visible("/vault/"));
    EXPECT_TRUE(u.visible("//vault/./"));
    EXPECT_TRUE(u.visible("/vault/kb"));
    EXPECT_TRUE(u.visible("/vault/kb/sub/dir"));
    EXPECT_FALSE(u.visible("/vault/other"));
    EXPECT_FALSE(u.visible("/vaultx"));
    EXPECT_FALSE(u.visible("/vault/k")) << "a string prefix of a key is not an ancestor";
    EXPECT_FALSE(u.visible("/agents"));
    EXPECT_FALSE(u.visible("/vault/kb/../../agents"));
    EXPECT_FALSE(u.visible("/vault/kb/.."));
    EXPECT_FALSE(u.visible(std::string("/vault\0/kb", 10)));
    EXPECT_FALSE(u.visible("vault"));
    EXPECT_FALSE(u.visible(""));
}

TEST(Unveil, VisibleChildrenListOnlyWhatLeadsToUnveiledPaths) {
    auto u = unveil(kExampleUnveil);
    EXPECT_EQ(u.visible_children("/"), (std::vector<std::string>{"vault"}));
    EXPECT_EQ(u.visible_children("/vault"), (std::vector<std::string>{"kb", "research"}));
    EXPECT_EQ(u.visible_children("//vault/"), (std::vector<std::string>{"kb", "research"}));
    EXPECT_TRUE(u.visible_children("/vault/kb").empty()) << "covered: list the real directory";
    EXPECT_TRUE(u.visible_children("/vault/other").empty());
    EXPECT_TRUE(u.visible_children("/vault/kb/..").empty());
    EXPECT_TRUE(u.visible_children("/agents").empty());

    // Names that sort around '/' ("b-x", "b.d" < "b/...") are still grouped.
    auto v = unveil(R"({"/a/b-x/y": "r", "/a/b/c": "r", "/a/b.d": "rw", "/a/b/e/f": "r"})");
    EXPECT_EQ(v.visible_children("/a"), (std::vector<std::string>{"b", "b-x", "b.d"}));
    EXPECT_EQ(v.visible_children("/a/b"), (std::vector<std::string>{"c", "e"}));
    EXPECT_EQ(v.visible_children("/a/b/e"), (std::vector<std::string>{"f"}));
    EXPECT_TRUE(v.visible_children("/a/b.d").empty());
}

TEST(Unveil, PledgeNarrows) {
    auto held = unveil(kExampleUnveil);
    struct Case {
        const char* pledge;
    } ok[] = {
        {"{}"},                                                        // drop everything
        {R"({"/vault/kb": "r"})"},                                     // drop a path
        {R"({"/vault/kb": "r", "/vault/research": "r"})"},             // rw -> r
        {R"({"/vault/research/drafts": "rw"})"},                       // sub-path, same mode
        {R"({"/vault/research/drafts": "r"})"},                        // sub-path, lower
        {R"({"/vault/kb/faq": "r", "/vault/research": "rw"})"},        // sub-path of r
        {R"({"/vault/research": "r", "/vault/research/out": "rw"})"},  // hole stays within held
        {kExampleUnveil},                                              // everything held
    };
    for (auto& c : ok) {
        auto pledged = unveil(c.pledge);
        auto r = held.narrow(pledged);
        ASSERT_TRUE(r.ok()) << c.pledge << ": " << r.error().message;
        EXPECT_EQ(*r, pledged) << c.pledge;
    }

    auto r = held.narrow(unveil(R"({"/vault/research/drafts": "r"})"));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->mode_for("/vault/research/drafts/a"), Mode::r);
    EXPECT_EQ(r->mode_for("/vault/research/other"), Mode::none);
    EXPECT_EQ(r->mode_for("/vault/kb/a"), Mode::none);
    EXPECT_EQ(r->visible_children("/vault/research"), (std::vector<std::string>{"drafts"}));
}

TEST(Unveil, PledgeNeverWidens) {
    auto held = unveil(kExampleUnveil);
    struct Case {
        const char* pledge;
        const char* message;
    } cases[] = {
        {R"({"/vault/other": "r"})", "pledge would widen: /vault/other is not unveiled"},
        {R"({"/vault/kbx": "r"})", "pledge would widen: /vault/kbx is not unveiled"},
        {R"({"/vault/kb": "rw"})", "pledge would widen: /vault/kb rw, but only r is held"},
        {R"({"/vault/kb/sub": "rw"})", "pledge would widen: /vault/kb/sub rw, but only r is held"},
        {R"({"/vault": "r"})", "pledge would widen: /vault is not unveiled"},
        {R"({"/": "r"})", "pledge would widen: / is not unveiled"},
        // The first widening path is named, whatever else is fine.
        {R"({"/vault/kb": "r", "/vault/kb/z": "rw", "/vault/zzz": "r"})",
         "pledge would widen: /vault/kb/z rw, but only r is held"},
    };
    for (auto& c : cases) {
        auto r = held.narrow(unveil(c.pledge));
        ASSERT_FALSE(r.ok()) << c.pledge;
        EXPECT_EQ(r.error().code, EPERM) << c.pledge;
        EXPECT_EQ(r.error().message, c.message);
    }
}

TEST(Unveil, PledgeCannotPaperOverANarrowerHeldEntry) {
    auto held = unveil(R"({"/vault": "rw", "/vault/secret": "r"})");
    auto r = held.narrow(unveil(R"({"/vault": "rw"})"));
    ASSERT_FALSE(r.ok()) << "that pledge would make /vault/secret writable";
    EXPECT_EQ(r.error().code, EPERM);
    EXPECT_EQ(
        r.error().message,
        "pledge would widen: /vault rw would make /vault/secret rw, but only r is held there");

    EXPECT_TRUE(held.narrow(unveil(R"({"/vault": "r"})")).ok());
    EXPECT_TRUE(held.narrow(unveil(R"({"/vault": "rw", "/vault/secret": "r"})")).ok());
    EXPECT_TRUE(held.narrow(unveil(R"({"/vault/secret": "r"})")).ok());
    EXPECT_FALSE(held.narrow(unveil(R"({"/vault/secret/x": "rw"})")).ok());
}

TEST(Unveil, NarrowingIsOneWay) {
    auto held = unveil(kExampleUnveil);
    auto narrowed = held.narrow(unveil(R"({"/vault/research": "r"})"));
    ASSERT_TRUE(narrowed.ok());
    auto back = narrowed->narrow(held);
    ASSERT_FALSE(back.ok()) << "a narrowed agent cannot pledge its way back";
    EXPECT_EQ(back.error().code, EPERM);
}

TEST(Unveil, IntersectTakesTheLowerModeEverywhere) {
    auto a = unveil(R"({"/vault": "rw", "/vault/secret": "r", "/vault/kb": "rw"})");
    auto b = unveil(R"({"/vault/kb": "r", "/vault/research": "rw", "/vault/secret/x": "rw"})");
    auto both = a.intersect(b);
    EXPECT_EQ(both.to_json(), json::parse(R"({"/vault/kb": "r", "/vault/research": "rw",
                                              "/vault/secret/x": "r"})"));
    for (const char* p : {"/vault", "/vault/kb/a", "/vault/research/n", "/vault/secret/x/y",
                          "/vault/secret/z", "/vault/other"})
        EXPECT_EQ(both.mode_for(p), std::min(a.mode_for(p), b.mode_for(p))) << p;
    EXPECT_EQ(b.intersect(a), both);
    EXPECT_TRUE(a.intersect(UnveilMap{}).empty());
}

TEST(Unveil, PrintedSortedAndStable) {
    auto u = unveil(R"({"/vault/research": "rw", "/vault/kb": "r", "/a b/c": "r"})");
    EXPECT_EQ(u.to_text(), "r /a b/c\nr /vault/kb\nrw /vault/research\n");
    auto again = UnveilMap::from_json(u.to_json());
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, u);
    EXPECT_EQ(mode_name(Mode::none), "none");
    EXPECT_EQ(mode_name(Mode::r), "r");
    EXPECT_EQ(mode_name(Mode::rw), "rw");
}
