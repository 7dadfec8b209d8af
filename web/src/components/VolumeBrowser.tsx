import { useInfiniteQuery, useQueryClient } from "@tanstack/react-query";
import { urlOf, api } from "../api/client";
import { formatBytes, formatTime } from "../format";
import { joinPath, volumeHref } from "../volumePaths";
import { Breadcrumbs } from "./Breadcrumbs";
import { DeleteFileButton } from "./DeleteFileButton";
import { ErrorPanel } from "./ErrorPanel";
import { Icon } from "./Icon";
import { Link } from "./Link";
import { Loading } from "./Loading";
import { UploadForm } from "./UploadForm";

const PAGE = 100;

/** One directory of a volume: its entries (paged), downloads, uploads and deletes. */
export function VolumeBrowser({ catalog, schema, volume, dir }: { catalog: string; schema: string; volume: string; dir: string }) {
  const client = useQueryClient();
  const key = ["volumes", "files", catalog, schema, volume, dir];
  const files = useInfiniteQuery({
    queryKey: key,
    queryFn: ({ pageParam }) =>
      api.get("/api/volumes/{catalog}/{schema}/{volume}/files", {
        path: { catalog, schema, volume },
        query: { path: dir, limit: PAGE, page_token: pageParam },
      }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_page_token ?? undefined,
  });
  const refresh = () => void client.invalidateQueries({ queryKey: key });

  const parts = dir ? dir.split("/") : [];
  const crumbs = [
    { label: volume, href: volumeHref(catalog, schema, volume, "") },
    ...parts.map((p, i) => ({ label: p, href: volumeHref(catalog, schema, volume, parts.slice(0, i + 1).join("/")) })),
  ];
  const items = files.data?.pages.flatMap((p) => p.items) ?? [];

  return (
    <section className="card" aria-labelledby="volume-h" data-testid="volume-browser">
      <h2 id="volume-h" className="table-title">
        {catalog}.{schema}.{volume}
      </h2>
      <Breadcrumbs items={crumbs} />
      <UploadForm catalog={catalog} schema={schema} volume={volume} dir={dir} onUploaded={refresh} />
      {files.isPending ? (
        <Loading label="Loading files…" />
      ) : files.isError ? (
        <ErrorPanel error={files.error} onRetry={() => void files.refetch()} />
      ) : items.length === 0 ? (
        <p className="muted" data-testid="files-empty">
          This directory is empty.
        </p>
      ) : (
        <div className="table-scroll">
          <table className="table files" data-testid="file-list">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col" className="num">
                  Size
                </th>
                <th scope="col" className="file-modified">
                  Modified
                </th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((f) => {
                const path = joinPath(dir, f.name);
                return (
                  <tr key={f.name} data-name={f.name}>
                    <td className="file-name">
                      {f.is_directory ? (
                        <Link href={volumeHref(catalog, schema, volume, path)} className="file-link">
                          <Icon name="folder" size={16} />
                          <span>{f.name}/</span>
                        </Link>
                      ) : (
                        <span className="file-link">
                          <Icon name="file" size={16} />
                          <span>{f.name}</span>
                        </span>
                      )}
                    </td>
                    <td className="num">{f.is_directory ? "" : formatBytes(f.size)}</td>
                    <td className="muted small file-modified">{formatTime(f.last_modified)}</td>
                    <td>
                      {!f.is_directory && (
                        <div className="actions">
                          <a
                            className="button secondary small-button"
                            href={urlOf("get", "/api/volumes/{catalog}/{schema}/{volume}/files/content", {
                              path: { catalog, schema, volume },
                              query: { path },
                            })}
                            download={f.name}
                            aria-label={`Download ${f.name}`}
                          >
                            Download
                          </a>
                          <DeleteFileButton
                            catalog={catalog}
                            schema={schema}
                            volume={volume}
                            path={path}
                            name={f.name}
                            onDeleted={refresh}
                          />
                        </div>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {files.hasNextPage && (
        <button
          type="button"
          className="button secondary"
          disabled={files.isFetchingNextPage}
          onClick={() => void files.fetchNextPage()}
        >
          {files.isFetchingNextPage ? "Loading…" : "Load more"}
        </button>
      )}
    </section>
  );
}
