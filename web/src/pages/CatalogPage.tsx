import { Breadcrumbs } from "../components/Breadcrumbs";
import { CatalogList } from "../components/CatalogList";
import { SchemaList } from "../components/SchemaList";
import { TableList } from "../components/TableList";
import { TableDetailView } from "../components/TableDetailView";
import { pathOf } from "../router";

export function CatalogPage({ segments }: { segments: string[]; search: URLSearchParams }) {
  const [catalog, schema, table] = segments;
  const crumbs = [{ label: "Catalogs", href: "/catalog" }];
  if (catalog) crumbs.push({ label: catalog, href: pathOf("catalog", catalog) });
  if (catalog && schema) crumbs.push({ label: schema, href: pathOf("catalog", catalog, schema) });
  if (catalog && schema && table) crumbs.push({ label: table, href: pathOf("catalog", catalog, schema, table) });

  let browser;
  if (!catalog) browser = <CatalogList />;
  else if (!schema) browser = <SchemaList catalog={catalog} />;
  else browser = <TableList catalog={catalog} schema={schema} selected={table} />;

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
          {catalog && schema && table ? (
            <TableDetailView key={`${catalog}.${schema}.${table}`} catalog={catalog} schema={schema} table={table} />
          ) : (
            <div className="card empty-state">
              <p>
                {!catalog
                  ? "Choose a catalog to see its schemas."
                  : !schema
                    ? `Choose a schema of ${catalog} to see its tables.`
                    : `Choose a table of ${catalog}.${schema} to see its columns and preview its rows.`}
              </p>
              <p className="muted small">Everything here is listed with your own token: you see what Unity Catalog lets you see.</p>
            </div>
          )}
        </section>
      </div>
    </div>
  );
}
