// core/invariant.hpp — a broken invariant aborts loudly, with context.
#pragma once

#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

#define RAFTKIT_ASSERT(cond, ...)                                                                   \
  do {                                                                                              \
    if (!(cond)) [[unlikely]] {                                                                     \
      std::fputs(fmt::format("raftkit: invariant violated at {}:{}: {}: {}\n", __FILE__, __LINE__, \
                             #cond, fmt::format(__VA_ARGS__))                                       \
                     .c_str(),                                                                      \
                 stderr);                                                                           \
      std::abort();                                                                                 \
    }                                                                                               \
  } while (0)
