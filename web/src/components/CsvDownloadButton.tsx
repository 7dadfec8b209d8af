import { useEffect, useRef, useState } from "react";
import { runQuery, type RunRequest } from "../api/queryRun";
import type { QueryColumn } from "../api/types";
import { saveText, toCsv } from "../csv";
import { formatCount } from "../format";
import { ErrorPanel } from "./ErrorPanel";

/** The most rows a CSV download holds: ten pages of the server's largest page (1000 rows). */
const CSV_ROW_CAP = 10_000;
const CSV_PAGE = 1000;

/** Fetches the whole result (up to CSV_ROW_CAP rows, in 1000-row pages) and saves it as CSV. */
export function CsvDownloadButton({ query, parameters }: { query: string; parameters: RunRequest["parameters"] }) {
  const [fetched, setFetched] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [note, setNote] = useState<string | null>(null);
  const controller = useRef<AbortController | null>(null);

  useEffect(() => () => controller.current?.abort(), []);

  const download = async () => {
    const abort = new AbortController();
    controller.current = abort;
    setError(null);
    setNote(null);
    setFetched(0);
    try {
      let columns: QueryColumn[] = [];
      const rows: unknown[][] = [];
      let token: string | null | undefined = undefined;
      do {
        const page = await runQuery(query, { parameters, limit: CSV_PAGE, page_token: token }, abort.signal, () => {});
        columns = page.columns;
        rows.push(...page.rows.slice(0, CSV_ROW_CAP - rows.length));
        token = page.next_page_token;
        setFetched(rows.length);
      } while (token && rows.length < CSV_ROW_CAP);
      saveText(toCsv(columns, rows), `${query}.csv`, "text/csv;charset=utf-8");
      setNote(
        token
          ? `Saved the first ${formatCount(rows.length)} rows: a CSV holds at most ${formatCount(CSV_ROW_CAP)}.`
          : `Saved ${formatCount(rows.length)} rows.`,
      );
    } catch (e) {
      if (!abort.signal.aborted) setError(e);
    } finally {
      setFetched(null);
      controller.current = null;
    }
  };

  return (
    <div className="csv-download">
      {fetched === null ? (
        <>
          <button
            type="button"
            className="button secondary"
            onClick={() => void download()}
            aria-describedby="csv-cap"
            data-track="query-csv"
          >
            Download CSV
          </button>
          <span id="csv-cap" className="muted small">
            every page, up to {formatCount(CSV_ROW_CAP)} rows
          </span>
        </>
      ) : (
        <>
          <span className="muted small" role="status">
            Fetching rows for the CSV… {formatCount(fetched)}
          </span>
          <button type="button" className="button secondary" onClick={() => controller.current?.abort()}>
            Stop
          </button>
        </>
      )}
      {note && (
        <span className="muted small" data-testid="csv-note">
          {note}
        </span>
      )}
      {error !== null && <ErrorPanel error={error} />}
    </div>
  );
}
