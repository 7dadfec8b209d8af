import { Breadcrumbs } from "../components/Breadcrumbs";
import { CatalogList } from "../components/CatalogList";
import { SchemaList } from "../components/SchemaList";
import { TableList } from "../components/TableList";
import { TableDetailView } from "../components/TableDetailView";
import { VolumeBrowser } from "../components/VolumeBrowser";
import { VolumeList } from "../components/VolumeList";
import { blocksChildren } from "../api/errors";
import { ErrorPanel } from "../components/ErrorPanel";
import { Link } from "../components/Link";
import { pathOf } from "../router";
import { useSchemas, useTables } from "../ucQueries";
import { normalizeDir, volumeHref } from "../volumePaths";

/**
 * The Unity Catalog browser: /catalog/{catalog}/{schema}/{table} for tables, and
 * /volumes/{catalog}/{schema}/{volume}?path=<dir> for the files of a volume. A catalog or schema
 * the user may not use (or that does not exist) is one error, with what is missing, in place of
 * the browser and the details.
 */
export function CatalogPage({
  segments,
  volume,
  search,
}: {
  segments: string[];
  volume?: string | undefined;
  search: URLSearchParams;
}) {
  const [catalog, schema, table] = segments;
  const crumbs = [{ label: "Catalogs", href: "/catalog" }];
  if (catalog) crumbs.push({ label: catalog, href: pathOf("catalog", catalog) });
  if (catalog && schema) crumbs.push({ label: schema, href: pathOf("catalog", catalog, schema) });
  if (catalog && schema && table) crumbs.push({ label: table, href: pathOf("catalog", catalog, schema, table) });
  if (catalog && schema && volume) crumbs.push({ label: volume, href: volumeHref(catalog, schema, volume, "") });

  // The catalog's schemas (or the schema's tables) stand for everything shown under them: when
  // they are denied or missing, that one error is shown once, and nothing under it is loaded.
  const schemas = useSchemas(catalog ?? "", Boolean(catalog) && !schema);
  const tables = useTables(catalog ?? "", schema ?? "", Boolean(catalog && schema));
  const parent = schema ? tables : schemas;
  if (catalog && parent.isError && blocksChildren(parent.error)) {
    const where = schema ? `${catalog}.${schema}` : catalog;
    return (
      <div className="page">
        <header className="page-header">
          <h1>Unity Catalog</h1>
          <Breadcrumbs items={crumbs} />
        </header>
        <section className="card" aria-label="Browse" data-testid="catalog-blocked">
          <ErrorPanel error={parent.error} />
          <p className="muted small">
            Nothing in <code>{where}</code> can be shown to you. Everything here is listed with your own token: you see
            what Unity Catalog lets you see.
          </p>
          <Link href={schema ? pathOf("catalog", catalog) : "/catalog"} className="button secondary">
            {schema ? `Back to ${catalog}` : "Back to catalogs"}
          </Link>
        </section>
      </div>
    );
  }

  let browser;
  if (!catalog) browser = <CatalogList />;
  else if (!schema) browser = <SchemaList catalog={catalog} />;
  else
    browser = (
      <>
        <TableList catalog={catalog} schema={schema} selected={table} />
        <VolumeList catalog={catalog} schema={schema} selected={volume} />
      </>
    );

  let detail;
  if (catalog && schema && volume) {
    const dir = normalizeDir(search.get("path"));
    detail = <VolumeBrowser key={`${catalog}.${schema}.${volume}/${dir}`} catalog={catalog} schema={schema} volume={volume} dir={dir} />;
  } else if (catalog && schema && table) {
    detail = <TableDetailView key={`${catalog}.${schema}.${table}`} catalog={catalog} schema={schema} table={table} />;
  } else {
    detail = (
      <div className="card empty-state">
        <p>
          {!catalog
            ? "Choose a catalog to see its schemas."
            : !schema
              ? `Choose a schema of ${catalog} to see its tables and volumes.`
              : `Choose a table of ${catalog}.${schema} to see its columns and preview its rows, or a volume to see its files.`}
        </p>
        <p className="muted small">Everything here is listed with your own token: you see what Unity Catalog lets you see.</p>
      </div>
    );
  }

  return (
    <div className="page">
      <header className="page-header">
        <h1>Unity Catalog</h1>
        <Breadcrumbs items={crumbs} />
      </header>
      <div className="split">
        <section className="card browser" aria-label="Browse">
          {browser}
        </section>
        <section className="detail" aria-label="Details">
          {detail}
        </section>
      </div>
    </div>
  );
}
