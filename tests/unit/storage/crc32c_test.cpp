#include <random>
#include <string>

#include <catch2/catch.hpp>

#include "storage/crc32c.hpp"

using namespace raftkit::storage;

TEST_CASE("crc32c matches the standard check values", "[storage][crc32c]") {
  const std::string digits = "123456789";
  CHECK(crc32c(digits.data(), digits.size()) == 0xE3069283u);
  CHECK(crc32c_extend_portable(0, digits.data(), digits.size()) == 0xE3069283u);
  const std::string zeros(32, '\0');
  CHECK(crc32c(zeros.data(), zeros.size()) == 0x8A9136AAu);
  const std::string ones(32, '\xff');
  CHECK(crc32c(ones.data(), ones.size()) == 0x62A8AB43u);
  CHECK(crc32c(nullptr, 0) == 0u);
}

TEST_CASE("crc32c hardware and table paths agree, and extend composes", "[storage][crc32c]") {
  std::mt19937_64 rng(7);
  std::vector<std::uint8_t> buf(4096);
  for (auto& b : buf) b = static_cast<std::uint8_t>(rng());
  for (std::size_t len : {0u, 1u, 7u, 8u, 9u, 15u, 63u, 64u, 100u, 1000u, 4096u}) {
    INFO("len " << len);
    const std::uint32_t whole = crc32c(buf.data(), len);
    CHECK(whole == crc32c_extend_portable(0, buf.data(), len));
    for (std::size_t cut : {std::size_t{0}, len / 3, len}) {
      CHECK(crc32c_extend(crc32c(buf.data(), cut), buf.data() + cut, len - cut) == whole);
    }
  }
  INFO("hardware crc32c in use: " << crc32c_hardware());
  SUCCEED();
}

TEST_CASE("crc32c_combine gives the checksum of the concatenation", "[storage][crc32c]") {
  std::mt19937_64 rng(11);
  std::vector<std::uint8_t> buf(70000);
  for (auto& b : buf) b = static_cast<std::uint8_t>(rng());
  for (std::size_t len : {0u, 1u, 5u, 64u, 1000u, 70000u}) {
    for (std::size_t cut : {std::size_t{0}, len / 2, len / 7, len}) {
      INFO("len " << len << " cut " << cut);
      const std::uint32_t a = crc32c(buf.data(), cut);
      const std::uint32_t b = crc32c(buf.data() + cut, len - cut);
      CHECK(crc32c_combine(a, b, len - cut) == crc32c(buf.data(), len));
    }
  }
}
