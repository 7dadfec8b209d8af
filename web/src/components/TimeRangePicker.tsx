export type TimeRange = "24h" | "7d" | "30d" | "90d";
const ranges: TimeRange[] = ["24h", "7d", "30d", "90d"];

export function TimeRangePicker({ value, onChange }: { value: TimeRange; onChange: (r: TimeRange) => void }) {
  return (
    <div className="segmented" role="radiogroup" aria-label="Time range">
      {ranges.map((r) => (
        <button
          key={r}
          type="button"
          role="radio"
          aria-checked={r === value}
          className={r === value ? "active" : undefined}
          onClick={() => onChange(r)}
          data-track={`range-${r}`}
        >
          {r}
        </button>
      ))}
    </div>
  );
}
