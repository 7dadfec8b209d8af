// CSV of a query result: RFC 4180 (CRLF line ends, fields quoted when they hold a comma, a
// quote or a line break, quotes doubled), and safe to open in a spreadsheet.

/** A text cell starting with one of these would be read by a spreadsheet as a formula. */
const FORMULA_START = /^[=+\-@\t\r]/;
/** A plain number ("-12.5", "+3") is no formula, and keeps its value. */
const NUMBER_LITERAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function cellText(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") {
    // OWASP's advice against CSV injection: a leading quote makes the cell plain text.
    return FORMULA_START.test(value) && !NUMBER_LITERAL.test(value) ? `'${value}` : value;
  }
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

function field(value: unknown): string {
  const text = cellText(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The header line and one line per row, each ended by CRLF. */
export function toCsv(columns: { name: string }[], rows: unknown[][]): string {
  const lines = [columns.map((c) => field(c.name)), ...rows.map((r) => columns.map((_, i) => field(r[i])))];
  return lines.map((l) => l.join(",") + "\r\n").join("");
}

/** Hands a text to the browser as a downloaded file. */
export function saveText(text: string, filename: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  // The download has started once click() returns; the next task may release the URL.
  setTimeout(() => URL.revokeObjectURL(url), 0);
}
