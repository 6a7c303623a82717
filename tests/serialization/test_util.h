// Helpers shared by the serialization tests: a scratch log directory and a writer on it.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_writer.h"

namespace sluice::testing {

class TempLog {
 public:
  TempLog() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = (std::filesystem::temp_directory_path() /
            ("sluice-ser-" + std::string(info->test_suite_name()) + "-" + info->name() + "-" +
             std::to_string(::getpid())))
               .string();
    std::filesystem::remove_all(dir_);
  }
  ~TempLog() { std::filesystem::remove_all(dir_); }
  const std::string& dir() const { return dir_; }

  std::unique_ptr<LogWriter> writer() {
    LogOptions o;
    o.segment_size = 1 << 20;
    auto w = LogWriter::open(dir_, o);
    EXPECT_TRUE(w.ok()) << w.status().to_string();
    return w.ok() ? std::move(w.value()) : nullptr;
  }
  std::unique_ptr<LogReader> reader() {
    auto r = LogReader::open(dir_);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? std::move(r.value()) : nullptr;
  }

 private:
  std::string dir_;
};

}  // namespace sluice::testing
