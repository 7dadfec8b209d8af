import { useInfiniteQuery } from "@tanstack/react-query";
import { api } from "../api/client";
import { pathOf } from "../router";
import { NameList } from "./NameList";

export function SchemaList({ catalog }: { catalog: string }) {
  const query = useInfiniteQuery({
    queryKey: ["uc", "schemas", catalog],
    queryFn: ({ pageParam }) =>
      api.get("/api/unity-catalog/catalogs/{catalog}/schemas", {
        path: { catalog },
        query: { limit: 100, page_token: pageParam },
      }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_page_token ?? undefined,
  });
  return (
    <NameList
      title="Schemas"
      icon="schema"
      query={query}
      testId="schema-list"
      toItem={(s) => ({ name: s.name, href: pathOf("catalog", catalog, s.name), comment: s.comment })}
    />
  );
}
