// write_plots: one gnuplot script per plot (kept beside the images, so a plot can be redrawn
// or restyled by hand), the data inlined in it, run once per plot for a PNG (pngcairo) and
// an SVG.
//   - every `<suite>-<figure>.hgrm` of a suite -> `latency-<suite>.{png,svg}`: one percentile
//     curve per distribution, x = 1/(1 - percentile) on a log scale labelled 90 %, 99 %, ...
//     (HdrHistogram's "nines" axis), y = latency (µs, log scale).
//   - every `<name>.dat` -> `<name>.{png,svg}`: column 1 on x, every other column a curve.
//     Header comments (histogram.h Series): line 1 the title, line 2 the column names; then
//     optional `# ylabel: TEXT`, `# logx`, `# logy`, and `# mark: X LABEL` lines (a dashed
//     vertical line at x = X, e.g. a segment roll).
#include "common/plots.h"

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "common/histogram.h"

namespace sluice::bench {
namespace {

namespace fs = std::filesystem;

struct Curve {
  std::string title;
  std::vector<std::pair<double, double>> points;  // x, y
};

// gnuplot single-quoted string: a quote is doubled.
std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "''";
    else out += c;
  }
  return out + "'";
}

// The rows of a .hgrm file: value (µs) against 1/(1-percentile); the 100 % row, whose
// 1/(1-percentile) is infinite, has no fourth column and is left out (the max is in the footer).
Curve read_hgrm(const fs::path& path) {
  Curve c;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    double value, pct, count, inv;
    if (ls >> value >> pct >> count >> inv) c.points.emplace_back(inv, std::max(value, 1e-3));
  }
  return c;
}

struct DatFile {
  std::string title, ylabel;
  std::vector<std::string> columns;
  std::vector<std::vector<double>> rows;
  std::vector<std::pair<double, std::string>> marks;
  bool logx = false, logy = false;
};

DatFile read_dat(const fs::path& path) {
  DatFile d;
  std::ifstream in(path);
  std::string line;
  int comments = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::string text = line.substr(line.find_first_not_of("# ") == std::string::npos ? line.size() : line.find_first_not_of("# "));
      if (text.rfind("ylabel:", 0) == 0) d.ylabel = text.substr(text.find_first_not_of(' ', 7));
      else if (text.rfind("mark:", 0) == 0) {
        std::istringstream ms(text.substr(5));
        double x;
        std::string label;
        if (ms >> x) {
          std::getline(ms, label);
          d.marks.emplace_back(x, label.empty() ? "" : label.substr(label.find_first_not_of(' ') == std::string::npos ? label.size() : label.find_first_not_of(' ')));
        }
      } else if (text == "logx") d.logx = true;
      else if (text == "logy") d.logy = true;
      else if (comments == 0) {
        d.title = text;
        ++comments;
      } else if (comments == 1) {
        std::istringstream cs(text);
        for (std::string c; cs >> c;) d.columns.push_back(c);
        ++comments;
      }
      continue;
    }
    std::istringstream ls(line);
    std::vector<double> row;
    for (double v; ls >> v;) row.push_back(v);
    if (!row.empty()) d.rows.push_back(std::move(row));
  }
  return d;
}

// A title: gnuplot double-quoted string, each "; " of the text starting a new line.
std::string title_string(const std::string& s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.compare(i, 2, "; ") == 0) {
      out += "\\n";
      ++i;
    } else if (s[i] == '"' || s[i] == '\\') {
      out += std::string("\\") + s[i];
    } else {
      out += s[i];
    }
  }
  return out + "\"";
}

std::string data_block(const std::string& name, const std::vector<std::pair<double, double>>& pts) {
  std::string s = "$" + name + " << EOD\n";
  char buf[80];
  for (const auto& [x, y] : pts) {
    std::snprintf(buf, sizeof buf, "%.9g %.9g\n", x, y);
    s += buf;
  }
  return s + "EOD\n";
}

// Runs the script once per terminal; the script's body is drawn after each `set output`.
bool run_gnuplot(const fs::path& plots_dir, const std::string& name, const std::string& body, std::string* error) {
  const fs::path script = plots_dir / (name + ".gp");
  const std::string png = (plots_dir / (name + ".png")).string(), svg = (plots_dir / (name + ".svg")).string();
  {
    std::ofstream out(script);
    out << "# " << name << ": drawn by sluice bench (bench/common/plots.cc); rerun with `gnuplot " << name << ".gp`\n"
        << "set termoption noenhanced\n"
        << "set terminal pngcairo size 1100,650 noenhanced\nset output " << quote(png) << "\n"
        << body << "set terminal svg size 1100,650 dynamic noenhanced background '#ffffff'\nset output " << quote(svg)
        << "\nreplot\nunset output\n";
    if (!out) {
      *error = "cannot write " + script.string();
      return false;
    }
  }
  const fs::path log = plots_dir / (name + ".gnuplot.log");
  const std::string cmd = "gnuplot " + quote(script.string()) + " > " + quote(log.string()) + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream lf(log);
  std::string msgs((std::istreambuf_iterator<char>(lf)), std::istreambuf_iterator<char>());
  std::error_code ec;
  fs::remove(log, ec);
  if (rc != 0 || !fs::exists(png) || fs::file_size(png, ec) == 0 || !fs::exists(svg) || fs::file_size(svg, ec) == 0) {
    *error = "gnuplot failed on " + script.string() + ": " + (msgs.empty() ? "exit status " + std::to_string(rc) : msgs);
    return false;
  }
  return true;
}

// x tics of the nines axis: 1/(1-p) = 1, 10, 100, ... labelled 0%, 90%, 99%, 99.9%, ...
std::string nines_tics(double max_x) {
  std::string tics = "set xtics (";
  for (int k = 0;; ++k) {
    // k nines: 0 -> 0%, 1 -> 90%, 2 -> 99%, 3 -> 99.9%, ... A tic label is a format: "%%" is "%".
    const std::string label = k == 0 ? "0" : k == 1 ? "90" : "99" + (k > 2 ? "." + std::string(static_cast<size_t>(k - 2), '9') : "");
    const double x = std::pow(10.0, k);
    tics += std::string(k ? ", " : "") + quote(label + "%%") + " " + std::to_string(static_cast<long long>(x));
    if (x >= max_x || k >= 9) break;
  }
  return tics + ")\n";
}

bool plot_latency(const fs::path& plots_dir, const std::string& suite, std::vector<Curve> curves, std::string* error) {
  std::sort(curves.begin(), curves.end(), [](const Curve& a, const Curve& b) { return a.title < b.title; });
  std::string body;
  double max_x = 10, min_y = 1e300, max_y = 0;
  for (size_t i = 0; i < curves.size(); ++i) {
    body += data_block("c" + std::to_string(i), curves[i].points);
    for (const auto& p : curves[i].points) {
      max_x = std::max(max_x, p.first);
      min_y = std::min(min_y, p.second);
      max_y = std::max(max_y, p.second);
    }
  }
  // Whole decades, with room above the highest curve (the key sits bottom right, below the
  // tails, where the curves rarely go).
  char yr[96];
  std::snprintf(yr, sizeof yr, "set yrange [%g:%g]\n", std::pow(10, std::floor(std::log10(min_y))),
                std::pow(10, std::ceil(std::log10(max_y * 2))));
  body += yr;
  body += "set title " + quote("Latency by percentile: " + suite + " suite (HdrHistogram distributions, " +
                               "one curve per .hgrm)") + "\n";
  body += "set logscale x\nset logscale y\nset grid xtics ytics mytics\n";
  body += nines_tics(max_x);
  body += "set xrange [1:" + std::to_string(static_cast<long long>(std::pow(10, std::ceil(std::log10(max_x))))) + "]\n";
  body += "set xlabel 'percentile (log scale of 1/(1-p): each step right is one more nine)'\n";
  body += "set ylabel 'latency (µs, log scale)'\nset key bottom right box opaque\n";
  body += "plot ";
  for (size_t i = 0; i < curves.size(); ++i)
    body += std::string(i ? ", \\\n     " : "") + "$c" + std::to_string(i) + " using 1:2 with lines lw 2 title " +
            quote(curves[i].title);
  body += "\n";
  return run_gnuplot(plots_dir, "latency-" + suite, body, error);
}

bool plot_dat(const fs::path& plots_dir, const std::string& name, const DatFile& d, std::string* error) {
  if (d.rows.empty() || d.columns.size() < 2) {
    *error = name + ".dat has no rows or fewer than two columns";
    return false;
  }
  std::string body;
  body += "set title " + title_string(d.title.empty() ? name : d.title) + "\n";
  body += "set grid\nset key below box\nset bmargin 6\n";
  body += "set xlabel " + quote(d.columns[0]) + "\n";
  body += "set ylabel " + quote(d.ylabel) + "\n";
  if (d.logx) body += "set logscale x\n";
  if (d.logy) body += "set logscale y\n";
  for (size_t i = 0; i < d.marks.size(); ++i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9g", d.marks[i].first);
    body += std::string("set arrow from ") + buf + ", graph 0 to " + buf + ", graph 1 nohead dt 2 lc rgb 'gray40'\n";
    if (d.marks.size() <= 12 && !d.marks[i].second.empty())
      body += "set label " + quote(d.marks[i].second) + " at " + buf + ", graph 0.97 rotate by 90 right front font ',8'\n";
  }
  const bool few = d.rows.size() <= 24;
  const std::string style = few ? "linespoints pt 7 ps 1 lw 2" : "linespoints pt 7 ps 0.4 lw 1.5";
  if (few) {
    // A handful of points against a count (workers, producers): whole-number tics, y from 0.
    bool whole = true;
    for (const auto& r : d.rows) whole = whole && r[0] == std::floor(r[0]);
    if (whole) body += "set xtics 1\nset offsets 0.2, 0.2, 0, 0\n";
    body += "set yrange [0:*]\n";
  }
  for (size_t c = 1; c < d.columns.size(); ++c) {
    std::vector<std::pair<double, double>> pts;
    for (const auto& r : d.rows)
      if (r.size() > c) pts.emplace_back(r[0], r[c]);
    body += data_block("d" + std::to_string(c), pts);
  }
  body += "plot ";
  for (size_t c = 1; c < d.columns.size(); ++c)
    body += std::string(c > 1 ? ", \\\n     " : "") + "$d" + std::to_string(c) + " using 1:2 with " + style + " title " +
            quote(d.columns[c]);
  body += "\n";
  return run_gnuplot(plots_dir, name, body, error);
}

}  // namespace

bool write_plots(const std::string& data_dir, const std::string& plots_dir, std::string* error) {
  std::error_code ec;
  if (!fs::is_directory(data_dir, ec)) {
    *error = "no data directory " + data_dir;
    return false;
  }
  if (std::system("command -v gnuplot > /dev/null 2>&1") != 0) {
    *error = "gnuplot is not installed (Debian: apt-get install gnuplot-nox)";
    return false;
  }
  if (!make_dirs(plots_dir)) {
    *error = "cannot create " + plots_dir;
    return false;
  }
  std::map<std::string, std::vector<Curve>> latency;  // suite -> curves
  std::vector<fs::path> dats;
  for (const auto& entry : fs::directory_iterator(data_dir, ec)) {
    const fs::path& p = entry.path();
    if (p.extension() == ".hgrm") {
      const std::string stem = p.stem().string();
      const size_t dash = stem.find('-');
      Curve c = read_hgrm(p);
      if (c.points.empty()) continue;
      c.title = dash == std::string::npos ? stem : stem.substr(dash + 1);
      latency[dash == std::string::npos ? stem : stem.substr(0, dash)].push_back(std::move(c));
    } else if (p.extension() == ".dat") {
      dats.push_back(p);
    }
  }
  std::sort(dats.begin(), dats.end());
  if (latency.empty() && dats.empty()) {
    *error = "nothing to draw in " + data_dir + " (no .hgrm or .dat files)";
    return false;
  }
  std::string failures;
  for (auto& [suite, curves] : latency) {
    std::string e;
    if (!plot_latency(plots_dir, suite, std::move(curves), &e)) failures += e + "\n";
  }
  for (const fs::path& p : dats) {
    std::string e;
    if (!plot_dat(plots_dir, p.stem().string(), read_dat(p), &e)) failures += e + "\n";
  }
  if (!failures.empty()) {
    *error = failures;
    return false;
  }
  return true;
}

}  // namespace sluice::bench
