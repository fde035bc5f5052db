#ifndef IMBRIDGE_ADAPTERS_COMMON_ACCOUNT_SET_H_
#define IMBRIDGE_ADAPTERS_COMMON_ACCOUNT_SET_H_

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace imbridge::adapters {

// The accounts of a connector that serves several (one per bot, workspace
// or portal of its config), in config order and found by name: the one
// shape behind every connector's Accounts() (the names it tells the router
// in Hello) and its lookup of a delivery's or an inbound event's account.
// `Account` is the connector's own per-account state.
//
// Owns the accounts; their addresses stay fixed for the set's life, so
// handlers and threads may keep an Account*. Add() is for the connector's
// constructor only; after it the set is read-only and safe to read from any
// thread. An Account* handed out is not const: the account guards its own
// mutable state.
template <typename Account>
class AccountSet {
  using Entries = std::vector<std::unique_ptr<Account>>;

 public:
  using const_iterator = typename Entries::const_iterator;

  // `messenger` names the messenger in Get()'s errors ("Bitrix24").
  explicit AccountSet(std::string messenger)
      : messenger_(std::move(messenger)) {}

  AccountSet(const AccountSet&) = delete;
  AccountSet& operator=(const AccountSet&) = delete;

  // Adds `account`, named `name`, after the others and returns it. Names
  // are unique (the config checks make them so, CheckAccountName); a name
  // added again keeps finding the first account.
  Account* Add(std::string name, std::unique_ptr<Account> account) {
    Account* added = account.get();
    by_name_.try_emplace(name, added);
    names_.push_back(std::move(name));
    accounts_.push_back(std::move(account));
    return added;
  }

  // The account named `name`, or null.
  Account* Find(absl::string_view name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
  }

  // The account named `name`, or a status of `code` saying
  // "no <messenger> account '<name>'".
  absl::StatusOr<Account*> Get(absl::string_view name,
                               absl::StatusCode code) const {
    Account* account = Find(name);
    if (account == nullptr) {
      return absl::Status(
          code, absl::StrCat("no ", messenger_, " account '", name, "'"));
    }
    return account;
  }

  // The accounts' names in config order (Connector::Accounts()).
  std::vector<std::string> names() const { return names_; }

  size_t size() const { return accounts_.size(); }
  bool empty() const { return accounts_.empty(); }
  // The first account in config order; the set must not be empty.
  Account* front() const { return accounts_.front().get(); }

  // In config order, as std::unique_ptr<Account>.
  const_iterator begin() const { return accounts_.begin(); }
  const_iterator end() const { return accounts_.end(); }

 private:
  const std::string messenger_;
  Entries accounts_;
  std::vector<std::string> names_;
  absl::flat_hash_map<std::string, Account*> by_name_;
};

}  // namespace imbridge::adapters

#endif  // IMBRIDGE_ADAPTERS_COMMON_ACCOUNT_SET_H_
