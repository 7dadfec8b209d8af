export function Pager({
  offset,
  limit,
  count,
  hasMore,
  total,
  onChange,
  busy,
  label,
}: {
  offset: number;
  limit: number;
  count: number;
  hasMore: boolean;
  total?: number | undefined;
  onChange: (offset: number) => void;
  busy?: boolean;
  label: string;
}) {
  const from = count === 0 ? 0 : offset + 1;
  const to = offset + count;
  return (
    <nav className="pager" aria-label={label}>
      <span className="muted" aria-live="polite" data-testid="pager-range">
        {from}–{to}
        {total !== undefined ? ` of ${total}` : ""}
      </span>
      <button
        type="button"
        className="button secondary"
        disabled={busy || offset === 0}
        onClick={() => onChange(Math.max(0, offset - limit))}
        data-track={`${label}-prev`}
      >
        Previous
      </button>
      <button
        type="button"
        className="button secondary"
        disabled={busy || !hasMore}
        onClick={() => onChange(offset + limit)}
        data-track={`${label}-next`}
      >
        Next
      </button>
    </nav>
  );
}
