// The `edgellm` CLI, run as a real process.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/support/daemon_process.h"
#include "tests/support/cli_run.h"
#include "tests/support/http_get.h"
#include "tests/support/test_support.h"

namespace edgellm {
namespace {

using testing::CliRun;
using testing::RunCli;

const std::string kModel = testing::SharedPath("models/stories260K.gguf");

// `generate --json` output for "Once upon a time", 64 greedy tokens, is llama.cpp's.
void ExpectFirstReference(const nlohmann::json& output) {
  std::ifstream in(testing::SharedPath("models/stories260K.reference.json"));
  const nlohmann::json ref = nlohmann::json::parse(in)["references"][0];
  EXPECT_EQ(output["token_ids"], ref["generated_token_ids"]);
  EXPECT_EQ(output["text"], ref["generated_text"]);
}

TEST(Cli, GenerateJsonMatchesLlamaCpp) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  const CliRun run = RunCli("generate --model " + kModel + " --prompt 'Once upon a time' -n 64 --temp 0 --json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json j = nlohmann::json::parse(run.out);
  ExpectFirstReference(j);
  EXPECT_EQ(j["prompt_tokens"], 5);
  EXPECT_EQ(j["generated_tokens"], 64);
  EXPECT_GT(j["prefill_tok_s"].get<double>(), 0.0);
  EXPECT_GT(j["decode_tok_s"].get<double>(), 0.0);
  EXPECT_EQ(j["finish_reason"], "length");
}

TEST(Cli, GenerateStreamsTextThenAFiguresLine) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  const CliRun run = RunCli("generate -m " + kModel + " -p 'The cat' -n 16 --temp 0.7 --seed 5 --threads 1");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_FALSE(run.out.empty());
  EXPECT_NE(run.err.find("prompt_tokens=4 generated_tokens="), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("decode_tok_s="), std::string::npos) << run.err;
  // The same seed gives the same text.
  const CliRun again = RunCli("generate -m " + kModel + " -p 'The cat' -n 16 --temp 0.7 --seed 5 --threads 1");
  EXPECT_EQ(again.out, run.out);
}

TEST(Cli, TokenizePrintsIds) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  CliRun run = RunCli("tokenize -m " + kModel + " -p 'Hello world'");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "1 346 306 414 263 304 341\n");
  run = RunCli("tokenize -m " + kModel + " -p 'Hello world' --no-bos --json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json j = nlohmann::json::parse(run.out);
  EXPECT_EQ(j["token_ids"], nlohmann::json::parse("[346, 306, 414, 263, 304, 341]"));
  EXPECT_EQ(j["count"], 6);
}

TEST(Cli, MakeModelWritesAModelThatGenerates) {
  const std::string path = (testing::TestDir() / "bpe.gguf").string();
  CliRun run = RunCli("make-model --shape test-bpe --type Q8_0 --out " + path);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("wrote " + path), std::string::npos);
  run = RunCli("generate -m " + path + " -p 'The robot' -n 8 --temp 0 --json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json j = nlohmann::json::parse(run.out);
  EXPECT_LE(j["generated_tokens"].get<int>(), 8);
  EXPECT_GT(j["prompt_tokens"].get<int>(), 0);
}

TEST(Cli, ErrorsAreClearAndExitNonZero) {
  CliRun run = RunCli("generate -m /nonexistent.gguf -p hi");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("edgellm: error: cannot open /nonexistent.gguf"), std::string::npos) << run.err;

  const std::string garbage = (testing::TestDir() / "garbage.gguf").string();
  std::ofstream(garbage) << "this is not a model";
  run = RunCli("generate -m " + garbage + " -p hi");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("bad magic"), std::string::npos) << run.err;

  run = RunCli("make-model --shape nope --out /tmp/x.gguf");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("smol-135m"), std::string::npos) << run.err;

  run = RunCli("make-model --shape test-spm --type IQ2_XXS --out /tmp/x.gguf");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("cannot be written"), std::string::npos) << run.err;
}

TEST(Cli, GenerateStreamsFromARunningDaemon) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  std::string error;
  auto daemon = testing::DaemonProcess::Start(kModel, {}, &error);
  ASSERT_NE(daemon, nullptr) << error;
  const std::string server = "--server unix://" + daemon->socket();
  CliRun run = RunCli("generate " + server + " -p 'Once upon a time' -n 64 --temp 0 --json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json j = nlohmann::json::parse(run.out);
  ExpectFirstReference(j);
  EXPECT_EQ(j["prompt_tokens"], 5);
  EXPECT_EQ(j["finish_reason"], "length");

  run = RunCli("generate " + server + " -p hi -n 0");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("edgellm: error: server: max_tokens"), std::string::npos) << run.err;
  EXPECT_EQ(daemon->Terminate(), 0);
  run = RunCli("generate " + server + " -p hi -n 4");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("edgellm: error: server:"), std::string::npos) << run.err;
}

TEST(Cli, GenerateFollowsAGrammarOrASchemaHereAndThroughTheDaemon) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  const std::filesystem::path dir = testing::TestDir();
  {
    std::ofstream(dir / "answer.gbnf") << "root ::= (\"yes\" | \"no\") \", because \" [a-z ]{3,20} \".\"\n";
    std::ofstream(dir / "hero.json")
        << R"({"type": "object", "properties": {"hero": {"type": "string", "maxLength": 16},
              "age": {"type": "integer", "minimum": 3, "maximum": 9}}, "required": ["hero", "age"]})";
    std::ofstream(dir / "bad.gbnf") << "root ::= item\n";
  }
  std::string error;
  auto daemon = testing::DaemonProcess::Start(kModel, {}, &error);
  ASSERT_NE(daemon, nullptr) << error;
  for (const std::string& where : {"-m " + kModel, "--server unix://" + daemon->socket()}) {
    CliRun run = RunCli("generate " + where + " -p 'Once upon a time' -n 60 --seed 3 --json --grammar " +
                        (dir / "answer.gbnf").string());
    ASSERT_EQ(run.exit_code, 0) << run.err;
    const std::string text = nlohmann::json::parse(run.out)["text"];
    EXPECT_TRUE(text.rfind("yes, because ", 0) == 0 || text.rfind("no, because ", 0) == 0) << where << ": " << text;
    EXPECT_EQ(text.back(), '.') << text;
    run = RunCli("generate " + where + " -p 'Once upon a time' -n 60 --seed 3 --json --json-schema " +
                 (dir / "hero.json").string());
    ASSERT_EQ(run.exit_code, 0) << run.err;
    const nlohmann::json hero = nlohmann::json::parse(nlohmann::json::parse(run.out)["text"].get<std::string>());
    EXPECT_LE(hero["hero"].get<std::string>().size(), 16u * 4) << hero;
    EXPECT_GE(hero["age"].get<int>(), 3);
    EXPECT_LE(hero["age"].get<int>(), 9);
    run = RunCli("generate " + where + " -p hi --grammar " + (dir / "bad.gbnf").string());
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_NE(run.err.find("rule 'item' is used but never defined"), std::string::npos) << run.err;
  }
  EXPECT_EQ(daemon->Terminate(), 0);
}

const std::string kChatTemplate = testing::SharedPath("chat-templates/Qwen-Qwen2.5-7B-Instruct.jinja");

// A daemon serving stories260K with a chat template (it has none of its own).
std::unique_ptr<testing::DaemonProcess> StartChatDaemon() {
  std::string error;
  auto daemon = testing::DaemonProcess::Start(kModel, {"--chat-template-file", kChatTemplate}, &error);
  EXPECT_NE(daemon, nullptr) << error;
  return daemon;
}

// `edgellm chat` in this process and through a daemon gives the same replies:
// one message with -p, and a conversation typed on stdin (history kept by the
// CLI locally, by the daemon's session remotely; /reset starts over).
TEST(Cli, ChatGivesTheSameRepliesLocallyAndThroughADaemon) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  EDGELLM_REQUIRE_SHARED_FILE(kChatTemplate);
  std::unique_ptr<testing::DaemonProcess> daemon = StartChatDaemon();
  ASSERT_NE(daemon, nullptr);
  const std::string local = "chat --model " + kModel + " --chat-template-file " + kChatTemplate + " -t 1";
  const std::string remote = "chat --server unix://" + daemon->socket();
  const std::string sampling = " --temp 0 -n 10 --system 'You tell stories.'";

  const CliRun here = RunCli(local + sampling + " -p 'Once upon a time'");
  ASSERT_EQ(here.exit_code, 0) << here.err;
  const CliRun there = RunCli(remote + sampling + " -p 'Once upon a time'");
  ASSERT_EQ(there.exit_code, 0) << there.err;
  EXPECT_FALSE(here.out.empty());
  EXPECT_EQ(here.out, there.out);

  const std::string typed = "printf 'Once upon a time\\nWhat next?\\n/reset\\nOnce upon a time\\n/exit\\n' | ";
  const std::string edgellm = std::string(EDGELLM_BINARY_DIR) + "/tools/edgellm ";
  const CliRun conversation_here = testing::RunShell(typed + edgellm + local + sampling);
  const CliRun conversation_there = testing::RunShell(typed + edgellm + remote + sampling);
  ASSERT_EQ(conversation_here.exit_code, 0) << conversation_here.err;
  ASSERT_EQ(conversation_there.exit_code, 0) << conversation_there.err;
  EXPECT_EQ(conversation_here.out, conversation_there.out);
  std::vector<std::string> replies;
  std::stringstream lines(conversation_here.out);
  for (std::string line; std::getline(lines, line);) replies.push_back(line);
  ASSERT_EQ(replies.size(), 3u) << conversation_here.out;
  EXPECT_EQ(replies[0] + "\n", here.out) << "the first turn is the one-shot reply";
  EXPECT_EQ(replies[2], replies[0]) << "/reset starts the conversation over";

  const CliRun no_template = RunCli("chat --model " + kModel + " -p hi");
  EXPECT_EQ(no_template.exit_code, 1);
  EXPECT_NE(no_template.err.find("has no chat template"), std::string::npos) << no_template.err;
  EXPECT_EQ(RunCli("chat -p hi").exit_code, 1);
}

// `edgellm chat --json-schema` (or --grammar): every reply of the conversation
// is JSON the schema accepts, the same in this process and through a daemon.
TEST(Cli, ChatRepliesFollowASchemaHereAndThroughTheDaemon) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  EDGELLM_REQUIRE_SHARED_FILE(kChatTemplate);
  const std::filesystem::path dir = testing::TestDir();
  std::ofstream(dir / "hero.json")
      << R"({"type": "object", "properties": {"hero": {"type": "string", "maxLength": 16},
            "age": {"type": "integer", "minimum": 3, "maximum": 9}}, "required": ["hero", "age"]})";
  std::ofstream(dir / "answer.gbnf") << "root ::= (\"yes\" | \"no\") \".\"\n";
  std::unique_ptr<testing::DaemonProcess> daemon = StartChatDaemon();
  ASSERT_NE(daemon, nullptr);
  const std::string local = "chat --model " + kModel + " --chat-template-file " + kChatTemplate + " -t 1";
  const std::string remote = "chat --server unix://" + daemon->socket();
  const std::string options = " --temp 0 -n 80 --json-schema " + (dir / "hero.json").string();
  const std::string typed = "printf 'Tell me of a hero.\\nAnother one?\\nAnd a third?\\n' | ";
  const std::string edgellm = std::string(EDGELLM_BINARY_DIR) + "/tools/edgellm ";
  const CliRun here = testing::RunShell(typed + edgellm + local + options);
  const CliRun there = testing::RunShell(typed + edgellm + remote + options);
  ASSERT_EQ(here.exit_code, 0) << here.err;
  ASSERT_EQ(there.exit_code, 0) << there.err;
  EXPECT_EQ(here.out, there.out);
  std::stringstream lines(here.out);
  int replies = 0;
  for (std::string line; std::getline(lines, line); ++replies) {
    const nlohmann::json hero = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(hero.is_object()) << line;
    ASSERT_TRUE(hero["hero"].is_string()) << line;
    ASSERT_TRUE(hero["age"].is_number_integer()) << line;
    EXPECT_GE(hero["age"].get<int>(), 3) << line;
    EXPECT_LE(hero["age"].get<int>(), 9) << line;
  }
  EXPECT_EQ(replies, 3) << here.out;

  for (const std::string& where : {local, remote}) {
    const CliRun answer = RunCli(where + " --temp 1 -n 8 -p 'Is it day?' --grammar " + (dir / "answer.gbnf").string());
    ASSERT_EQ(answer.exit_code, 0) << answer.err;
    EXPECT_TRUE(answer.out == "yes.\n" || answer.out == "no.\n") << where << ": " << answer.out;
  }
  const CliRun both = RunCli(local + " -p hi --grammar " + (dir / "answer.gbnf").string() + " --json-schema " +
                             (dir / "hero.json").string());
  EXPECT_EQ(both.exit_code, 1);
  EXPECT_NE(both.err.find("--grammar and --json-schema exclude each other"), std::string::npos) << both.err;
}

// Ctrl-C while a reply streams stops that reply, and the chat goes on: the
// next message gets the reply it would have got had the stopped turn never
// been typed.
TEST(Cli, CtrlCStopsTheReplyNotTheChat) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  EDGELLM_REQUIRE_SHARED_FILE(kChatTemplate);
  std::unique_ptr<testing::DaemonProcess> daemon = StartChatDaemon();
  ASSERT_NE(daemon, nullptr);
  const std::string server = "unix://" + daemon->socket();
  const CliRun alone = RunCli("chat --server " + server + " --temp 0 -n 8 -p 'Once upon a time'");
  ASSERT_EQ(alone.exit_code, 0) << alone.err;

  int to_chat[2], from_chat[2];
  ASSERT_EQ(::pipe(to_chat), 0);
  ASSERT_EQ(::pipe(from_chat), 0);
  const std::string err_path = (testing::TestDir() / "chat.err").string();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(to_chat[0], STDIN_FILENO);
    ::dup2(from_chat[1], STDOUT_FILENO);
    ::dup2(::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), STDERR_FILENO);
    ::close(to_chat[1]);
    ::close(from_chat[0]);
    const std::string binary = std::string(EDGELLM_BINARY_DIR) + "/tools/edgellm";
    ::execl(binary.c_str(), binary.c_str(), "chat", "--server", server.c_str(), "--temp", "0", "-n", "1500",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(to_chat[0]);
  ::close(from_chat[1]);
  const auto say = [&](const std::string& line) {
    ASSERT_EQ(::write(to_chat[1], line.data(), line.size()), static_cast<ssize_t>(line.size()));
  };
  say("The cat\n");
  char buffer[4096];
  ASSERT_GT(::read(from_chat[0], buffer, sizeof(buffer)), 0) << "the long reply starts streaming";
  ::kill(pid, SIGINT);
  // The limit on this one is the test's only protection from a chat that ignored Ctrl-C.
  say("Once upon a time\n/exit\n");
  ::close(to_chat[1]);
  std::string out;
  ssize_t n;
  while ((n = ::read(from_chat[0], buffer, sizeof(buffer))) > 0) out.append(buffer, static_cast<size_t>(n));
  ::close(from_chat[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "Ctrl-C ended the program";
  EXPECT_EQ(WEXITSTATUS(status), 0);
  std::ifstream err_file(err_path);
  const std::string err((std::istreambuf_iterator<char>(err_file)), std::istreambuf_iterator<char>());
  EXPECT_NE(err.find("(stopped; this turn is not kept)"), std::string::npos) << err;
  // The second reply (8 tokens here, 1500 allowed: the same greedy start) follows the stopped one.
  ASSERT_GE(alone.out.size(), 2u);
  EXPECT_NE(out.find("\n" + alone.out.substr(0, alone.out.size() - 1)), std::string::npos)
      << "the reply to the next message is the one it gets alone: " << out.substr(0, 400);
}

TEST(Cli, GenerateReachesATlsDaemonAndContinuesASession) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  const std::filesystem::path pki = testing::TestDir() / "pki";
  ASSERT_EQ(std::system((std::string(EDGELLM_SOURCE_DIR) + "/deploy/pki.sh " + pki.string() + " >/dev/null").c_str()),
            0);
  const std::string listen = "127.0.0.1:0";  // the daemon picks the port and logs it
  grpc::SslCredentialsOptions trust;
  std::ifstream ca_file(pki / "ca.pem");
  trust.pem_root_certs.assign(std::istreambuf_iterator<char>(ca_file), {});
  std::string error;
  auto daemon = testing::DaemonProcess::Start(
      kModel, {"--tls-cert", (pki / "server.pem").string(), "--tls-key", (pki / "server.key").string()}, &error, {},
      {listen, grpc::SslCredentials(trust)});
  ASSERT_NE(daemon, nullptr) << error;
  const std::string server = "--server " + daemon->target() + " --tls-ca " + (pki / "ca.pem").string();
  CliRun run = RunCli("generate " + server + " --session story -p 'Once upon a time' -n 16 --temp 0 --json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(nlohmann::json::parse(run.out)["prompt_tokens"], 5);
  run = RunCli("generate " + server + " --session story -p ' Then' -n 8 --temp 0 --json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  // The second turn's prompt is the whole conversation: both prompts and the first reply.
  EXPECT_GE(nlohmann::json::parse(run.out)["prompt_tokens"].get<int>(), 5 + 16);

  run = RunCli("generate --server " + daemon->target() + " -p hi -n 4");  // no --tls-ca: a plaintext client
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("edgellm: error: server:"), std::string::npos) << run.err;
  run = RunCli("generate --server " + daemon->target() + " --tls-ca /nonexistent.pem -p hi -n 4");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("--tls-ca /nonexistent.pem: cannot be read"), std::string::npos) << run.err;
}

TEST(Cli, BadSamplingOptionsAreRefused) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  const CliRun run = RunCli("generate -m " + kModel + " -p hi --top-p 0");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("top_p"), std::string::npos) << run.err;
}

std::string FileBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string WriteFactData(const std::filesystem::path& dir) {
  const std::string path = (dir / "facts.jsonl").string();
  std::ofstream out(path);
  for (int i = 0; i < 12; ++i) {
    out << R"({"prompt": "Once upon a time", "completion": " there was a purple dragon named Zog."})" << "\n";
  }
  out << "{this line is broken\n";
  return path;
}

const char* kTrainFlags = " --steps 24 --lr 1e-2 --targets all --rank 8 --micro-batch 2 --max-length 64 -t 2";

// `edgellm train` prints its plan and loss curve, reports the broken line,
// and writes a PEFT adapter that `generate --adapter` applies and `merge`
// bakes into a GGUF that generates the same.
TEST(Cli, TrainWritesAnAdapterThatGenerateAndMergeUse) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  const std::filesystem::path dir = testing::TestDir();
  const std::string adapter = (dir / "adapter").string();
  const CliRun train = RunCli("train --model " + kModel + " --data " + WriteFactData(dir) + " --out " + adapter +
                              kTrainFlags + " --memory-budget 64");
  ASSERT_EQ(train.exit_code, 0) << train.err;
  EXPECT_NE(train.err.find("facts.jsonl:13: skipped: not valid JSON"), std::string::npos) << train.err;
  EXPECT_NE(train.out.find("plan: micro-batch"), std::string::npos) << train.out;
  EXPECT_NE(train.out.find("step 24/24 loss"), std::string::npos) << train.out;
  EXPECT_NE(train.out.find("eval_loss"), std::string::npos) << train.out;
  EXPECT_TRUE(std::filesystem::exists(dir / "adapter" / "adapter_config.json"));

  const std::string generate = " --prompt 'Once upon a time' -n 20 --temp 0 --json";
  const CliRun tuned = RunCli("generate --model " + kModel + " --adapter " + adapter + generate);
  ASSERT_EQ(tuned.exit_code, 0) << tuned.err;
  const std::string text = nlohmann::json::parse(tuned.out)["text"];
  EXPECT_EQ(text.rfind(" there was a purple dragon named Zog.", 0), 0u) << text;

  const std::string merged = (dir / "merged.gguf").string();
  const CliRun merge = RunCli("merge --model " + kModel + " --adapter " + adapter + " --out " + merged);
  ASSERT_EQ(merge.exit_code, 0) << merge.err;
  const CliRun from_merged = RunCli("generate --model " + merged + generate);
  ASSERT_EQ(from_merged.exit_code, 0) << from_merged.err;
  EXPECT_EQ(nlohmann::json::parse(from_merged.out)["text"], text);

  const CliRun wrong = RunCli("generate --model " + kModel + " --adapter " + (dir / "none").string() + generate);
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_NE(wrong.err.find("adapter_config.json"), std::string::npos) << wrong.err;
}

// A training run killed with SIGKILL, started again with the same command,
// resumes from its last checkpoint and ends with the adapter of a run that
// was never interrupted.
TEST(Cli, AKilledTrainingResumesToTheSameAdapter) {
  EDGELLM_REQUIRE_SHARED_FILE(kModel);
  const std::filesystem::path dir = testing::TestDir();
  const std::string data = WriteFactData(dir);
  const std::string flags = std::string(kTrainFlags) + " --checkpoint-every 3 --dropout 0.1";
  const std::string whole = (dir / "whole").string(), killed = (dir / "killed").string();
  ASSERT_EQ(RunCli("train --model " + kModel + " --data " + data + " --out " + whole + flags).exit_code, 0);

  // Start the same run and kill it once it has passed step 10.
  int out_pipe[2];
  ASSERT_EQ(::pipe(out_pipe), 0);
  const std::string command = std::string(EDGELLM_BINARY_DIR) + "/tools/edgellm train --model " + kModel +
                              " --data " + data + " --out " + killed + flags + " 2>/dev/null";
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::close(out_pipe[0]);
    ::execl("/bin/sh", "sh", "-c", ("exec " + command).c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  std::string seen;
  char buffer[256];
  ssize_t n;
  while (seen.find("step 11/") == std::string::npos && (n = ::read(out_pipe[0], buffer, sizeof(buffer))) > 0) {
    seen.append(buffer, static_cast<size_t>(n));
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(out_pipe[0]);
  ASSERT_NE(seen.find("step 11/"), std::string::npos) << seen;
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run ended before it was killed";

  const CliRun resumed = RunCli("train --model " + kModel + " --data " + data + " --out " + killed + flags);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  // Checkpoints fall every third step: step 9, or 12 if the kill landed after it was written.
  const bool from_9 = resumed.out.find("resuming from the checkpoint at step 9\n") != std::string::npos;
  const bool from_12 = resumed.out.find("resuming from the checkpoint at step 12\n") != std::string::npos;
  EXPECT_TRUE(from_9 || from_12) << resumed.out;
  const std::string expected = FileBytes(std::filesystem::path(whole) / "adapter_model.safetensors");
  ASSERT_FALSE(expected.empty());
  EXPECT_TRUE(FileBytes(std::filesystem::path(killed) / "adapter_model.safetensors") == expected)
      << "the resumed adapter differs from the uninterrupted one";
}

}  // namespace
}  // namespace edgellm
