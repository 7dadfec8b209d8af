import type { InfiniteData, UseInfiniteQueryResult } from "@tanstack/react-query";
import { useState } from "react";
import { ErrorPanel } from "./ErrorPanel";
import { Icon, type IconName } from "./Icon";
import { Link } from "./Link";
import { Loading } from "./Loading";
import { SearchInput } from "./SearchInput";

export interface NameItem {
  name: string;
  href: string;
  comment: string | null;
}

/** A searchable, "load more"-paged list of names (catalogs, schemas or tables). */
export function NameList<P extends { items: unknown[] }>({
  title,
  icon,
  query,
  toItem,
  selected,
  testId,
}: {
  title: string;
  icon: IconName;
  query: UseInfiniteQueryResult<InfiniteData<P>>;
  toItem: (raw: P["items"][number]) => NameItem;
  selected?: string | undefined;
  testId: string;
}) {
  const [filter, setFilter] = useState("");
  const items = query.data?.pages.flatMap((p) => p.items.map(toItem)) ?? [];
  const needle = filter.trim().toLowerCase();
  const shown = needle
    ? items.filter((i) => i.name.toLowerCase().includes(needle) || (i.comment ?? "").toLowerCase().includes(needle))
    : items;
  return (
    <div className="name-list">
      <h2>{title}</h2>
      <SearchInput value={filter} onChange={setFilter} label={`Search ${title.toLowerCase()}`} />
      {query.isPending ? (
        <Loading label={`Loading ${title.toLowerCase()}…`} />
      ) : query.isError ? (
        <ErrorPanel error={query.error} onRetry={() => void query.refetch()} />
      ) : (
        <>
          <ul className="names" data-testid={testId}>
            {shown.map((i) => (
              <li key={i.name}>
                <Link
                  href={i.href}
                  className={i.name === selected ? "name-link active" : "name-link"}
                  aria-current={i.name === selected ? "page" : undefined}
                  data-name={i.name}
                >
                  <Icon name={icon} size={16} />
                  <span className="name">{i.name}</span>
                  {i.comment && <span className="muted small name-comment" title={i.comment}>{i.comment}</span>}
                </Link>
              </li>
            ))}
          </ul>
          {shown.length === 0 && (
            <p className="muted">{items.length === 0 ? `No ${title.toLowerCase()} visible to you.` : "Nothing matches."}</p>
          )}
          {query.hasNextPage && (
            <button
              type="button"
              className="button secondary"
              disabled={query.isFetchingNextPage}
              onClick={() => void query.fetchNextPage()}
            >
              {query.isFetchingNextPage ? "Loading…" : "Load more"}
            </button>
          )}
        </>
      )}
    </div>
  );
}
