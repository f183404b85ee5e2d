// Messages whose payloads have a user's mk::Codec (not only trivially copyable structs), the
// message types mk reserves, and for_each_kernel's errors; with kernels as threads and as
// processes.
#include <gtest/gtest.h>

#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "mk/channel.h"
#include "mk/codec.h"
#include "mk/kernel.h"
#include "mk/message_codec.h"
#include "mk/system.h"
#include "runtime_test_util.h"

namespace encoded_test {

/// A reply that is no trivially copyable struct: it travels through Codec<std::string> and
/// Codec<std::vector<std::string>>.
struct Words {
  std::vector<std::string> words;
};

/// Splits its text at spaces; a reply as long as `repeat` copies of the text.
struct Split {
  static constexpr mk::MessageType kType = 60;
  using Reply = Words;
  std::string text;
  std::uint32_t repeat = 1;
};

/// A one-way message whose decoder refuses the text "forged", and whose encoder throws for
/// the text "unencodable".
struct Strict {
  static constexpr mk::MessageType kType = 61;
  using Reply = Words;
  std::string text;
};

/// A user's message in the range mk reserves.
struct Reserved {
  static constexpr mk::MessageType kType = mk::kFirstReservedMessageType + 7;
  using Reply = Words;
  std::uint64_t value;
};

}  // namespace encoded_test

template <>
struct mk::Codec<encoded_test::Words> {
  static void encode(const encoded_test::Words& value, std::vector<std::byte>& out) {
    Codec<std::vector<std::string>>::encode(value.words, out);
  }
  static Result<encoded_test::Words> decode(std::span<const std::byte> bytes) {
    auto words = Codec<std::vector<std::string>>::decode(bytes);
    if (!words) return std::move(words).error();
    return encoded_test::Words{std::move(*words)};
  }
};

template <>
struct mk::Codec<encoded_test::Split> {
  static void encode(const encoded_test::Split& value, std::vector<std::byte>& out) {
    encode_fields(out, value.text, value.repeat);
  }
  static Result<encoded_test::Split> decode(std::span<const std::byte> bytes) {
    auto fields = decode_fields<std::string, std::uint32_t>(bytes);
    if (!fields) return std::move(fields).error();
    return encoded_test::Split{std::get<0>(*fields), std::get<1>(*fields)};
  }
};

template <>
struct mk::Codec<encoded_test::Strict> {
  static void encode(const encoded_test::Strict& value, std::vector<std::byte>& out) {
    if (value.text == "unencodable") throw std::runtime_error("no bytes for this one");
    Codec<std::string>::encode(value.text, out);
  }
  static Result<encoded_test::Strict> decode(std::span<const std::byte> bytes) {
    auto text = Codec<std::string>::decode(bytes);
    if (!text) return std::move(text).error();
    if (*text == "forged") return error(Errc::parse_error, "Strict: a forged text");
    return encoded_test::Strict{std::move(*text)};
  }
};

namespace {

using encoded_test::Reserved;
using encoded_test::Split;
using encoded_test::Strict;
using encoded_test::Words;

mk::Result<void> register_split(mk::Kernel& kernel) {
  auto split = kernel.handle<Split>([](const Split& request) {
    Words reply;
    for (std::uint32_t r = 0; r < request.repeat; ++r) {
      std::size_t at = 0;
      while (at <= request.text.size()) {
        const std::size_t space = std::min(request.text.find(' ', at), request.text.size());
        reply.words.push_back(request.text.substr(at, space - at));
        at = space + 1;
      }
    }
    return reply;
  });
  if (!split) return split;
  return kernel.handle<Strict>([](const Strict& request) { return Words{{request.text}}; });
}

class EncodedMessages : public mk::test::BothIsolations {};

TEST_P(EncodedMessages, RequestsAndRepliesTravelThroughTheirCodecs) {
  mk::Config config = this->config(2);
  config.setup = register_split;
  auto system = mk::test::boot(config);
  ASSERT_TRUE(system);
  auto reply = system->run(0, [](mk::Kernel& k) -> mk::Task<mk::Result<Words>> {
    // Named, not a temporary: GCC 12 destroys temporaries inside co_await twice.
    const Split request{"one multikernel per machine", 2};
    co_return co_await k.call(1, request);
  });
  ASSERT_TRUE(reply.ok()) << reply.error().describe();
  ASSERT_TRUE(reply->ok()) << reply->error().describe();
  const std::vector<std::string> once{"one", "multikernel", "per", "machine"};
  std::vector<std::string> twice = once;
  twice.insert(twice.end(), once.begin(), once.end());
  EXPECT_EQ((*reply)->words, twice);
}

TEST_P(EncodedMessages, EncodingsThatDoNotFitOrFailAreErrorsAndTheKernelsGoOn) {
  mk::Config config = this->config(2);
  config.setup = register_split;
  auto system = mk::test::boot(config);
  ASSERT_TRUE(system);
  auto outcomes = system->run(0, [](mk::Kernel& k) -> mk::Task<std::vector<mk::Errc>> {
    auto code = [](const auto& result) {
      return result ? mk::Errc::internal : result.error().code;
    };
    std::vector<mk::Errc> seen;
    // A request over kMaxMessageBody once encoded.
    const Split too_long{std::string(mk::kMaxMessageBody + 1, 'x'), 1};
    seen.push_back(code(co_await k.call(1, too_long)));
    // A reply over it: 300 copies of 20 words.
    std::string words;
    for (int i = 0; i < 20; ++i)
      words += "word ";
    const Split long_reply{words, 300};
    seen.push_back(code(co_await k.call(1, long_reply)));
    // A payload the receiver's decoder refuses.
    const Strict forged{"forged"};
    seen.push_back(code(co_await k.call(1, forged)));
    // An encoder that throws, for a call and for a send.
    const Strict unencodable{"unencodable"};
    seen.push_back(code(co_await k.call(1, unencodable)));
    seen.push_back(code(co_await k.send(1, unencodable)));
    // The channel still works afterwards.
    const Split still_here{"still here", 1};
    auto after = co_await k.call(1, still_here);
    seen.push_back(after && after->words.size() == 2 ? mk::Errc::internal : mk::Errc::closed);
    co_return seen;
  });
  ASSERT_TRUE(outcomes.ok()) << outcomes.error().describe();
  EXPECT_EQ(*outcomes, (std::vector<mk::Errc>{mk::Errc::too_large, mk::Errc::too_large,
                                              mk::Errc::parse_error, mk::Errc::invalid_argument,
                                              mk::Errc::invalid_argument, mk::Errc::internal}));
}

TEST_P(EncodedMessages, ReservedTypesAreRefusedToHandlersSendsAndCalls) {
  auto system = mk::test::boot(config(2));
  ASSERT_TRUE(system);
  auto outcomes = system->run(0, [](mk::Kernel& k) -> mk::Task<std::vector<mk::Result<void>>> {
    std::vector<mk::Result<void>> seen;
    seen.push_back(k.handle<Reserved>([](const Reserved&) { return Words{}; }));
    seen.push_back(co_await k.send(1, Reserved{1}));
    auto called = co_await k.call(1, Reserved{2});
    seen.push_back(called ? mk::Result<void>{} : mk::Result<void>(called.error()));
    co_return seen;
  });
  ASSERT_TRUE(outcomes.ok()) << outcomes.error().describe();
  ASSERT_EQ(outcomes->size(), 3u);
  for (const auto& outcome : *outcomes) {
    ASSERT_FALSE(outcome.ok());
    EXPECT_EQ(outcome.error().code, mk::Errc::invalid_argument);
    EXPECT_NE(outcome.error().message.find("0xf007"), std::string::npos) << outcome.error().message;
    EXPECT_NE(outcome.error().message.find("reserve"), std::string::npos)
        << outcome.error().message;
  }
}

TEST_P(EncodedMessages, ForEachKernelReturnsTheFirstSetupError) {
  auto system = mk::test::boot(config(3));
  ASSERT_TRUE(system);
  // Kernel 0 registers Split; kernel 1 then fails, so kernel 2 never runs the setup.
  auto walked = system->for_each_kernel([](mk::Kernel& k) -> mk::Result<void> {
    if (k.id() == 1) return mk::error(mk::Errc::invalid_argument, "kernel 1 refuses");
    return register_split(k);
  });
  ASSERT_FALSE(walked.ok());
  EXPECT_EQ(walked.error().code, mk::Errc::invalid_argument);
  EXPECT_EQ(walked.error().message, "kernel 1 refuses");
  auto handled = system->run(0, [](mk::Kernel& k) -> mk::Task<std::vector<mk::Errc>> {
    std::vector<mk::Errc> seen;
    for (mk::KernelId to : {0u, 2u}) {
      const Split request{"a b", 1};
      auto reply = co_await k.call(to, request);
      seen.push_back(reply ? mk::Errc::internal : reply.error().code);
    }
    co_return seen;
  });
  ASSERT_TRUE(handled.ok()) << handled.error().describe();
  EXPECT_EQ(*handled, (std::vector<mk::Errc>{mk::Errc::internal, mk::Errc::no_handler}));
}

INSTANTIATE_TEST_SUITE_P(Isolations, EncodedMessages, mk::test::kBothIsolations,
                         mk::test::isolation_param_name);

}  // namespace
