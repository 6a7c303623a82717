#include "common/plots.h"

namespace sluice::bench {

bool write_plots(const std::string& /*data_dir*/, const std::string& /*plots_dir*/, std::string* error) {
  *error = "plots are not built yet";
  return false;
}

}  // namespace sluice::bench
