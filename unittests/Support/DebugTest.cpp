//===- DebugTest.cpp - --debug-only and LLVM_DEBUG in release builds ------===//

#include "galvatron/Support/Debug.h"

#include "llvm/Support/CommandLine.h"

#include "gtest/gtest.h"

using namespace mlir::galvatron;

namespace {

TEST(DebugTest, DebugOnlySelectsTypes) {
  registerDebugOptions();
  // A second call finds the options registered and adds none.
  registerDebugOptions();
  ASSERT_EQ(llvm::cl::getRegisteredOptions().count("debug-only"), 1u);
  ASSERT_FALSE(llvm::DebugFlag);
  const char *argv[] = {"test", "--debug-only=alpha,beta"};
  ASSERT_TRUE(llvm::cl::ParseCommandLineOptions(2, argv, "", &llvm::errs()));
  EXPECT_TRUE(llvm::DebugFlag);
  bool alpha = false, beta = false, gamma = false;
  DEBUG_WITH_TYPE("alpha", alpha = true);
  DEBUG_WITH_TYPE("beta", beta = true);
  DEBUG_WITH_TYPE("gamma", gamma = true);
  EXPECT_FALSE(gamma);
#if GALVATRON_ENABLE_TRACING
  EXPECT_TRUE(alpha);
  EXPECT_TRUE(beta);
#else
  // Without tracing the statements compile away.
  EXPECT_FALSE(alpha);
  EXPECT_FALSE(beta);
#endif
  llvm::DebugFlag = false;
  alpha = false;
  DEBUG_WITH_TYPE("alpha", alpha = true);
  EXPECT_FALSE(alpha);
}

} // namespace
