// src/core/fifo.hpp — a first-in first-out queue kept in one vector.
//
// The core's queues (a follower's appends in flight, the reads waiting for a
// round, a lease's rounds) are short and usually empty. std::deque allocates
// a map and a block even when empty, so every copy of a core::Raft (the
// explorer copies one per event) paid two allocations per queue; an empty
// vector costs none. pop_front() moves a head index and compacts the vector
// once the head passes half of it, so each element is moved at most once
// more on average.
#pragma once

#include <cstddef>
#include <iterator>
#include <utility>
#include <vector>

namespace raftkit::core {

template <class T>
class Fifo {
 public:
  using const_iterator = typename std::vector<T>::const_iterator;
  using iterator = typename std::vector<T>::iterator;

  Fifo() = default;
  // A copy holds only the live elements (from the head on).
  Fifo(const Fifo& other) : items_(other.begin(), other.end()) {}
  Fifo& operator=(const Fifo& other) {
    if (this != &other) {
      items_.assign(other.begin(), other.end());
      head_ = 0;
    }
    return *this;
  }
  Fifo(Fifo&&) noexcept = default;
  Fifo& operator=(Fifo&&) noexcept = default;
  ~Fifo() = default;

  bool empty() const { return head_ == items_.size(); }
  std::size_t size() const { return items_.size() - head_; }
  T& front() { return items_[head_]; }
  const T& front() const { return items_[head_]; }
  template <class... Args>
  T& emplace_back(Args&&... args) {
    return items_.emplace_back(std::forward<Args>(args)...);
  }
  void push_back(T item) { items_.push_back(std::move(item)); }
  void pop_front() {
    ++head_;
    if (head_ == items_.size()) {
      clear();
    } else if (head_ * 2 >= items_.size() && head_ >= 16) {
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  void clear() {
    items_.clear();
    head_ = 0;
  }

  iterator begin() { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
  iterator end() { return items_.end(); }
  const_iterator begin() const { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
  const_iterator end() const { return items_.end(); }
  auto rbegin() const { return std::make_reverse_iterator(end()); }
  auto rend() const { return std::make_reverse_iterator(begin()); }

 private:
  std::vector<T> items_;
  std::size_t head_ = 0;
};

}  // namespace raftkit::core
