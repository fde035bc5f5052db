#ifndef IMBRIDGE_ADAPTERS_COMMON_BOUNDED_CACHE_H_
#define IMBRIDGE_ADAPTERS_COMMON_BOUNDED_CACHE_H_

#include <cstddef>
#include <list>
#include <utility>

#include "absl/container/flat_hash_map.h"

namespace imbridge::adapters {

// A map that holds at most `capacity` entries and forgets the least
// recently used one to make room for a new key: the one shape of every
// cache an adapter keeps of what a messenger or the router told it (user
// names, stored files, completed deliveries, outgoing webhooks, people to
// poll), so that none of them grows with traffic.
//
// "Used" means written by Put() or read by Find(); Peek() and iteration
// read without changing the order. Iteration runs from the most to the
// least recently used entry.
//
// Not thread-safe: the owner guards it with its own mutex (declare the
// member ABSL_GUARDED_BY), which usually guards more state than the cache.
// Pointers and references to values stay valid until their entry is erased
// or evicted; iterators likewise.
template <typename Key, typename Value>
class BoundedCache {
  using Entries = std::list<std::pair<const Key, Value>>;

 public:
  using iterator = typename Entries::iterator;
  using const_iterator = typename Entries::const_iterator;

  // `capacity` 0 is taken as 1.
  explicit BoundedCache(size_t capacity)
      : capacity_(capacity == 0 ? 1 : capacity) {}

  BoundedCache(const BoundedCache&) = delete;
  BoundedCache& operator=(const BoundedCache&) = delete;

  // The value of `key`, which becomes the most recently used; null when
  // absent. `K` is Key or a type Key's hash map looks up by (string_view
  // for a std::string key).
  template <typename K>
  Value* Find(const K& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    entries_.splice(entries_.begin(), entries_, it->second);
    return &it->second->second;
  }

  // The value of `key` without making it the most recently used; null when
  // absent.
  template <typename K>
  Value* Peek(const K& key) {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &it->second->second;
  }
  template <typename K>
  const Value* Peek(const K& key) const {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &it->second->second;
  }

  // Sets `key` to `value` and makes it the most recently used. A new key
  // in a full cache evicts the least recently used entry first. Returns the
  // stored value.
  Value& Put(Key key, Value value) {
    auto it = index_.find(key);
    if (it != index_.end()) {
      entries_.splice(entries_.begin(), entries_, it->second);
      it->second->second = std::move(value);
      return it->second->second;
    }
    if (entries_.size() >= capacity_) {
      index_.erase(entries_.back().first);
      entries_.pop_back();
    }
    entries_.emplace_front(key, std::move(value));
    index_.emplace(std::move(key), entries_.begin());
    return entries_.front().second;
  }

  // Removes `key`; returns whether it was there.
  template <typename K>
  bool Erase(const K& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return false;
    entries_.erase(it->second);
    index_.erase(it);
    return true;
  }

  // Removes the entry at `pos` (from iteration); returns the next one.
  iterator Erase(iterator pos) {
    index_.erase(pos->first);
    return entries_.erase(pos);
  }

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  size_t capacity() const { return capacity_; }

  iterator begin() { return entries_.begin(); }
  iterator end() { return entries_.end(); }
  const_iterator begin() const { return entries_.begin(); }
  const_iterator end() const { return entries_.end(); }

 private:
  const size_t capacity_;
  Entries entries_;  // Most recently used first.
  absl::flat_hash_map<Key, iterator> index_;
};

}  // namespace imbridge::adapters

#endif  // IMBRIDGE_ADAPTERS_COMMON_BOUNDED_CACHE_H_
