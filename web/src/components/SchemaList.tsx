import { pathOf } from "../router";
import { useSchemas } from "../ucQueries";
import { NameList } from "./NameList";

export function SchemaList({ catalog }: { catalog: string }) {
  const query = useSchemas(catalog);
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
