import { useInfiniteQuery } from "@tanstack/react-query";
import { api } from "../api/client";
import { pathOf } from "../router";
import { NameList } from "./NameList";

export function TableList({ catalog, schema, selected }: { catalog: string; schema: string; selected?: string | undefined }) {
  const query = useInfiniteQuery({
    queryKey: ["uc", "tables", catalog, schema],
    queryFn: ({ pageParam }) =>
      api.get("/api/unity-catalog/catalogs/{catalog}/schemas/{schema}/tables", {
        path: { catalog, schema },
        query: { limit: 100, page_token: pageParam },
      }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_page_token ?? undefined,
  });
  return (
    <NameList
      title="Tables"
      icon="table"
      query={query}
      selected={selected}
      testId="table-list"
      toItem={(t) => ({ name: t.name, href: pathOf("catalog", catalog, schema, t.name), comment: t.comment })}
    />
  );
}
