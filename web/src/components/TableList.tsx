import { pathOf } from "../router";
import { useTables } from "../ucQueries";
import { NameList } from "./NameList";

export function TableList({ catalog, schema, selected }: { catalog: string; schema: string; selected?: string | undefined }) {
  const query = useTables(catalog, schema);
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
