#include "report_pages.h"

#include <fmt/format.h>

#include <cmath>
#include <map>
#include <set>

namespace mk::bench {
namespace {

// As print_table: fractions and ratios need digits that nanoseconds and rates do not.
std::string number(double v) {
  return std::abs(v) < 10.0 ? fmt::format("{:.4f}", v) : fmt::format("{:.1f}", v);
}

/// One row of a results table: name, value, spread, unit, baseline and ratio.
std::vector<std::string> cells(const Report& report, const Result& r) {
  const auto q = report.ratio(r);
  return {r.name, number(r.value), describe_spread(r), r.unit,
          !r.baseline ? "-"
          : q         ? fmt::format("{} ({:.3f})", *r.baseline, *q)
                      : *r.baseline};
}

const std::vector<std::string> kHeader = {"result", "value", "run-to-run spread", "unit",
                                          "baseline (ratio)"};

std::map<std::string, const Result*> by_name(const Report& report) {
  std::map<std::string, const Result*> out;
  for (const Result& r : report.results())
    out.emplace(r.name, &r);
  return out;
}

/// Results no figure shows, in report order.
std::vector<const Result*> others(const Report& report, const std::vector<Figure>& figures) {
  std::set<std::string> shown;
  for (const Figure& f : figures)
    shown.insert(f.rows.begin(), f.rows.end());
  std::vector<const Result*> out;
  for (const Result& r : report.results()) {
    if (!shown.contains(r.name)) out.push_back(&r);
  }
  return out;
}

std::string md_row(const std::vector<std::string>& row) {
  std::string out = "|";
  for (const std::string& cell : row)
    out += " " + cell + " |";
  return out + "\n";
}

std::string md_table(const Report& report, const std::vector<const Result*>& rows) {
  std::string out = md_row(kHeader) + md_row(std::vector<std::string>(kHeader.size(), "---"));
  for (const Result* r : rows)
    out += md_row(cells(report, *r));
  return out;
}

std::string escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string html_row(const std::vector<std::string>& row, const char* cell) {
  std::string out = "<tr>";
  for (const std::string& c : row)
    out += fmt::format("<{0}>{1}</{0}>", cell, escape(c));
  return out + "</tr>\n";
}

std::string html_table(const Report& report, const std::vector<const Result*>& rows) {
  std::string out = "<table>\n" + html_row(kHeader, "th");
  for (const Result* r : rows)
    out += html_row(cells(report, *r), "td");
  return out + "</table>\n";
}

std::vector<const Result*> rows_of(const Figure& f,
                                   const std::map<std::string, const Result*>& all) {
  std::vector<const Result*> out;
  for (const std::string& name : f.rows) {
    auto it = all.find(name);
    if (it != all.end()) out.push_back(it->second);
  }
  return out;
}

std::string header_line(const ReportRun& run) {
  return fmt::format(
      "Made {} by `mk-bench report{}` in {:.0f} s: suites {}, each run {} time(s); a value is "
      "the median of the runs, its spread the lowest and highest run (± half that range, as a "
      "share of the value).",
      run.date, run.quick ? " --quick" : "", run.seconds, run.suites, run.runs);
}

}  // namespace

std::string describe_spread(const Result& r) {
  if (!r.spread) return "-";
  const double half = (r.spread->max - r.spread->min) / 2;
  const std::string share =
      r.value != 0.0 ? fmt::format("±{:.1f}% ", 100 * half / std::abs(r.value)) : "";
  return fmt::format("{}({} runs: {} to {})", share, r.spread->runs, number(r.spread->min),
                     number(r.spread->max));
}

std::string report_markdown(const Report& report, const std::vector<Figure>& figures,
                            const ReportRun& run) {
  const auto all = by_name(report);
  std::string out = "# mk-bench report\n\n" + header_line(run) + "\n\n";
  if (!run.plots_missing.empty()) out += fmt::format("**No plots:** {}\n\n", run.plots_missing);
  for (std::size_t i = 0; i < figures.size(); ++i) {
    const Figure& f = figures[i];
    out += fmt::format("## {}\n\n{}\n\n", f.title, f.caption);
    for (const std::string& note : f.notes)
      out += fmt::format("- {}\n", note);
    if (!f.notes.empty()) out += "\n";
    if (i < run.drawn.size() && run.drawn[i])
      out += fmt::format("![{}]({}.png)\n\n", f.title, f.file);
    if (!f.facts.empty()) {
      out += md_row({"what", "value"}) + md_row({"---", "---"});
      for (const auto& [what, value] : f.facts)
        out += md_row({what, value});
      out += "\n";
    }
    if (const auto rows = rows_of(f, all); !rows.empty()) out += md_table(report, rows) + "\n";
  }
  if (const auto rest = others(report, figures); !rest.empty()) {
    out += "## Every other result\n\n" + md_table(report, rest);
  }
  return out;
}

std::string report_html(const Report& report, const std::vector<Figure>& figures,
                        const ReportRun& run) {
  const auto all = by_name(report);
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<title>mk-bench report</title>\n<style>\n"
      "body { font-family: sans-serif; max-width: 70em; margin: 2em auto; }\n"
      "table { border-collapse: collapse; margin: 1em 0; }\n"
      "td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }\n"
      "img { max-width: 100%; }\n</style>\n</head>\n<body>\n<h1>mk-bench report</h1>\n";
  out += "<p>" + escape(header_line(run)) + "</p>\n";
  if (!run.plots_missing.empty())
    out += "<p><strong>No plots:</strong> " + escape(run.plots_missing) + "</p>\n";
  for (std::size_t i = 0; i < figures.size(); ++i) {
    const Figure& f = figures[i];
    out += fmt::format("<h2 id=\"{}\">{}</h2>\n<p>{}</p>\n", f.file, escape(f.title),
                       escape(f.caption));
    if (!f.notes.empty()) {
      out += "<ul>\n";
      for (const std::string& note : f.notes)
        out += "<li>" + escape(note) + "</li>\n";
      out += "</ul>\n";
    }
    if (i < run.drawn.size() && run.drawn[i]) {
      out += fmt::format("<img src=\"{}.png\" alt=\"{}\">\n", f.file, escape(f.title));
    }
    if (!f.facts.empty()) {
      out += "<table>\n" + html_row({"what", "value"}, "th");
      for (const auto& [what, value] : f.facts)
        out += html_row({what, value}, "td");
      out += "</table>\n";
    }
    if (const auto rows = rows_of(f, all); !rows.empty()) out += html_table(report, rows);
  }
  if (const auto rest = others(report, figures); !rest.empty()) {
    out += "<h2>Every other result</h2>\n" + html_table(report, rest);
  }
  return out + "</body>\n</html>\n";
}

}  // namespace mk::bench
