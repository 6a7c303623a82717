// The bank account aggregate: the decisions of the ledger, made against the account's
// current state (its stream "account-<id>" replayed through apply()). The events are the
// ones the projections read (bank_model.h).
//
//   command            rule                                   emits
//   Deposit            amount > 0                             Deposited
//   Withdraw           amount > 0, amount <= balance          Withdrawn   (else: overdraft)
//
// A transfer is a withdrawal from one account and a deposit to another, each a command with
// an idempotency key derived from the transfer's id (bank_ledger's transfer()).
#pragma once

#include <cstdint>
#include <string>

#include "bank_model.h"
#include "sluice/runtime/aggregate.h"

namespace bank {

enum class AccountError : uint32_t { invalid_amount = 1, overdraft = 2 };

struct Deposit {
  uint64_t account = 0;
  int64_t amount = 0;  // cents
  int64_t day = 0;
};
struct Withdraw {
  uint64_t account = 0;
  int64_t amount = 0;
  int64_t day = 0;
};

struct BankAccount {
  int64_t balance = 0;   // cents
  uint64_t deposits = 0;
  uint64_t withdrawals = 0;

  void apply(const Deposited& e) {
    balance += e.amount;
    ++deposits;
  }
  void apply(const Withdrawn& e) {
    balance -= e.amount;
    ++withdrawals;
  }

  sluice::Decision decide(const Deposit& c, sluice::Emitter& out) const {
    if (c.amount <= 0) return sluice::Decision::reject(AccountError::invalid_amount, "deposit of " + std::to_string(c.amount));
    out.emit(Deposited{c.account, c.amount, c.day});
    return sluice::Decision::accept();
  }
  sluice::Decision decide(const Withdraw& c, sluice::Emitter& out) const {
    if (c.amount <= 0) return sluice::Decision::reject(AccountError::invalid_amount, "withdrawal of " + std::to_string(c.amount));
    if (c.amount > balance)
      return sluice::Decision::reject(AccountError::overdraft, "overdraft: account " + std::to_string(c.account) + " holds " +
                                                                   std::to_string(balance) + ", withdrawal of " +
                                                                   std::to_string(c.amount));
    out.emit(Withdrawn{c.account, c.amount, c.day});
    return sluice::Decision::accept();
  }
};

// Bump the fingerprint whenever BankAccount's fields or apply() change: older snapshots are
// then ignored (and rewritten) instead of being loaded as wrong state.
inline constexpr uint64_t kBankAccountFingerprint = 0x62616e6b2e616301;  // "bank.ac" v1

inline sluice::AggregateType<BankAccount> account_type(sluice::SnapshotPolicy snapshots = {}) {
  sluice::AggregateType<BankAccount> t("bank.Account", kBankAccountFingerprint);
  t.apply<Deposited>().apply<Withdrawn>().handle<Deposit>().handle<Withdraw>().snapshots(snapshots);
  return t;
}

}  // namespace bank
