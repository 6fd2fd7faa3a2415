#include "daemon/serve/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "common/mutex.h"
#include "daemon/engine/generator.h"
#include "daemon/serve/serve_metrics.h"
#include "daemon/serve/smoke_test.h"
#include "tests/support/model_fixtures.h"

namespace edgellm::serve {
namespace {

using engine::TokenId;

// What one request produced, gathered from its events.
struct Outcome {
  absl::Status status;
  engine::FinishReason finish_reason = engine::FinishReason::kCancelled;
  std::vector<TokenId> tokens;
  Clock::time_point first_event, last_event;
};

class Collector {
 public:
  EventSink Sink() {
    return [this](GenerationEvent event) {
      MutexLock lock(&mu_);
      if (outcome_.first_event == Clock::time_point{}) outcome_.first_event = Clock::now();
      outcome_.tokens.insert(outcome_.tokens.end(), event.token_ids.begin(), event.token_ids.end());
      if (event.last) {
        outcome_.status = event.status;
        outcome_.finish_reason = event.finish_reason;
        outcome_.last_event = Clock::now();
        done_.Notify();
      }
    };
  }
  Outcome Wait() {
    done_.WaitForNotification();
    MutexLock lock(&mu_);
    return outcome_;
  }

 private:
  Mutex mu_;
  Outcome outcome_;
  Notification done_;
};

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(LoadModel(engine::GgmlType::kF32, 1)); }
  // The synthetic test-spm model at `type`, on `threads` compute threads, as model_.
  void LoadModel(engine::GgmlType type, int threads) {
    engine::ModelOptions options;
    options.threads = threads;
    options.context_length = 64;
    auto model = engine::LlamaModel::Load(testing::SyntheticModel("test-spm", type), options);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
  }
  std::unique_ptr<Scheduler> MakeScheduler(int32_t blocks, SchedulerConfig config = {},
                                           ServeMetrics* metrics = nullptr) {
    auto pool = model_->NewBlockPool({.block_size = 8, .block_count = blocks});
    EXPECT_TRUE(pool.ok()) << pool.status();
    auto scheduler = std::make_unique<Scheduler>(*model_, *pool, config, metrics);
    scheduler->Start();
    return scheduler;
  }
  GenerationRequest Request(const std::vector<TokenId>& prompt, int32_t max_tokens) {
    GenerationRequest request;
    request.prompt_ids = prompt;
    request.options.max_tokens = max_tokens;
    request.options.sampling.temperature = 0.0f;
    request.options.ignore_eos = true;
    return request;
  }
  // The tokens plain one-sequence generation gives.
  std::vector<TokenId> Reference(const std::vector<TokenId>& prompt, int32_t max_tokens) {
    GenerationRequest request = Request(prompt, max_tokens);
    auto result = engine::GenerateFromTokens(*model_, prompt, request.options, nullptr);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? result->token_ids : std::vector<TokenId>{};
  }
  std::unique_ptr<engine::LlamaModel> model_;
};

std::vector<TokenId> Prompt(int n, int salt) {
  std::vector<TokenId> prompt = {1};
  for (int i = 1; i < n; ++i) prompt.push_back(static_cast<TokenId>(3 + (i * 31 + salt * 17) % 300));
  return prompt;
}

TEST_F(SchedulerTest, ARequestWaitsUntilTheKvBlocksItMayNeedAreFree) {
  // 6 blocks of 8 positions: one request of 20 + 24 positions fits, two do not.
  auto scheduler = MakeScheduler(6, {.max_active = 4});
  const std::vector<TokenId> a = Prompt(20, 1), b = Prompt(20, 2);
  Collector first, second;
  ASSERT_TRUE(scheduler->Submit(Request(a, 24), first.Sink()).ok());
  ASSERT_TRUE(scheduler->Submit(Request(b, 24), second.Sink()).ok());
  const Outcome one = first.Wait(), two = second.Wait();
  ASSERT_TRUE(one.status.ok() && two.status.ok()) << one.status << two.status;
  EXPECT_GE(two.first_event, one.last_event);  // admitted only once the first had finished
  EXPECT_EQ(one.tokens, Reference(a, 24));
  EXPECT_EQ(two.tokens, Reference(b, 24));
}

// What on-device training pauses on: busy the moment a request is queued,
// idle once none is left, told on every change.
TEST_F(SchedulerTest, ItSaysWhenItTurnsBusyAndIdle) {
  Mutex mu;
  std::vector<bool> changes;
  SchedulerConfig config;
  config.on_busy_change = [&](bool busy) {
    MutexLock lock(&mu);
    if (changes.empty() || changes.back() != busy) changes.push_back(busy);
  };
  auto scheduler = MakeScheduler(12, config);
  auto idle = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return !changes.empty() && !changes.back(); };
  Collector first;
  ASSERT_TRUE(scheduler->Submit(Request(Prompt(10, 1), 8), first.Sink()).ok());
  {
    MutexLock lock(&mu);
    // Said before Submit returned; the request may have finished since, and idle been said too.
    EXPECT_NE(std::find(changes.begin(), changes.end(), true), changes.end()) << "busy before Submit returns";
  }
  ASSERT_TRUE(first.Wait().status.ok());
  MutexLock lock(&mu);
  mu.Await(absl::Condition(&idle));
  // The loop may have said idle once before the request came.
  if (changes.front() == false && changes.size() > 2) changes.erase(changes.begin());
  EXPECT_EQ(changes, (std::vector<bool>{true, false}));
}

TEST_F(SchedulerTest, RequestsThatFitRunTogether) {
  auto scheduler = MakeScheduler(12, {.max_active = 4});
  const std::vector<TokenId> a = Prompt(20, 1), b = Prompt(20, 2);
  Collector first, second;
  // The first request's first token waits for the second to be submitted, so
  // the second arrives while the first has 23 tokens to go, however fast they come.
  Notification second_submitted;
  EventSink first_sink = first.Sink();
  ASSERT_TRUE(scheduler
                  ->Submit(Request(a, 24),
                           [&](GenerationEvent event) {
                             second_submitted.WaitForNotification();
                             first_sink(std::move(event));
                           })
                  .ok());
  ASSERT_TRUE(scheduler->Submit(Request(b, 24), second.Sink()).ok());
  second_submitted.Notify();
  const Outcome one = first.Wait(), two = second.Wait();
  EXPECT_LT(two.first_event, one.last_event);
  EXPECT_EQ(one.tokens, Reference(a, 24));
  EXPECT_EQ(two.tokens, Reference(b, 24));
}

// A step's sequences are sampled on the engine's threads side by side: each
// seeded request running with three others (on two threads) gives exactly
// the tokens it gives alone. A quantized model, whose rows do not depend on
// how many a forward carries, so that any difference is the sampling's.
TEST_F(SchedulerTest, SampledRequestsRunningTogetherGiveWhatEachGivesAlone) {
  ASSERT_NO_FATAL_FAILURE(LoadModel(engine::GgmlType::kQ8_0, 2));
  auto scheduler = MakeScheduler(24, {.max_active = 4});
  constexpr int kRequests = 4;
  std::vector<GenerationRequest> requests;
  for (int i = 0; i < kRequests; ++i) {
    GenerationRequest request = Request(Prompt(12, i), 20);
    request.options.sampling.temperature = 0.9f;
    request.options.sampling.seed = 100 + static_cast<uint64_t>(i);
    requests.push_back(request);
  }
  // No request's first token goes out before all are submitted, so they share steps.
  Notification all_submitted;
  std::vector<Collector> collectors(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    EventSink sink = collectors[i].Sink();
    ASSERT_TRUE(scheduler
                    ->Submit(requests[i],
                             [&all_submitted, sink](GenerationEvent event) {
                               all_submitted.WaitForNotification();
                               sink(std::move(event));
                             })
                    .ok());
  }
  all_submitted.Notify();
  // Every request ends, and the scheduler's loop with them, before any runs
  // alone: the engine's pool takes one caller at a time (running one alone
  // while the loop still stepped the others was a data race).
  std::vector<Outcome> outcomes;
  for (Collector& collector : collectors) outcomes.push_back(collector.Wait());
  scheduler.reset();
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(outcomes[i].status.ok()) << outcomes[i].status;
    auto alone = engine::GenerateFromTokens(*model_, requests[i].prompt_ids, requests[i].options, nullptr);
    ASSERT_TRUE(alone.ok()) << alone.status();
    EXPECT_EQ(outcomes[i].tokens, alone->token_ids) << "request " << i;
  }
}

// A canary is judged by its serving metrics against the figures before its
// swap: the daemon's own smoke tests and evaluations must not be in them.
TEST_F(SchedulerTest, TheDaemonsOwnGenerationsStayOutOfTheServingMetrics) {
  ops::MetricsRegistry registry;
  ServeMetrics metrics(registry, "m");
  auto scheduler = MakeScheduler(12, {.max_active = 4}, &metrics);
  // First tokens, later tokens, ends, tokens generated, prompt tokens: as counted so far.
  const auto counted = [&] {
    return std::vector<double>{static_cast<double>(metrics.time_to_first_token.CumulativeCounts().back()),
                               static_cast<double>(metrics.inter_token_latency.CumulativeCounts().back()),
                               static_cast<double>(metrics.e2e_latency.CumulativeCounts().back()),
                               metrics.generation_tokens.value(), metrics.prompt_tokens.value()};
  };
  ASSERT_TRUE(SmokeTest(*scheduler, *model_, nullptr, "Once upon a time").ok());
  GenerationRequest own = Request(Prompt(10, 1), 6);
  own.counted = false;
  Collector internal;
  ASSERT_TRUE(scheduler->Submit(std::move(own), internal.Sink()).ok());
  ASSERT_TRUE(internal.Wait().status.ok());
  EXPECT_EQ(counted(), (std::vector<double>{0, 0, 0, 0, 0}));

  Collector served;
  ASSERT_TRUE(scheduler->Submit(Request(Prompt(10, 2), 6), served.Sink()).ok());
  ASSERT_TRUE(served.Wait().status.ok());
  EXPECT_EQ(counted(), (std::vector<double>{1, 5, 1, 6, 10}));
}

// What one more row costs is measured in the loop's idle moments: a request
// submitted at start-up is served meanwhile (its drafts priced as free), and
// the requests after the measurement draft by it, with the same greedy tokens.
TEST_F(SchedulerTest, MeasuresTheRowCostWhileIdleWithoutHoldingUpRequests) {
  auto scheduler = MakeScheduler(12, {.measure_row_cost = true});
  // A greedy request drafting four tokens a step gives plain generation's tokens.
  const auto drafting_request_matches = [&](const std::vector<TokenId>& prompt) {
    GenerationRequest request = Request(prompt, 16);
    request.options.draft_tokens = 4;
    Collector collector;
    ASSERT_TRUE(scheduler->Submit(std::move(request), collector.Sink()).ok());
    const Outcome outcome = collector.Wait();
    ASSERT_TRUE(outcome.status.ok()) << outcome.status;
    EXPECT_EQ(outcome.tokens, Reference(prompt, 16));
  };
  drafting_request_matches(Prompt(12, 1));
  for (int i = 0; i < 6000 && !scheduler->row_cost(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(scheduler->row_cost().has_value()) << "the idle loop never finished measuring";
  EXPECT_GE(*scheduler->row_cost(), 0.0);
  EXPECT_LE(*scheduler->row_cost(), 2.0);
  drafting_request_matches(Prompt(12, 2));
}

TEST_F(SchedulerTest, WithoutBeingAskedItMeasuresNoRowCost) {
  auto scheduler = MakeScheduler(12);
  Collector first;
  ASSERT_TRUE(scheduler->Submit(Request(Prompt(12, 1), 4), first.Sink()).ok());
  ASSERT_TRUE(first.Wait().status.ok());
  EXPECT_FALSE(scheduler->row_cost().has_value());
}

TEST_F(SchedulerTest, APromptBeyondTheKvBudgetIsInvalid) {
  auto scheduler = MakeScheduler(4);  // 32 positions
  EXPECT_EQ(scheduler->context_limit(), 32);
  Collector never;
  absl::StatusOr<uint64_t> id = scheduler->Submit(Request(Prompt(40, 1), 4), never.Sink());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument) << id.status();
  // A request that fits runs to the limit and ends with kLength.
  Collector fits;
  ASSERT_TRUE(scheduler->Submit(Request(Prompt(20, 1), 30), fits.Sink()).ok());
  const Outcome outcome = fits.Wait();
  EXPECT_EQ(outcome.finish_reason, engine::FinishReason::kLength);
  EXPECT_EQ(outcome.tokens.size(), 13u);  // the 32nd position is the last one sampled
}

TEST_F(SchedulerTest, MemoryPressureShortensContextsThenRefuses) {
  auto scheduler = MakeScheduler(16);  // the full 64-position context
  scheduler->SetMemoryPressure(ops::MemoryPressure::kLow);
  Collector refused;
  absl::StatusOr<uint64_t> id = scheduler->Submit(Request(Prompt(40, 1), 8), refused.Sink());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(id.status().message().find("memory is low"), std::string::npos) << id.status();
  Collector shortened;
  ASSERT_TRUE(scheduler->Submit(Request(Prompt(20, 1), 40), shortened.Sink()).ok());
  const Outcome outcome = shortened.Wait();
  EXPECT_EQ(outcome.finish_reason, engine::FinishReason::kLength);
  EXPECT_EQ(outcome.tokens.size(), 13u);  // ends at 32 positions, half the context
  EXPECT_EQ(outcome.tokens, std::vector<TokenId>(Reference(Prompt(20, 1), 13)));

  scheduler->SetMemoryPressure(ops::MemoryPressure::kCritical);
  Collector critical;
  EXPECT_EQ(scheduler->Submit(Request(Prompt(4, 1), 4), critical.Sink()).status().code(),
            absl::StatusCode::kResourceExhausted);
  scheduler->SetMemoryPressure(ops::MemoryPressure::kNone);
  Collector recovered;
  ASSERT_TRUE(scheduler->Submit(Request(Prompt(20, 1), 40), recovered.Sink()).ok());
  EXPECT_EQ(recovered.Wait().tokens.size(), 40u);
}

}  // namespace
}  // namespace edgellm::serve
