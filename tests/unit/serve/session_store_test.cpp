#include "daemon/serve/session_store.h"

#include <gtest/gtest.h>

namespace edgellm::serve {
namespace {

class SessionStoreTest : public ::testing::Test {
 protected:
  SessionStore MakeStore(int32_t max_sessions) {
    return SessionStore({.max_sessions = max_sessions, .idle_ttl = std::chrono::seconds(60)}, [this] { return now_; });
  }
  SessionStore::Clock::time_point now_ = SessionStore::Clock::time_point() + std::chrono::hours(1);
};

TEST_F(SessionStoreTest, ATurnThatCompletesExtendsTheConversation) {
  SessionStore store = MakeStore(4);
  EXPECT_EQ(*store.BeginTurn("me", "chat-1"), "");
  store.EndTurn("chat-1", "Hello. Hi!");
  EXPECT_EQ(*store.BeginTurn("me", "chat-1"), "Hello. Hi!");
  store.EndTurn("chat-1", std::nullopt);  // failed or cancelled: unchanged
  EXPECT_EQ(*store.BeginTurn("me", "chat-1"), "Hello. Hi!");
}

TEST_F(SessionStoreTest, ASessionBelongsToTheCallerThatBeganIt) {
  SessionStore store = MakeStore(4);
  ASSERT_TRUE(store.BeginTurn("device-1", "chat").ok());
  store.EndTurn("chat", "secret conversation");
  const absl::StatusOr<std::string> other = store.BeginTurn("device-2", "chat");
  EXPECT_EQ(other.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*store.BeginTurn("device-1", "chat"), "secret conversation");
}

TEST_F(SessionStoreTest, OneTurnAtATime) {
  SessionStore store = MakeStore(4);
  ASSERT_TRUE(store.BeginTurn("me", "a").ok());
  EXPECT_EQ(store.BeginTurn("me", "a").status().code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(store.BeginTurn("me", "b").ok());
  store.EndTurn("a", "x");
  EXPECT_TRUE(store.BeginTurn("me", "a").ok());
}

TEST_F(SessionStoreTest, RefusesMalformedIds) {
  SessionStore store = MakeStore(4);
  EXPECT_EQ(store.BeginTurn("me", "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store.BeginTurn("me", std::string(129, 'a')).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store.BeginTurn("me", "a b").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store.BeginTurn("me", "a\n").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(store.BeginTurn("me", "user-7:chat_2.v1").ok());
}

TEST_F(SessionStoreTest, EvictsTheLeastRecentlyUsedIdleSession) {
  SessionStore store = MakeStore(2);
  ASSERT_TRUE(store.BeginTurn("me", "old").ok());
  store.EndTurn("old", "old text");
  now_ += std::chrono::seconds(1);
  ASSERT_TRUE(store.BeginTurn("me", "busy").ok());  // stays in its turn
  now_ += std::chrono::seconds(1);
  ASSERT_TRUE(store.BeginTurn("me", "new").ok());  // evicts "old", the only idle one
  EXPECT_EQ(store.size(), 2u);
  store.EndTurn("new", "n");
  EXPECT_EQ(*store.BeginTurn("me", "old"), "");  // a new session now, evicting "new"
  // Every session in a turn: nothing can be evicted.
  EXPECT_EQ(store.BeginTurn("me", "third").status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(SessionStoreTest, ForgetsSessionsIdleLongerThanTheTtl) {
  SessionStore store = MakeStore(4);
  ASSERT_TRUE(store.BeginTurn("me", "a").ok());
  store.EndTurn("a", "kept");
  now_ += std::chrono::seconds(59);
  EXPECT_EQ(*store.BeginTurn("me", "a"), "kept");
  store.EndTurn("a", "kept");
  now_ += std::chrono::seconds(61);
  EXPECT_EQ(*store.BeginTurn("me", "a"), "");
}

}  // namespace
}  // namespace edgellm::serve
