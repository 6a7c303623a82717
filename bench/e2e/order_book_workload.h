// `sluice bench e2e --workload order_book`: the e2e suite's figures for the order book
// sample's workload (samples/order_book) instead of the synthetic deposits.
#pragma once

#include "common/figures.h"

namespace sluice::bench {

int run_e2e_order_book(const SuiteArgs& args);

}  // namespace sluice::bench
