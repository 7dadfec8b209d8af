import { useInfiniteQuery } from "@tanstack/react-query";
import { api } from "../api/client";
import { pathOf } from "../router";
import { NameList } from "./NameList";

export function CatalogList() {
  const query = useInfiniteQuery({
    queryKey: ["uc", "catalogs"],
    queryFn: ({ pageParam }) =>
      api.get("/api/unity-catalog/catalogs", { query: { limit: 100, page_token: pageParam } }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_page_token ?? undefined,
  });
  return (
    <NameList
      title="Catalogs"
      icon="catalog"
      query={query}
      testId="catalog-list"
      toItem={(c) => ({ name: c.name, href: pathOf("catalog", c.name), comment: c.comment })}
    />
  );
}
