#ifndef IMBRIDGE_TOOLS_IMBRIDGECTL_TABLE_H_
#define IMBRIDGE_TOOLS_IMBRIDGECTL_TABLE_H_

#include <string>
#include <vector>

namespace imbridge::ctl {

// A plain-text table for terminals: a header row and data rows, columns
// left-aligned and separated by two spaces, widths measured in UTF-8
// characters, the last column not padded (no trailing spaces). Cells are
// printed on one line: newlines and tabs in a cell become spaces.
//
// Thread-compatible value type.
class Table {
 public:
  explicit Table(std::vector<std::string> headers);

  // Adds a row; missing cells are empty, extra cells are dropped.
  void AddRow(std::vector<std::string> cells);

  size_t rows() const { return rows_.size(); }

  // The header line and one line per row, each ending in '\n'.
  std::string Render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// The number of characters (code points) of UTF-8 `text`.
size_t DisplayWidth(const std::string& text);

}  // namespace imbridge::ctl

#endif  // IMBRIDGE_TOOLS_IMBRIDGECTL_TABLE_H_
