import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useId, useState, type FormEvent } from "react";
import { api } from "../api/client";
import type { Preference } from "../api/types";
import {
  DEFAULT_ENDPOINT_KEY,
  PAGE_SIZE_DEFAULT,
  PAGE_SIZE_KEY,
  PAGE_SIZE_MAX,
  PAGE_SIZE_MIN,
  THEME_CHOICES,
  THEME_KEY,
  defaultEndpointOf,
  pageSizeOf,
  themeChoiceOf,
  type ThemeChoice,
} from "../preferences";
import { THEME_QUERY_KEY, themeFromValue } from "../theme";
import { ErrorPanel } from "./ErrorPanel";

/**
 * The preferences this UI reads, each with a control of its own (radio buttons, a number), saved
 * as proper JSON values; the raw JSON editor is for any other key.
 */
export function PreferenceSettings({ items }: { items: Preference[] }) {
  const client = useQueryClient();
  const pageSizeId = useId();
  const endpointId = useId();
  // The endpoints the user can see, to choose a default from (the Model Serving page's query).
  const endpoints = useQuery({
    queryKey: ["serving", "endpoints"],
    queryFn: () => api.get("/api/model-serving/endpoints", { query: { limit: 1000 } }),
  });
  const stored = (key: string) => items.find((p) => p.key === key)?.value;
  const [theme, setTheme] = useState<ThemeChoice>(() => themeChoiceOf(stored(THEME_KEY)));
  const [pageSize, setPageSize] = useState(() => String(pageSizeOf(stored(PAGE_SIZE_KEY))));
  const [endpoint, setEndpoint] = useState(() => defaultEndpointOf(stored(DEFAULT_ENDPOINT_KEY)) ?? "");
  const [saved, setSaved] = useState(false);
  // A value changed elsewhere (the header's theme button, the JSON editor) shows here too.
  const storedTheme = themeChoiceOf(stored(THEME_KEY));
  const storedSize = pageSizeOf(stored(PAGE_SIZE_KEY));
  useEffect(() => setTheme(storedTheme), [storedTheme]);
  useEffect(() => setPageSize(String(storedSize)), [storedSize]);
  const storedEndpoint = defaultEndpointOf(stored(DEFAULT_ENDPOINT_KEY)) ?? "";
  useEffect(() => setEndpoint(storedEndpoint), [storedEndpoint]);
  const size = Number(pageSize);
  const sizeOk = Number.isInteger(size) && size >= PAGE_SIZE_MIN && size <= PAGE_SIZE_MAX;

  const save = useMutation({
    mutationFn: async (values: { theme: ThemeChoice; pageSize: number; endpoint: string }) => {
      // Only what changed is written: an unchanged default is not turned into a stored value.
      if (values.theme !== storedTheme) {
        await api.put("/api/preferences/{key}", { path: { key: THEME_KEY }, body: values.theme });
      }
      if (values.pageSize !== storedSize) {
        await api.put("/api/preferences/{key}", { path: { key: PAGE_SIZE_KEY }, body: values.pageSize });
      }
      if (values.endpoint !== storedEndpoint) {
        // No default is no preference, rather than an empty value.
        if (values.endpoint === "") {
          await api.delete("/api/preferences/{key}", { path: { key: DEFAULT_ENDPOINT_KEY } });
        } else {
          await api.put("/api/preferences/{key}", { path: { key: DEFAULT_ENDPOINT_KEY }, body: values.endpoint });
        }
      }
    },
    onSuccess: (_, values) => {
      client.setQueryData(THEME_QUERY_KEY, themeFromValue(values.theme));
      setSaved(true);
    },
    onSettled: () => void client.invalidateQueries({ queryKey: ["preferences"] }),
  });

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!sizeOk) return;
    save.mutate({ theme, pageSize: size, endpoint });
  };

  return (
    <form className="form" onSubmit={submit} data-testid="pref-settings" aria-label="Settings">
      <fieldset className="field">
        <legend>Theme</legend>
        <div className="radio-group">
          {THEME_CHOICES.map((c) => (
            <label key={c.value} className="radio">
              <input
                type="radio"
                name="theme"
                value={c.value}
                checked={theme === c.value}
                onChange={() => {
                  setTheme(c.value);
                  setSaved(false);
                }}
              />
              <span>{c.label}</span>
              <span className="muted small">{c.hint}</span>
            </label>
          ))}
        </div>
      </fieldset>
      <div className="field settings-field">
        <label htmlFor={pageSizeId}>Rows per page in table previews</label>
        <input
          id={pageSizeId}
          type="number"
          min={PAGE_SIZE_MIN}
          max={PAGE_SIZE_MAX}
          step={1}
          value={pageSize}
          onChange={(e) => {
            setPageSize(e.target.value);
            setSaved(false);
          }}
          aria-invalid={!sizeOk}
        />
        <div className={sizeOk ? "field-hint" : "field-hint bad"}>
          A whole number from {PAGE_SIZE_MIN} to {PAGE_SIZE_MAX} (default {PAGE_SIZE_DEFAULT}).
        </div>
      </div>
      <div className="field settings-field">
        <label htmlFor={endpointId}>Model Serving opens</label>
        <select
          id={endpointId}
          value={endpoint}
          disabled={!endpoints.isSuccess && endpoint === ""}
          onChange={(e) => {
            setEndpoint(e.target.value);
            setSaved(false);
          }}
        >
          <option value="">No endpoint: I choose each time</option>
          {/* A stored default the user can no longer see stays selectable, so it is not lost unseen. */}
          {endpoint !== "" && endpoints.isSuccess && !endpoints.data.items.some((x) => x.name === endpoint) && (
            <option value={endpoint}>{endpoint} (not visible to you now)</option>
          )}
          {endpoints.data?.items.map((x) => (
            <option key={x.name} value={x.name}>
              {x.name}
            </option>
          ))}
        </select>
        <div className="field-hint">
          {endpoints.isError
            ? "The endpoints could not be listed, so none can be chosen now."
            : "The endpoint shown when you open Model Serving without choosing one."}
        </div>
      </div>
      {save.isError && <ErrorPanel error={save.error} />}
      <div className="form-row">
        <button type="submit" className="button primary" disabled={!sizeOk || save.isPending} data-track="pref-settings-save">
          {save.isPending ? "Saving…" : "Save settings"}
        </button>
        {saved && !save.isPending && (
          <span className="field-hint ok" role="status" data-testid="pref-settings-saved">
            Saved.
          </span>
        )}
      </div>
    </form>
  );
}
