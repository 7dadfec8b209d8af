/** One typed cell: NULL as NULL, numbers right-aligned, booleans as true/false. */
export function CellValue({ value }: { value: unknown }) {
  if (value === null || value === undefined) return <span className="cell-null">NULL</span>;
  if (typeof value === "number") return <span className="cell-number">{value}</span>;
  if (typeof value === "boolean")
    return <span className={value ? "cell-bool cell-true" : "cell-bool cell-false"}>{String(value)}</span>;
  if (typeof value === "string") return <span className="cell-string">{value}</span>;
  return <span className="cell-json">{JSON.stringify(value)}</span>;
}
