#include "common/compare.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/targets.h"

namespace sluice::bench {
namespace {

using Figure = std::pair<std::string, double>;  // NaN: null in the file

// The figures of one results file, in file order; false and *error on bad input.
bool load_figures(const std::string& path, std::vector<Figure>* out, std::string* error) {
  std::ifstream f(path);
  if (!f) {
    *error = "cannot read " + path;
    return false;
  }
  nlohmann::ordered_json doc;
  try {
    doc = nlohmann::ordered_json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    *error = path + " is not JSON: " + e.what();
    return false;
  }
  const auto it = doc.is_object() ? doc.find("figures") : doc.end();
  if (it == doc.end() || !it->is_object() || it->empty()) {
    *error = path + " has no figures (a {\"figures\": {name: number}} object, as `sluice bench ... --json` writes)";
    return false;
  }
  for (const auto& [name, v] : it->items()) {
    if (v.is_number()) {
      out->emplace_back(name, v.get<double>());
    } else if (v.is_null()) {
      out->emplace_back(name, std::numeric_limits<double>::quiet_NaN());
    } else {
      *error = path + ": figure " + name + " is not a number";
      return false;
    }
  }
  return true;
}

std::string number(double v) {
  if (std::isnan(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// Relative change (new - old) / |old|; ±inf when old is 0 and new is not.
double relative_change(double o, double n) {
  if (o == n) return 0;
  if (o == 0) return n > 0 ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
  return (n - o) / std::fabs(o);
}

std::string percent(double r) {
  if (std::isnan(r)) return "";
  if (std::isinf(r)) return r > 0 ? "+inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.1f%%", r * 100);
  return buf;
}

}  // namespace

CompareOutcome compare_results_files(const std::string& old_path, const std::string& new_path, double threshold) {
  CompareOutcome out;
  std::vector<Figure> olds, news;
  if (!load_figures(old_path, &olds, &out.error) || !load_figures(new_path, &news, &out.error)) {
    out.exit_code = kCompareBadInput;
    return out;
  }
  const auto find = [](const std::vector<Figure>& v, const std::string& name) -> const Figure* {
    for (const Figure& f : v)
      if (f.first == name) return &f;
    return nullptr;
  };

  struct Row {
    std::string name, old_v, new_v, change, target, verdict;
  };
  std::vector<Row> rows;
  size_t added = 0, removed = 0, with_target = 0;
  const auto target_text = [](const Target* t, double v) {
    if (t == nullptr) return std::string();
    std::string s = std::string(t->at_least ? ">= " : "<= ") + number(t->value);
    if (!std::isnan(v)) s += (t->at_least ? v >= t->value : v <= t->value) ? " met" : " missed";
    return s;
  };
  for (const Figure& o : olds) {
    const Target* t = find_target(o.first);
    const Figure* n = find(news, o.first);
    if (n == nullptr) {
      ++removed;
      rows.push_back({o.first, number(o.second), "-", "removed", target_text(t, NAN), ""});
      continue;
    }
    const double change = (std::isnan(o.second) || std::isnan(n->second)) ? NAN : relative_change(o.second, n->second);
    Row r{o.first, number(o.second), number(n->second), percent(change), target_text(t, n->second), ""};
    if (t != nullptr) {
      ++with_target;
      if (std::isnan(change)) {
        r.verdict = "no value";
      } else {
        // How much worse, relative to the old value, in the direction the target sets.
        const double worse = t->at_least ? -change : change;
        if (worse > threshold) {
          r.verdict = "REGRESSION";
          out.regressions.push_back(o.first);
        } else if (-worse > threshold) {
          r.verdict = "better";
        } else {
          r.verdict = "same";
        }
      }
    }
    rows.push_back(std::move(r));
  }
  for (const Figure& n : news) {
    if (find(olds, n.first) != nullptr) continue;
    ++added;
    rows.push_back({n.first, "-", number(n.second), "added", target_text(find_target(n.first), n.second), ""});
  }

  size_t w = 6;
  for (const Row& r : rows) w = std::max(w, r.name.size());
  const auto line = [&](const Row& r) {
    char buf[512];
    std::snprintf(buf, sizeof buf, "%-*s %13s %13s %9s  %-18s %s", static_cast<int>(w), r.name.c_str(),
                  r.old_v.c_str(), r.new_v.c_str(), r.change.c_str(), r.target.c_str(), r.verdict.c_str());
    std::string s = buf;
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s + "\n";
  };
  char head[256];
  std::snprintf(head, sizeof head, "old: %s\nnew: %s\nthreshold: %.3g (%.1f%% worse than old fails a figure with a target)\n\n",
                old_path.c_str(), new_path.c_str(), threshold, threshold * 100);
  out.table = head;
  out.table += line({"figure", "old", "new", "change", "target (new)", "verdict"});
  for (const Row& r : rows) out.table += line(r);
  char tail[256];
  std::snprintf(tail, sizeof tail, "\n%zu figures compared, %zu with a target; %zu added, %zu removed; %zu regression(s)\n",
                rows.size() - added - removed, with_target, added, removed, out.regressions.size());
  out.table += tail;
  out.exit_code = out.regressions.empty() ? kCompareOk : kCompareRegression;
  return out;
}

}  // namespace sluice::bench
