import { useInfiniteQuery } from "@tanstack/react-query";
import { api } from "../api/client";
import { pathOf } from "../router";
import { NameList } from "./NameList";

export function VolumeList({ catalog, schema, selected }: { catalog: string; schema: string; selected?: string | undefined }) {
  const query = useInfiniteQuery({
    queryKey: ["uc", "volumes", catalog, schema],
    queryFn: ({ pageParam }) =>
      api.get("/api/unity-catalog/catalogs/{catalog}/schemas/{schema}/volumes", {
        path: { catalog, schema },
        query: { limit: 100, page_token: pageParam },
      }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_page_token ?? undefined,
  });
  return (
    <NameList
      title="Volumes"
      icon="volume"
      query={query}
      selected={selected}
      testId="volume-list"
      toItem={(v) => ({ name: v.name, href: pathOf("volumes", catalog, schema, v.name), comment: v.comment ?? null })}
    />
  );
}
