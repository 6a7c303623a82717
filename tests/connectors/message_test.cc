#include "sluice/connectors/message.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace sluice::connectors {
namespace {

TEST(MessageId, RoundTripsSourceAndPosition) {
  const std::string id = message_id("9f3c0a17d2b44e61", 1042);
  EXPECT_EQ(id, "9f3c0a17d2b44e61:1042");
  std::string_view src;
  uint64_t pos = 0;
  ASSERT_TRUE(parse_message_id(id, &src, &pos));
  EXPECT_EQ(src, "9f3c0a17d2b44e61");
  EXPECT_EQ(pos, 1042u);
}

TEST(MessageId, RejectsForeignIds) {
  std::string_view src;
  uint64_t pos = 0;
  for (const char* bad : {"", ":1", "abc", "abc:", "abc:x1", "a b:1", "abc:-1", "abc:1:", "abc:18446744073709551616"})
    EXPECT_FALSE(parse_message_id(bad, &src, &pos)) << bad;
}

TEST(EventMeta, RoundTripsAndRejectsMalformedText) {
  EventMeta m{7, 3, 2, 1, 1700000000123456789, true};
  EventMeta back;
  ASSERT_TRUE(parse_event_meta(format_event_meta(m), &back));
  EXPECT_EQ(back, m);
  for (const char* bad : {"", "1 2 3 4 5", "1 2 3 4 5 6 7", "0 1 1 0 5 0", "1 2 3 256 5 0", "1 2 3 4 5 2", "1 2 3 4 x 0",
                          "1  2 3 4 5 0"})
    EXPECT_FALSE(parse_event_meta(bad, &back)) << bad;
}

TEST(Id128Text, RoundTrips) {
  Id128 id{0x0123456789abcdefull, 0xfedcba9876543210ull};
  Id128 back;
  ASSERT_TRUE(parse_id128(format_id128(id), &back));
  EXPECT_EQ(back, id);
  EXPECT_FALSE(parse_id128("xyz", &back));
}

TEST(IdempotencyKey, DistinctPositionsAndSourcesDiffer) {
  EXPECT_FALSE(idempotency_key_for("a", 1) == idempotency_key_for("a", 2));
  EXPECT_FALSE(idempotency_key_for("a", 1) == idempotency_key_for("b", 1));
  EXPECT_EQ(idempotency_key_for("a", 1).lo, 1u);
}

TEST(Subject, ReplacesBytesThatCannotBeInASubjectToken) {
  EXPECT_EQ(default_subject("sluice", "account-7", 1), "sluice.account-7.1");
  EXPECT_EQ(default_subject("a.b", "x.y *>z", 12), "a.b.x_y___z.12");
  EXPECT_TRUE(validate_subject_prefix("sluice.prod").ok());
  EXPECT_FALSE(validate_subject_prefix("").ok());
  EXPECT_FALSE(validate_subject_prefix("a..b").ok());
  EXPECT_FALSE(validate_subject_prefix("a.>").ok());
  EXPECT_FALSE(validate_stream_name("a.b").ok());
  EXPECT_TRUE(validate_stream_name("SLUICE").ok());
}

TEST(NatsUrls, AcceptsListsAndNormalises) {
  auto r = parse_nats_urls("nats://127.0.0.1:4222,localhost:5000,tls://[::1]:7,example.org");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, (std::vector<std::string>{"nats://127.0.0.1:4222", "nats://localhost:5000", "tls://[::1]:7",
                                           "nats://example.org:4222"}));
}

TEST(NatsUrls, RejectsBadUrlsNamingThem) {
  for (const char* bad : {"", "http://x:1", "nats://", "nats://h:0", "nats://h:65536", "nats://h:x", "h:", "nats://[::1",
                          "a,,b", "bad host:1"}) {
    auto r = parse_nats_urls(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok() && *bad != '\0') {
      EXPECT_NE(r.status().message().find("bad NATS URL"), std::string::npos) << bad;
    }
  }
}

TEST(SourceId, IsMadeOnceAndKept) {
  const std::string dir = ::testing::TempDir() + "/sluice_source_id_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto a = load_or_create_source_id(dir);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  EXPECT_EQ(a->size(), 16u);
  auto b = load_or_create_source_id(dir);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sluice::connectors
