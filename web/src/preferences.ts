// The preferences this UI knows and reads (`theme`, `preview.page_size`,
// `serving.default_endpoint`): their keys, allowed
// values and defaults, and a hook that reads one from the caller's list of preferences (the
// list, not `GET /api/preferences/{key}`, so an unset preference is no 404). The Preferences page
// gives each a real control; any other key is edited as raw JSON in its Advanced section.
import { useQuery } from "@tanstack/react-query";
import { api } from "./api/client";

export const PREFERENCES_LIST_KEY = ["preferences", "list"] as const;

/** `theme`: the UI's colours; `system` follows the browser's setting. */
export const THEME_KEY = "theme";
export type ThemeChoice = "light" | "dark" | "system";
export const THEME_CHOICES: ReadonlyArray<{ value: ThemeChoice; label: string; hint: string }> = [
  { value: "light", label: "Light", hint: "Dark text on a light background." },
  { value: "dark", label: "Dark", hint: "Light text on a dark background." },
  { value: "system", label: "System", hint: "Follow your browser or operating system." },
];

/** The theme choice a stored value stands for (`"dark"`, `{"mode": "dark"}`); unset: system. */
export function themeChoiceOf(value: unknown): ThemeChoice {
  const mode =
    typeof value === "object" && value !== null ? (value as Record<string, unknown>)["mode"] : value;
  return mode === "light" || mode === "dark" ? mode : "system";
}

/** `preview.page_size`: how many rows a table preview shows per page. */
export const PAGE_SIZE_KEY = "preview.page_size";
export const PAGE_SIZE_DEFAULT = 10;
export const PAGE_SIZE_MIN = 5;
export const PAGE_SIZE_MAX = 100;

/** The page size a stored value stands for, within bounds; anything else: the default. */
export function pageSizeOf(value: unknown): number {
  return typeof value === "number" && Number.isInteger(value) && value >= PAGE_SIZE_MIN && value <= PAGE_SIZE_MAX
    ? value
    : PAGE_SIZE_DEFAULT;
}

/** `serving.default_endpoint`: the endpoint Model Serving opens when none is chosen. */
export const DEFAULT_ENDPOINT_KEY = "serving.default_endpoint";

/** The endpoint name a stored value stands for; anything but a non-empty string: none. */
export function defaultEndpointOf(value: unknown): string | null {
  return typeof value === "string" && value.trim() !== "" ? value : null;
}

/** The keys that have a control of their own on the Preferences page. */
export const KNOWN_KEYS: ReadonlySet<string> = new Set([THEME_KEY, PAGE_SIZE_KEY, DEFAULT_ENDPOINT_KEY]);

/** The caller's preferences (shared by every reader: one request). */
export function usePreferenceList() {
  return useQuery({ queryKey: PREFERENCES_LIST_KEY, queryFn: () => api.get("/api/preferences") });
}

/**
 * One preference's stored value: `undefined` while loading, `null` when unset or when the list
 * cannot be read (no store: the defaults apply).
 */
export function usePreferenceValue(key: string): unknown {
  const list = usePreferenceList();
  if (list.isPending) return undefined;
  if (list.isError) return null;
  return list.data.items.find((p) => p.key === key)?.value ?? null;
}
