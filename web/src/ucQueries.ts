// Unity Catalog list queries shared by more than one component: the schemas of a catalog and
// the tables of a schema are listed by SchemaList and TableList and also checked by CatalogPage,
// which shows a denial of the catalog or schema once instead of letting every panel under it
// fail the same way. One query key, one request.
import { useInfiniteQuery } from "@tanstack/react-query";
import { api } from "./api/client";

export function useTables(catalog: string, schema: string, enabled = true) {
  return useInfiniteQuery({
    queryKey: ["uc", "tables", catalog, schema],
    queryFn: ({ pageParam }) =>
      api.get("/api/unity-catalog/catalogs/{catalog}/schemas/{schema}/tables", {
        path: { catalog, schema },
        query: { limit: 100, page_token: pageParam },
      }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_page_token ?? undefined,
    enabled,
  });
}

export function useSchemas(catalog: string, enabled = true) {
  return useInfiniteQuery({
    queryKey: ["uc", "schemas", catalog],
    queryFn: ({ pageParam }) =>
      api.get("/api/unity-catalog/catalogs/{catalog}/schemas", {
        path: { catalog },
        query: { limit: 100, page_token: pageParam },
      }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_page_token ?? undefined,
    enabled,
  });
}
