// Paths inside a volume, always relative to its root and without leading or trailing slashes
// ("" is the root), and the UI's URL of a directory: /volumes/{catalog}/{schema}/{volume}?path=.
import { pathOf } from "./router";

export function joinPath(dir: string, name: string): string {
  return dir ? `${dir}/${name}` : name;
}

/** "a//b/" and "/a/b" both become "a/b". */
export function normalizeDir(dir: string | null): string {
  return (dir ?? "").split("/").filter((s) => s.length > 0).join("/");
}

export function volumeHref(catalog: string, schema: string, volume: string, dir: string): string {
  const base = pathOf("volumes", catalog, schema, volume);
  return dir ? `${base}?${new URLSearchParams({ path: dir }).toString()}` : base;
}
