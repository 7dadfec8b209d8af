import { isNumericType } from "../columnTypes";
import { CellValue } from "./CellValue";

export function DataGrid({ columns, rows }: { columns: { name: string; type_name?: string | null }[]; rows: unknown[][] }) {
  if (rows.length === 0) return <p className="muted">No rows.</p>;
  return (
    <div className="table-scroll">
      <table className="table grid" data-testid="data-grid">
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c.name} scope="col" className={isNumericType(c.type_name) ? "num" : undefined}>
                {c.name}
                <span className="col-type">{(c.type_name ?? "").toLowerCase()}</span>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row, i) => (
            <tr key={i}>
              {columns.map((c, j) => (
                <td key={c.name} className={isNumericType(c.type_name) ? "num" : undefined} data-column={c.name}>
                  <CellValue value={row[j]} />
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
