#include <gtest/gtest.h>

#include "sluice/serialization/schema_registry.h"
#include "sluice/serialization/testing/events.h"

namespace sluice::serialization {
namespace {
TEST(Compile, Binds) {
  SchemaRegistry reg;
  auto b = reg.bind<testing::Order>(CodecId::json);
  ASSERT_TRUE(b.ok()) << b.status().to_string();
}
}  // namespace
}  // namespace sluice::serialization
