// What a column's Databricks `type_name` means for display: numbers align right and can be
// plotted, dates and timestamps can be an x axis.

const NUMERIC = new Set(["BYTE", "SHORT", "INT", "INTEGER", "LONG", "BIGINT", "FLOAT", "DOUBLE", "DECIMAL"]);
const TEMPORAL = new Set(["DATE", "TIMESTAMP", "TIMESTAMP_NTZ"]);
const TEXT = new Set(["STRING", "CHAR", "VARCHAR"]);

function base(typeName: string | null | undefined): string {
  return (typeName ?? "").toUpperCase().replace(/\(.*$/, "").trim();
}

export function isNumericType(typeName: string | null | undefined): boolean {
  return NUMERIC.has(base(typeName));
}

export function isTemporalType(typeName: string | null | undefined): boolean {
  return TEMPORAL.has(base(typeName));
}

export function isTextType(typeName: string | null | undefined): boolean {
  return TEXT.has(base(typeName));
}
